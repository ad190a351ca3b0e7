//! The SQL backends: SQLite (embedded), PostgreSQL and MySQL/MariaDB behind one
//! implementation of the store. Statements are written once; the dialect adapts
//! placeholders, upserts and row locks. Each backend has its own schema migrations.

mod delete;
mod dialect;
mod group;
mod jobs;
mod members;
mod store;
#[cfg(test)]
mod tests;
mod tls;
mod visibility;
mod write;

pub use dialect::Dialect;
pub use tls::with_tls;

use crate::{PersistenceError, Result};
use chronicle_common::Supervisor;
use group::GroupCommit;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

/// Which database, and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A durable SQLite file, created if missing.
    SqliteFile(PathBuf),
    /// SQLite in memory: nothing survives the process (tests, `--db-filename :memory:`).
    SqliteMemory,
    /// `postgres://user:password@host:port/database`
    Postgres { url: String, max_connections: u32 },
    /// `mysql://user:password@host:port/database` (MySQL 8 or MariaDB 10.6+)
    MySql { url: String, max_connections: u32 },
}

impl Backend {
    pub fn dialect(&self) -> Dialect {
        match self {
            Self::SqliteFile(_) | Self::SqliteMemory => Dialect::Sqlite,
            Self::Postgres { .. } => Dialect::Postgres,
            Self::MySql { .. } => Dialect::MySql,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self.dialect() {
            Dialect::Sqlite => &SQLITE,
            Dialect::Postgres => &POSTGRES,
            Dialect::MySql => &MYSQL,
        }
    }
}

/// What to do with the schema when opening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// Apply the migrations this version has that the database lacks.
    Migrate,
    /// Refuse a database whose schema is not exactly this version's (`chronicle schema
    /// migrate` brings it there).
    Check,
}

#[derive(Clone)]
pub struct SqlStore {
    dialect: Dialect,
    writer: AnyPool,
    reader: AnyPool,
    /// SQLite's: its one writer commits state changes in groups. PostgreSQL and MySQL commit
    /// concurrently from the pool and group fsyncs themselves.
    group_commit: Option<GroupCommit>,
    /// SQLite's: held while the store is open, so a second node on the same file is refused
    /// (the file has one writer, and shards cannot be shared over it).
    _file_lock: Option<std::sync::Arc<std::fs::File>>,
}

/// SQLite durability: with WAL and `synchronous=FULL` a commit is on disk (the WAL is
/// fsynced) before the call that made it returns, so `kill -9` or power loss keeps it.
const SQLITE_SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = OFF;";

async fn pool(url: &str, size: u32, setup: Option<&'static str>) -> Result<AnyPool> {
    let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
    let mut pool = AnyPoolOptions::new()
        .max_connections(size)
        .min_connections(1)
        // Short enough that an unreachable database fails calls with Unavailable, not deadlines.
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(None)
        .max_lifetime(None);
    if let Some(setup) = setup {
        pool = pool.after_connect(move |conn, _| {
            Box::pin(async move { conn.execute(setup).await.map(drop) })
        });
    }
    Ok(pool.connect_with(options).await?)
}

fn sqlite_url(path: &std::path::Path, mode: &str) -> Result<String> {
    let path = path.to_str().ok_or_else(|| {
        PersistenceError::Unavailable(format!("database path {path:?} is not UTF-8"))
    })?;
    if path.contains(['?', '#']) {
        return Err(PersistenceError::Unavailable(format!(
            "database path {path:?} contains '?' or '#'"
        )));
    }
    Ok(format!("sqlite://{path}?mode={mode}"))
}

/// Takes the lock file beside an SQLite database (`<file>.lock`), which the OS releases when
/// the process ends, however it ends.
fn lock_sqlite_file(path: &std::path::Path) -> Result<std::fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| PersistenceError::Unavailable(format!("cannot open {lock_path:?}: {e}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(PersistenceError::InUse(format!(
            "{} is in use by another chronicle process: an SQLite database serves one node. Stop the other process, or run several nodes on PostgreSQL or MySQL.",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(PersistenceError::Unavailable(format!(
            "cannot lock {lock_path:?}: {e}"
        ))),
    }
}

