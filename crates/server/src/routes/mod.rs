//! One module per resource; each handler extracts, calls one `app` function and maps the result.

pub mod auth;
pub mod chat;
pub mod datasets;
pub mod health;
pub mod internal;
pub mod projects;
pub mod users;
pub mod workflows;
pub mod ws;
