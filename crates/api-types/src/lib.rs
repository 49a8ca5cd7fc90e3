//! Request and response types of the HTTP APIs with their OpenAPI schemas.
//!
//! Field names follow `shared/spec/platform-api.md` exactly.

pub mod auth;
pub mod chat;
pub mod datasets;
pub mod error;
pub mod health;
pub mod inference;
pub mod models;
pub mod projects;
pub mod segmentation;
pub mod users;
pub mod workflows;

/// RFC 3339 timestamps with second precision and a `Z`, as in the spec's examples.
pub mod time {
    use chrono::{DateTime, SecondsFormat, Utc};

    /// Formats `t` like `2025-10-17T10:00:00Z`.
    pub fn rfc3339(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}
