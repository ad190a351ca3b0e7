//! The embedded backend. All writes go through one connection, so SQLite never has to arbitrate
//! between writers; reads use a small pool of their own (WAL lets them run beside the writer).

use crate::{
    CurrentRun, CurrentRunWrite, ExecutionRow, ExecutionWrite, JobRow, NamespaceRow,
    PersistenceError, QueueTaskRow, Result, Store, TimerRow, VisibilityCount, VisibilityPage,
};
use async_trait::async_trait;
use chronicle_common::query::Resolved;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub enum SqliteOptions {
    /// A durable database file, created if missing.
    File(PathBuf),
    /// Nothing survives the process; for tests and `--db-filename :memory:`.
    Memory,
}

#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database.
    pub async fn open(options: &SqliteOptions) -> Result<Self> {
        let store = match options {
            SqliteOptions::Memory => {
                // Every connection to :memory: is its own database, so reads share the writer.
                let connect = SqliteConnectOptions::from_str("sqlite::memory:")?;
                let pool = pool(connect, 1).await?;
                Self {
                    writer: pool.clone(),
                    reader: pool,
                }
            }
            SqliteOptions::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        PersistenceError::Unavailable(format!("cannot create {dir:?}: {e}"))
                    })?;
                }
                // FULL: a commit is on disk before the RPC that caused it is answered.
                let connect = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10));
                Self {
                    writer: pool(connect.clone(), 1).await?,
                    reader: pool(connect.read_only(true), 4).await?,
                }
            }
        };
        MIGRATOR.run(&store.writer).await?;
        Ok(store)
    }
}

async fn pool(connect: SqliteConnectOptions, size: u32) -> Result<SqlitePool> {
    Ok(SqlitePoolOptions::new()
        .max_connections(size)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(connect.foreign_keys(false))
        .await?)
}

fn conflict(what: impl Into<String>) -> PersistenceError {
    PersistenceError::Conflict(what.into())
}

/// Maps a unique-key violation inside a conditional write to a conflict.
fn as_conflict(what: &'static str) -> impl Fn(sqlx::Error) -> PersistenceError {
    move |e| match PersistenceError::from(e) {
        PersistenceError::AlreadyExists(_) => conflict(what),
        other => other,
    }
}

async fn check_fence(tx: &mut Transaction<'_, Sqlite>, w: &ExecutionWrite) -> Result<()> {
    let current: Option<i64> = sqlx::query_scalar("SELECT range_id FROM shards WHERE shard_id = ?")
        .bind(w.shard_id)
        .fetch_optional(&mut **tx)
        .await?;
    if current == Some(w.range_id) {
        Ok(())
    } else {
        Err(PersistenceError::ShardOwnershipLost {
            shard_id: w.shard_id,
            range_id: w.range_id,
        })
    }
}

async fn write_state(tx: &mut Transaction<'_, Sqlite>, w: &ExecutionWrite) -> Result<()> {
    match w.expected_version {
        None => {
            sqlx::query(
                "INSERT INTO executions (namespace_id, workflow_id, run_id, shard_id, db_version, state)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&w.namespace_id)
            .bind(&w.workflow_id)
            .bind(&w.run_id)
            .bind(w.shard_id)
            .bind(w.new_version)
            .bind(&w.state)
            .execute(&mut **tx)
            .await
            .map_err(as_conflict("run already exists"))?;
        }
        Some(expected) => {
            let done = sqlx::query(
                "UPDATE executions SET db_version = ?, state = ?
                 WHERE namespace_id = ? AND workflow_id = ? AND run_id = ? AND db_version = ?",
            )
            .bind(w.new_version)
            .bind(&w.state)
            .bind(&w.namespace_id)
            .bind(&w.workflow_id)
            .bind(&w.run_id)
            .bind(expected)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(conflict(format!(
                    "mutable state of {} moved past version {expected}",
                    w.run_id
                )));
            }
        }
    }
    Ok(())
}

async fn write_current(tx: &mut Transaction<'_, Sqlite>, w: &ExecutionWrite) -> Result<()> {
    let (row, condition) = match &w.current {
        None | Some(CurrentRunWrite::Unchanged) => return Ok(()),
        Some(CurrentRunWrite::Claim {
            previous_run_id: None,
            row,
        }) => {
            sqlx::query(
                "INSERT INTO current_executions
                 (namespace_id, workflow_id, run_id, running, status, start_request_id)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&w.namespace_id)
            .bind(&w.workflow_id)
            .bind(&row.run_id)
            .bind(row.running)
            .bind(row.status)
            .bind(&row.start_request_id)
            .execute(&mut **tx)
            .await
            .map_err(as_conflict("workflow id already has a current run"))?;
            return Ok(());
        }
        Some(CurrentRunWrite::Claim {
            previous_run_id: Some(previous),
            row,
        }) => (row, previous),
        Some(CurrentRunWrite::Update(row)) => (row, &w.run_id),
    };
    let done = sqlx::query(
        "UPDATE current_executions SET run_id = ?, running = ?, status = ?, start_request_id = ?
         WHERE namespace_id = ? AND workflow_id = ? AND run_id = ?",
    )
    .bind(&row.run_id)
    .bind(row.running)
    .bind(row.status)
    .bind(&row.start_request_id)
    .bind(&w.namespace_id)
    .bind(&w.workflow_id)
    .bind(condition)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(conflict(format!(
            "current run of {} is no longer {condition}",
            w.workflow_id
        )))
    }
}