impl SqlStore {
    /// Connects, then migrates or checks the schema. SQLite's writer task runs until the
    /// store is dropped; a node opens with `open_supervised` so it stops at shutdown.
    pub async fn open(backend: &Backend, schema: Schema) -> Result<Self> {
        Self::open_supervised(backend, schema, &Supervisor::new()).await
    }

    /// `open`, with SQLite's writer task under `supervisor`: at its shutdown the writer
    /// commits what is queued, then stops.
    pub async fn open_supervised(
        backend: &Backend,
        schema: Schema,
        supervisor: &Supervisor,
    ) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let store = match backend {
            // One connection: every connection to :memory: is its own database.
            Backend::SqliteMemory => {
                let pool = pool("sqlite::memory:", 1, Some(SQLITE_SETUP)).await?;
                Self {
                    dialect: Dialect::Sqlite,
                    group_commit: Some(GroupCommit::start(
                        pool.clone(),
                        Dialect::Sqlite,
                        supervisor,
                    )),
                    writer: pool.clone(),
                    reader: pool,
                    _file_lock: None,
                }
            }
            // One writer, so SQLite never arbitrates between writers; WAL lets readers run
            // beside it.
            Backend::SqliteFile(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        PersistenceError::Unavailable(format!("cannot create {dir:?}: {e}"))
                    })?;
                }
                let file_lock = lock_sqlite_file(path)?;
                let writer = pool(&sqlite_url(path, "rwc")?, 1, Some(SQLITE_SETUP)).await?;
                let reader = pool(
                    &sqlite_url(path, "ro")?,
                    4,
                    Some("PRAGMA busy_timeout = 10000;"),
                )
                .await?;
                Self {
                    dialect: Dialect::Sqlite,
                    group_commit: Some(GroupCommit::start(
                        writer.clone(),
                        Dialect::Sqlite,
                        supervisor,
                    )),
                    writer,
                    reader,
                    _file_lock: Some(std::sync::Arc::new(file_lock)),
                }
            }
            Backend::Postgres {
                url,
                max_connections,
            }
            | Backend::MySql {
                url,
                max_connections,
            } => {
                let pool = pool(url, *max_connections, None).await?;
                Self {
                    dialect: backend.dialect(),
                    writer: pool.clone(),
                    reader: pool,
                    group_commit: None,
                    _file_lock: None,
                }
            }
        };
        match schema {
            Schema::Migrate => backend
                .migrator()
                .run(&store.writer)
                .await
                .map_err(schema_error)?,
            Schema::Check => store.check_schema(backend.migrator()).await?,
        }
        Ok(store)
    }

    async fn check_schema(&self, migrator: &Migrator) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        conn.ensure_migrations_table().await.map_err(schema_error)?;
        let applied = conn.list_applied_migrations().await.map_err(schema_error)?;
        if let Some(unknown) = applied
            .iter()
            .find(|a| !migrator.iter().any(|m| m.version == a.version))
        {
            return Err(schema_error(MigrateError::VersionMissing(unknown.version)));
        }
        if let Some(changed) = applied.iter().find(|a| {
            migrator
                .iter()
                .any(|m| m.version == a.version && m.checksum != a.checksum)
        }) {
            return Err(schema_error(MigrateError::VersionMismatch(changed.version)));
        }
        let missing: Vec<i64> = migrator
            .iter()
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
            .map(|m| m.version)
            .collect();
        if !missing.is_empty() {
            return Err(PersistenceError::Schema(format!(
                "the database schema lacks migrations {missing:?} this version needs: run `chronicle schema migrate --config <file>` first"
            )));
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
}

fn schema_error(e: MigrateError) -> PersistenceError {
    PersistenceError::Schema(match e {
        MigrateError::VersionMissing(v) => format!(
            "the database has schema migration {v}, which this version of chronicle does not know: it was written by a newer chronicle"
        ),
        MigrateError::VersionMismatch(v) => {
            format!("schema migration {v} in the database differs from this version's")
        }
        MigrateError::Dirty(v) => {
            format!("schema migration {v} was left half-applied; repair the database and retry")
        }
        other => format!("schema migration failed: {other}"),
    })
}
