//! Errors of the storage layer.

/// What can go wrong when reading or writing rows.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint was violated (e.g. an e-mail or project name already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database URL names no supported backend.
    #[error("unsupported database URL '{0}': expected sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    /// A stored value could not be interpreted.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let unique = error
            .as_database_error()
            .is_some_and(|db| matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation));
        if unique {
            StoreError::Conflict(error.to_string())
        } else {
            StoreError::Database(error)
        }
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;
