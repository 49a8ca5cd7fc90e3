//! Black-box API tests: each starts the real server on port 0 (see `test_support::spawn_app`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod chat;
mod console;
mod datasets;
mod detection;
mod errors;
mod hardening;
mod inference;
mod operations;
mod projects;
mod rate_limits;
mod segmentation;
mod segmentation_backend;
mod users;
mod workflows;
