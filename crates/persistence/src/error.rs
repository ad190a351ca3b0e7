use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;
use thiserror::Error;

pub type Result<T> = std::result::Result<T, PersistenceError>;

/// Clone: a group commit's failure is every member's.
#[derive(Clone, Debug, Error)]
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
    /// The database cannot be reached or is not answering; retrying later may succeed. A
    /// write that failed so did not commit.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The connection was lost while COMMIT was on its way: only the database knows whether
    /// the write landed. Retryable like `Unavailable`.
    #[error("database unavailable, the commit may have landed: {0}")]
    CommitInDoubt(String),
    /// The database refused the statement itself (a constraint, bad SQL, a value or a
    /// statement too large): retrying the same write fails the same way.
    #[error("database error: {0}")]
    Database(String),
    /// Stored data that does not decode as what it should be: retrying reads the same bytes.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database's schema is not the one this version needs (newer, older, modified).
    #[error("{0}")]
    Schema(String),
    /// Another process has the database: an SQLite file serves one node.
    #[error("{0}")]
    InUse(String),
    /// The request cannot be served as asked (a malformed page token).
    #[error("{0}")]
    InvalidArgument(String),
}

impl PersistenceError {
    /// Whether a failed commit may nevertheless have landed: the connection broke after
    /// COMMIT was sent. Every other failure rolled the transaction back.
    pub fn may_have_committed(&self) -> bool {
        matches!(self, Self::CommitInDoubt(_))
    }

    /// Whether the same request may succeed later: the database was out of reach, or another
    /// writer won a race the caller can run again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_)
                | Self::CommitInDoubt(_)
                | Self::Conflict(_)
                | Self::ShardOwnershipLost { .. }
        )
    }

    /// The error of a failed COMMIT: a lost connection there leaves the outcome unknown,
    /// while a refusal (a deadlock, a deferred constraint) means it did not land.
    pub fn at_commit(e: sqlx::Error) -> Self {
        match Self::from(e) {
            Self::Unavailable(message) => Self::CommitInDoubt(message),
            other => other,
        }
    }
}

/// Database errors that say the database is (for now) out of reach rather than that the
/// statement is wrong.
fn is_transient(db: &dyn DatabaseError) -> bool {
    // MySQL's SQLSTATE is mostly the catch-all HY000; its error number tells them apart.
    if let Some(mysql) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return mysql_transient(mysql.number());
    }
    db.code().is_some_and(|code| code_transient(&code))
}

/// Lost or refused connections, refused logins and locked accounts, too many connections,
/// shutdowns, lock wait timeouts and deadlocks.
fn mysql_transient(number: u16) -> bool {
    const NUMBERS: &[u16] = &[
        1040, 1044, 1045, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 3118, 4151,
    ];
    NUMBERS.contains(&number)
}

/// PostgreSQL's SQLSTATE classes 08 (connection), 28 (login refused: a role disabled or a
/// database closed to connections), 53 (resources) and 57 (operator intervention, e.g. a
/// terminated connection), and 55000 ("not accepting connections"); SQLite's busy/locked.
fn code_transient(code: &str) -> bool {
    const POSTGRES_CLASSES: &[&str] = &["08", "28", "53", "57"];
    const SQLITE_CODES: &[&str] = &["5", "6", "261", "517"];
    POSTGRES_CLASSES
        .iter()
        .any(|class| code.len() == 5 && code.starts_with(class))
        || code == "55000"
        || SQLITE_CODES.contains(&code)
}

impl From<sqlx::Error> for PersistenceError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // sqlx refuses a statement with more values than the protocol counts before
            // sending anything: the statement is at fault, the connection is fine.
            sqlx::Error::Protocol(message) if message.contains("too many arguments") => {
                Self::Database(e.to_string())
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::AlreadyExists(db.message().to_owned())
            }
            sqlx::Error::Database(db) if is_transient(db.as_ref()) => {
                Self::Unavailable(e.to_string())
            }
            _ => Self::Database(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PersistenceError, code_transient, mysql_transient};
    use std::io;

    fn io_error() -> sqlx::Error {
        sqlx::Error::Io(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
    }

    #[test]
    fn only_a_broken_commit_is_in_doubt() {
        let before_commit = PersistenceError::from(io_error());
        assert!(matches!(before_commit, PersistenceError::Unavailable(_)));
        assert!(!before_commit.may_have_committed());
        assert!(before_commit.is_retryable());
        let at_commit = PersistenceError::at_commit(io_error());
        assert!(at_commit.may_have_committed());
        assert!(at_commit.is_retryable());
    }

    #[test]
    fn refused_statements_are_neither_retried_nor_in_doubt() {
        let too_many = "PgConnection::run(): too many arguments for query: 70000";
        let refused = [
            PersistenceError::from(sqlx::Error::Protocol(too_many.into())),
            PersistenceError::at_commit(sqlx::Error::RowNotFound),
            PersistenceError::from(sqlx::Error::ColumnNotFound("c".into())),
        ];
        for e in &refused {
            assert!(matches!(e, PersistenceError::Database(_)), "{e}");
            assert!(!e.is_retryable() && !e.may_have_committed(), "{e}");
        }
    }

    #[test]
    fn corrupt_data_is_never_retried() {
        let corrupt = PersistenceError::Corrupt("state".into());
        assert!(!corrupt.is_retryable() && !corrupt.may_have_committed());
    }

    #[test]
    fn outages_are_told_from_bad_statements() {
        for code in ["08006", "28000", "57P01", "57P03", "55000", "5"] {
            assert!(code_transient(code), "{code}");
        }
        for code in ["42601", "23505", "HY000", "1"] {
            assert!(!code_transient(code), "{code}");
        }
        for number in [2013, 1213, 1205, 4151] {
            assert!(mysql_transient(number), "{number}");
        }
        for number in [1064, 1062, 1146] {
            assert!(!mysql_transient(number), "{number}");
        }
    }
}
