//! One module per resource; each handler extracts, calls one `app` function and maps the result.

pub mod auth;
pub mod chat;
pub mod console;
pub mod datasets;
pub mod health;
pub mod inference;
pub mod internal;
pub mod models;
pub mod projects;
pub mod segmentation;
pub mod users;
pub mod workflows;
pub mod ws;
