use thiserror::Error;

pub type Result<T> = std::result::Result<T, PersistenceError>;

#[derive(Debug, Error)]
pub enum PersistenceError {
    /// The shard was taken over by a newer lease; the writer must stop writing it.
    #[error("shard {shard_id} ownership lost (range id {range_id} is stale)")]
    ShardOwnershipLost { shard_id: u32, range_id: i64 },
    /// A conditional write lost a race (state version or current-run pointer moved).
    #[error("conflicting write: {0}")]
    Conflict(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The database cannot be reached or is not answering; retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    /// The request cannot be served as asked (a malformed page token).
    #[error("{0}")]
    InvalidArgument(String),
}

impl From<sqlx::Error> for PersistenceError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::AlreadyExists(db.message().to_owned())
            }
            _ => Self::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for PersistenceError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Database(format!("schema migration failed: {e}"))
    }
}
