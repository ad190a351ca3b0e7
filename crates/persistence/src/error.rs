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
    /// The database's schema is not the one this version needs (newer, older, modified).
    #[error("{0}")]
    Schema(String),
    /// The request cannot be served as asked (a malformed page token).
    #[error("{0}")]
    InvalidArgument(String),
}

/// Database errors that say the database is (for now) out of reach rather than that the
/// statement is wrong: PostgreSQL classes 08 (connection), 53 (resources), 57 (operator
/// intervention, e.g. a terminated connection) and "not accepting connections"; MySQL's
/// lost/refused connections, shutdowns, lock waits and deadlocks; SQLite's busy/locked.
fn is_transient(code: &str) -> bool {
    const POSTGRES_CLASSES: &[&str] = &["08", "53", "57"];
    const MYSQL_CODES: &[&str] = &[
        "1040", "1053", "1205", "1213", "1927", "2002", "2003", "2006", "2013",
    ];
    const SQLITE_CODES: &[&str] = &["5", "6", "261", "517"];
    POSTGRES_CLASSES
        .iter()
        .any(|class| code.len() == 5 && code.starts_with(class))
        || code == "55000"
        || MYSQL_CODES.contains(&code)
        || SQLITE_CODES.contains(&code)
}

impl From<sqlx::Error> for PersistenceError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::AlreadyExists(db.message().to_owned())
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|c| is_transient(&c)) => {
                Self::Unavailable(e.to_string())
            }
            _ => Self::Database(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_transient;

    #[test]
    fn outages_are_told_from_bad_statements() {
        for code in ["08006", "57P01", "57P03", "55000", "2013", "1213", "5"] {
            assert!(is_transient(code), "{code}");
        }
        for code in ["42601", "23505", "1064", "1"] {
            assert!(!is_transient(code), "{code}");
        }
    }
}