async fn write_outbox(tx: &mut Transaction<'_, Sqlite>, w: &ExecutionWrite) -> Result<()> {
    for (event_id, data) in &w.events {
        sqlx::query("INSERT INTO history_events (run_id, event_id, data) VALUES (?, ?, ?)")
            .bind(&w.run_id)
            .bind(event_id)
            .bind(data)
            .execute(&mut **tx)
            .await
            .map_err(as_conflict("history event already written"))?;
    }
    for t in &w.new_queue_tasks {
        sqlx::query(
            "INSERT INTO queue_tasks (task_id, namespace_id, task_queue, kind, data) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(t.task_id)
        .bind(&t.namespace_id)
        .bind(&t.task_queue)
        .bind(t.kind)
        .bind(&t.data)
        .execute(&mut **tx)
        .await?;
    }
    for task_id in &w.done_queue_tasks {
        sqlx::query("DELETE FROM queue_tasks WHERE task_id = ?")
            .bind(task_id)
            .execute(&mut **tx)
            .await?;
    }
    for t in &w.new_timers {
        sqlx::query(
            "INSERT INTO timer_tasks (shard_id, fire_time, task_id, data) VALUES (?, ?, ?, ?)",
        )
        .bind(t.shard_id)
        .bind(t.fire_time)
        .bind(t.task_id)
        .bind(&t.data)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn job_row(row: sqlx::sqlite::SqliteRow) -> JobRow {
    JobRow {
        namespace_id: row.get("namespace_id"),
        job_id: row.get("job_id"),
        running: row.get("running"),
        data: row.get("data"),
    }
}

fn namespace_row(row: sqlx::sqlite::SqliteRow) -> NamespaceRow {
    NamespaceRow {
        id: row.get("id"),
        name: row.get("name"),
        data: row.get("data"),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn acquire_shard(&self, shard_id: u32) -> Result<i64> {
        let mut tx = self.writer.begin().await?;
        let range: i64 = sqlx::query_scalar(
            "INSERT INTO shards (shard_id, range_id) VALUES (?, 1)
             ON CONFLICT (shard_id) DO UPDATE SET range_id = range_id + 1
             RETURNING range_id",
        )
        .bind(shard_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(range)
    }

    async fn create_namespace(&self, row: &NamespaceRow) -> Result<()> {
        sqlx::query("INSERT INTO namespaces (id, name, data) VALUES (?, ?, ?)")
            .bind(&row.id)
            .bind(&row.name)
            .bind(&row.data)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn update_namespace(&self, row: &NamespaceRow) -> Result<()> {
        let done = sqlx::query("UPDATE namespaces SET name = ?, data = ? WHERE id = ?")
            .bind(&row.name)
            .bind(&row.data)
            .bind(&row.id)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(PersistenceError::NotFound(format!(
                "namespace {}",
                row.name
            )))
        }
    }

    async fn namespace_by_name(&self, name: &str) -> Result<Option<NamespaceRow>> {
        let row = sqlx::query("SELECT id, name, data FROM namespaces WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(namespace_row))
    }

    async fn namespace_by_id(&self, id: &str) -> Result<Option<NamespaceRow>> {
        let row = sqlx::query("SELECT id, name, data FROM namespaces WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(namespace_row))
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRow>> {
        let rows = sqlx::query("SELECT id, name, data FROM namespaces ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(namespace_row).collect())
    }

    async fn current_run(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<CurrentRun>> {
        let row = sqlx::query(
            "SELECT run_id, running, status, start_request_id FROM current_executions
             WHERE namespace_id = ? AND workflow_id = ?",
        )
        .bind(namespace_id)
        .bind(workflow_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| CurrentRun {
            run_id: r.get("run_id"),
            running: r.get("running"),
            status: r.get("status"),
            start_request_id: r.get("start_request_id"),
        }))
    }

    async fn execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Option<ExecutionRow>> {
        let row = sqlx::query(
            "SELECT shard_id, db_version, state FROM executions
             WHERE namespace_id = ? AND workflow_id = ? AND run_id = ?",
        )
        .bind(namespace_id)
        .bind(workflow_id)
        .bind(run_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| ExecutionRow {
            shard_id: r.get::<i64, _>("shard_id") as u32,
            db_version: r.get("db_version"),
            state: r.get("state"),
        }))
    }

    async fn write_executions(&self, writes: Vec<ExecutionWrite>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for write in &writes {
            check_fence(&mut tx, write).await?;
            write_state(&mut tx, write).await?;
            write_current(&mut tx, write).await?;
            write_outbox(&mut tx, write).await?;
            if let Some(record) = &write.visibility {
                visibility::write(&mut tx, record).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn read_events(
        &self,
        run_id: &str,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT event_id, data FROM history_events
             WHERE run_id = ? AND event_id >= ? AND event_id < ? ORDER BY event_id LIMIT ?",
        )
        .bind(run_id)
        .bind(from)
        .bind(to)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("event_id"), r.get("data")))
            .collect())
    }

    async fn queue_tasks(&self, after_task_id: i64, limit: usize) -> Result<Vec<QueueTaskRow>> {
        let rows = sqlx::query(
            "SELECT task_id, namespace_id, task_queue, kind, data FROM queue_tasks
             WHERE task_id > ? ORDER BY task_id LIMIT ?",
        )
        .bind(after_task_id)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| QueueTaskRow {
                task_id: r.get("task_id"),
                namespace_id: r.get("namespace_id"),
                task_queue: r.get("task_queue"),
                kind: r.get("kind"),
                data: r.get("data"),
            })
            .collect())
    }

    async fn delete_queue_task(&self, task_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM queue_tasks WHERE task_id = ?")
            .bind(task_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn due_timers(&self, shard_id: u32, until: i64, limit: usize) -> Result<Vec<TimerRow>> {
        let rows = sqlx::query(
            "SELECT fire_time, task_id, data FROM timer_tasks
             WHERE shard_id = ? AND fire_time <= ? ORDER BY fire_time, task_id LIMIT ?",
        )
        .bind(shard_id)
        .bind(until)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| TimerRow {
                shard_id,
                fire_time: r.get("fire_time"),
                task_id: r.get("task_id"),
                data: r.get("data"),
            })
            .collect())
    }

    async fn next_timer(&self, shard_id: u32) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MIN(fire_time) FROM timer_tasks WHERE shard_id = ?")
                .bind(shard_id)
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn delete_timer(&self, shard_id: u32, fire_time: i64, task_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM timer_tasks WHERE shard_id = ? AND fire_time = ? AND task_id = ?")
            .bind(shard_id)
            .bind(fire_time)
            .bind(task_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn list_visibility(
        &self,
        namespace_id: &str,
        query: &Resolved,
        page_size: usize,
        page_token: &[u8],
    ) -> Result<VisibilityPage> {
        visibility::list(&self.reader, namespace_id, query, page_size, page_token).await
    }

    async fn count_visibility(
        &self,
        namespace_id: &str,
        query: &Resolved,
    ) -> Result<VisibilityCount> {
        visibility::count(&self.reader, namespace_id, query).await
    }

    async fn search_attributes(&self, namespace_id: &str) -> Result<Vec<(String, i32)>> {
        let rows = sqlx::query(
            "SELECT name, value_type FROM search_attributes WHERE namespace_id = ? ORDER BY name",
        )
        .bind(namespace_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("name"), r.get("value_type")))
            .collect())
    }

    async fn add_search_attributes(
        &self,
        namespace_id: &str,
        attributes: &[(String, i32)],
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for (name, value_type) in attributes {
            sqlx::query("INSERT INTO search_attributes (namespace_id, name, value_type) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
                .bind(namespace_id)
                .bind(name)
                .bind(value_type)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_search_attributes(&self, namespace_id: &str, names: &[String]) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for name in names {
            sqlx::query("DELETE FROM search_attributes WHERE namespace_id = ? AND name = ?")
                .bind(namespace_id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_namespace_executions(&self, namespace_id: &str) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for statement in [
            "DELETE FROM history_events WHERE run_id IN (SELECT run_id FROM executions WHERE namespace_id = ?)",
            "DELETE FROM executions WHERE namespace_id = ?",
            "DELETE FROM current_executions WHERE namespace_id = ?",
            "DELETE FROM queue_tasks WHERE namespace_id = ?",
            "DELETE FROM executions_visibility WHERE namespace_id = ?",
            "DELETE FROM visibility_attributes WHERE namespace_id = ?",
            "DELETE FROM search_attributes WHERE namespace_id = ?",
            "DELETE FROM system_jobs WHERE namespace_id = ?",
        ] {
            sqlx::query(statement)
                .bind(namespace_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn put_job(&self, job: &JobRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO system_jobs (namespace_id, job_id, running, data) VALUES (?, ?, ?, ?)
             ON CONFLICT (namespace_id, job_id) DO UPDATE SET running = excluded.running, data = excluded.data",
        )
        .bind(&job.namespace_id)
        .bind(&job.job_id)
        .bind(job.running)
        .bind(&job.data)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn job(&self, namespace_id: &str, job_id: &str) -> Result<Option<JobRow>> {
        let row = sqlx::query("SELECT namespace_id, job_id, running, data FROM system_jobs WHERE namespace_id = ? AND job_id = ?")
            .bind(namespace_id)
            .bind(job_id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(job_row))
    }

    async fn jobs(&self, namespace_id: &str) -> Result<Vec<JobRow>> {
        let rows = sqlx::query("SELECT namespace_id, job_id, running, data FROM system_jobs WHERE namespace_id = ? ORDER BY rowid DESC")
            .bind(namespace_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(job_row).collect())
    }

    async fn running_jobs(&self) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(
            "SELECT namespace_id, job_id, running, data FROM system_jobs WHERE running = 1",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(job_row).collect())
    }
}

#[cfg(test)]
mod tests;
mod visibility;
