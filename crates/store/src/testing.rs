//! Helpers for tests that run against a real PostgreSQL server.

use sqlx::{Connection, Executor, PgConnection};

/// When `VISION_TEST_DATABASE_URL` is set, creates a new, empty database on that server and
/// returns its URL, so every test run starts from a fresh schema. `None` when the variable is
/// unset; panics (test-only helper) when the server cannot be reached.
pub async fn fresh_postgres_url() -> Option<String> {
    let base = std::env::var("VISION_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())?;
    let name = format!("vision_test_{}", uuid_like());
    let mut conn = match PgConnection::connect(&base).await {
        Ok(conn) => conn,
        Err(e) => panic!("VISION_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"),
    };
    if let Err(e) = conn
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
    {
        panic!("cannot create test database {name}: {e}");
    }
    let (prefix, _) = base.rsplit_once('/').unwrap_or((base.as_str(), ""));
    Some(format!("{prefix}/{name}"))
}

fn uuid_like() -> String {
    domain::IdKind::Job
        .new_id()
        .trim_start_matches("job_")
        .to_owned()
}
