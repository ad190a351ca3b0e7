//! The store on SQL: each method one statement or one transaction.

use super::SqlStore;
use super::write::{Writer, commit_alone};
use crate::{
    CurrentRun, ExecutionRow, ExecutionStore, ExecutionWrite, Lease, NamespaceRow, NamespaceStore,
    PersistenceError, QueueName, QueueStore, QueueTaskRow, Result, RunRef, ShardStore, TimerRow,
    VisibilityCount, VisibilityPage, VisibilityStore,
};
use async_trait::async_trait;
use chronicle_common::query::Resolved;
use sqlx::any::AnyRow;
use sqlx::{Any, Row};
use std::borrow::Cow;

type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

fn namespace_row(row: AnyRow) -> NamespaceRow {
    NamespaceRow {
        id: row.get("id"),
        name: row.get("name"),
        data: row.get("data"),
    }
}

pub(super) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

/// How often a statement nodes run together is tried before its failure is the caller's.
const CONTENDED_ATTEMPTS: u32 = 10;

/// Runs `attempt` again, briefly, when the database refused it as out of reach for now: nodes
/// starting together write the same shard and membership rows, and MySQL answers one of them
/// with a deadlock ("try restarting transaction"), which is classed so. Any other failure is
/// the caller's at once; an outage outlasting the tries is the caller's too.
pub(super) async fn contended<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(PersistenceError::Unavailable(_)) if tries < CONTENDED_ATTEMPTS => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(tries))).await;
            }
            other => return other,
        }
    }
}

impl SqlStore {
    /// Inserts a shard's row at range 0 unless it exists: nodes starting together on a new
    /// database may both try.
    fn create_shard_row(&self) -> String {
        let (insert, ignore) = self.dialect.insert_or_ignore();
        format!("{insert} shards (shard_id, range_id) VALUES (?, 0){ignore}")
    }

    async fn bump_shard(&self, shard_id: u32) -> Result<i64> {
        let shard = i64::from(shard_id);
        let mut tx = self.writer.begin().await?;
        // A shard no node created yet starts at range 1.
        sqlx::query(&self.q(&self.create_shard_row()))
            .bind(shard)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.q("UPDATE shards SET range_id = range_id + 1 WHERE shard_id = ?"))
            .bind(shard)
            .execute(&mut *tx)
            .await?;
        let range: i64 =
            sqlx::query_scalar(&self.q("SELECT range_id FROM shards WHERE shard_id = ?"))
                .bind(shard)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(range)
    }

    async fn insert_shards(&self, count: u32) -> Result<()> {
        let sql = self.create_shard_row();
        let mut tx = self.writer.begin().await?;
        for shard in 0..count {
            sqlx::query(&self.q(&sql))
                .bind(i64::from(shard))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) fn q<'s>(&self, text: &'s str) -> Cow<'s, str> {
        self.dialect.sql(text)
    }

    /// Runs a statement on the writer pool (statements owned by the caller).
    pub(super) async fn exec(&self, query: Query<'_>) -> Result<u64> {
        Ok(query.execute(&self.writer).await?.rows_affected())
    }
}

#[async_trait]
impl ShardStore for SqlStore {
    async fn acquire_shard(&self, shard_id: u32) -> Result<i64> {
        contended(|| self.bump_shard(shard_id)).await
    }

    async fn create_shards(&self, count: u32) -> Result<()> {
        contended(|| self.insert_shards(count)).await
    }

    async fn range_ids(&self) -> Result<Vec<(u32, i64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT shard_id, range_id FROM shards")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(shard, range)| Some((u32::try_from(shard).ok()?, range)))
            .collect())
    }

    async fn shard_count(&self) -> Result<u32> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shards")
            .fetch_one(&self.reader)
            .await?;
        Ok(count as u32)
    }
}

#[async_trait]
impl NamespaceStore for SqlStore {
    async fn create_namespace(&self, row: &NamespaceRow) -> Result<()> {
        let sql = self.q("INSERT INTO namespaces (id, name, data) VALUES (?, ?, ?)");
        self.exec(
            sqlx::query(&sql)
                .bind(&row.id)
                .bind(&row.name)
                .bind(&row.data),
        )
        .await?;
        Ok(())
    }

    async fn update_namespace(&self, row: &NamespaceRow) -> Result<()> {
        let sql = self.q("UPDATE namespaces SET name = ?, data = ? WHERE id = ?");
        match self
            .exec(
                sqlx::query(&sql)
                    .bind(&row.name)
                    .bind(&row.data)
                    .bind(&row.id),
            )
            .await?
        {
            1 => Ok(()),
            _ => Err(PersistenceError::NotFound(format!(
                "namespace {}",
                row.name
            ))),
        }
    }

    async fn namespace_by_name(&self, name: &str) -> Result<Option<NamespaceRow>> {
        let sql = self.q("SELECT id, name, data FROM namespaces WHERE name = ?");
        Ok(sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .map(namespace_row))
    }

    async fn namespace_by_id(&self, id: &str) -> Result<Option<NamespaceRow>> {
        let sql = self.q("SELECT id, name, data FROM namespaces WHERE id = ?");
        Ok(sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .map(namespace_row))
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRow>> {
        let rows = sqlx::query("SELECT id, name, data FROM namespaces ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(namespace_row).collect())
    }
}

#[async_trait]
impl ExecutionStore for SqlStore {
    async fn current_run(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<CurrentRun>> {
        let sql = self.q("SELECT run_id, running, status, start_request_id FROM current_executions WHERE namespace_id = ? AND workflow_id = ?");
        let row = sqlx::query(&sql)
            .bind(namespace_id)
            .bind(workflow_id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| CurrentRun {
            run_id: r.get("run_id"),
            running: r.get::<i64, _>("running") != 0,
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
        let sql = self.q("SELECT shard_id, db_version, state FROM executions WHERE namespace_id = ? AND workflow_id = ? AND run_id = ?");
        let row = sqlx::query(&sql)
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
        let began = std::time::Instant::now();
        let written = match &self.group_commit {
            Some(group) => group.write(writes).await,
            None => commit_alone(&self.writer, &self.dialect, &writes).await,
        };
        // As the writer waits for it: in a group (SQLite), the wait for the group too.
        metrics::histogram!("persistence_latency", "operation" => "WriteExecutions")
            .record(began.elapsed().as_secs_f64());
        written
    }

    async fn read_events(
        &self,
        run_id: &str,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        let sql = self.q("SELECT event_id, data FROM history_events WHERE run_id = ? AND event_id >= ? AND event_id < ? ORDER BY event_id LIMIT ?");
        let rows = sqlx::query(&sql)
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

    async fn buffered_events(&self, run_id: &str) -> Result<Vec<(i64, Vec<u8>)>> {
        let sql = self.q("SELECT seq, data FROM buffered_events WHERE run_id = ? ORDER BY seq");
        let rows = sqlx::query(&sql)
            .bind(run_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("seq"), r.get("data")))
            .collect())
    }

    async fn due_timers(&self, shard_id: u32, until: i64, limit: usize) -> Result<Vec<TimerRow>> {
        let sql = self.q("SELECT fire_time, task_id, data FROM timer_tasks WHERE shard_id = ? AND fire_time <= ? ORDER BY fire_time, task_id LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(i64::from(shard_id))
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
        let sql = self.q("SELECT MIN(fire_time) FROM timer_tasks WHERE shard_id = ?");
        Ok(sqlx::query_scalar(&sql)
            .bind(i64::from(shard_id))
            .fetch_one(&self.reader)
            .await?)
    }

    async fn delete_timers(&self, lease: Lease, timers: &[(i64, i64)]) -> Result<()> {
        if timers.is_empty() {
            return Ok(());
        }
        let sql =
            self.q("DELETE FROM timer_tasks WHERE shard_id = ? AND fire_time = ? AND task_id = ?");
        let mut tx = self.writer.begin().await?;
        Writer::new(&self.dialect)
            .check_fence(&mut tx, lease)
            .await?;
        for (fire_time, task_id) in timers {
            sqlx::query(&sql)
                .bind(i64::from(lease.shard_id))
                .bind(*fire_time)
                .bind(*task_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn move_timers(&self, lease: Lease, moves: &[((i64, i64), TimerRow)]) -> Result<()> {
        if moves.is_empty() {
            return Ok(());
        }
        let delete =
            self.q("DELETE FROM timer_tasks WHERE shard_id = ? AND fire_time = ? AND task_id = ?");
        let insert = self
            .q("INSERT INTO timer_tasks (shard_id, fire_time, task_id, data) VALUES (?, ?, ?, ?)");
        let mut tx = self.writer.begin().await?;
        Writer::new(&self.dialect)
            .check_fence(&mut tx, lease)
            .await?;
        for ((fire_time, task_id), row) in moves {
            sqlx::query(&delete)
                .bind(i64::from(lease.shard_id))
                .bind(*fire_time)
                .bind(*task_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&insert)
                .bind(i64::from(row.shard_id))
                .bind(row.fire_time)
                .bind(row.task_id)
                .bind(&row.data)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_namespace_executions(&self, namespace_id: &str) -> Result<()> {
        self.delete_namespace_rows(namespace_id).await
    }

    async fn delete_run(&self, lease: Lease, run: &RunRef<'_>) -> Result<()> {
        self.delete_run_rows(lease, run).await
    }
}

#[async_trait]
impl QueueStore for SqlStore {
    async fn queue_tasks(&self, after_task_id: i64, limit: usize) -> Result<Vec<QueueTaskRow>> {
        let sql = self.q("SELECT task_id, namespace_id, task_queue, kind, data FROM queue_tasks WHERE task_id > ? ORDER BY task_id LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(after_task_id)
            .bind(limit as i64)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(queue_task_row).collect())
    }

    async fn queue_backlog(
        &self,
        queue: &QueueName<'_>,
        after_task_id: i64,
        limit: usize,
    ) -> Result<Vec<QueueTaskRow>> {
        let sql = self.q("SELECT task_id, namespace_id, task_queue, kind, data FROM queue_tasks WHERE namespace_id = ? AND task_queue = ? AND kind = ? AND task_id > ? ORDER BY task_id LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(queue.namespace_id)
            .bind(queue.task_queue)
            .bind(queue.kind)
            .bind(after_task_id)
            .bind(limit as i64)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(queue_task_row).collect())
    }

    async fn delete_queue_task(&self, lease: Lease, task_id: i64) -> Result<()> {
        let sql = self.q("DELETE FROM queue_tasks WHERE task_id = ?");
        let mut tx = self.writer.begin().await?;
        Writer::new(&self.dialect)
            .check_fence(&mut tx, lease)
            .await?;
        sqlx::query(&sql).bind(task_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl VisibilityStore for SqlStore {
    async fn list_visibility(
        &self,
        namespace_id: &str,
        query: &Resolved,
        page_size: usize,
        page_token: &[u8],
    ) -> Result<VisibilityPage> {
        super::visibility::list(self, namespace_id, query, page_size, page_token).await
    }

    async fn count_visibility(
        &self,
        namespace_id: &str,
        query: &Resolved,
    ) -> Result<VisibilityCount> {
        super::visibility::count(self, namespace_id, query).await
    }

    async fn search_attributes(&self, namespace_id: &str) -> Result<Vec<(String, i32)>> {
        let sql = self.q(
            "SELECT name, value_type FROM search_attributes WHERE namespace_id = ? ORDER BY name",
        );
        let rows = sqlx::query(&sql)
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
        let (insert, ignore) = self.dialect.insert_or_ignore();
        let sql = format!(
            "{insert} search_attributes (namespace_id, name, value_type) VALUES (?, ?, ?){ignore}"
        );
        let sql = self.q(&sql);
        let mut tx = self.writer.begin().await?;
        for (name, value_type) in attributes {
            sqlx::query(&sql)
                .bind(namespace_id)
                .bind(name)
                .bind(*value_type)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_search_attributes(&self, namespace_id: &str, names: &[String]) -> Result<()> {
        let sql = self.q("DELETE FROM search_attributes WHERE namespace_id = ? AND name = ?");
        let mut tx = self.writer.begin().await?;
        for name in names {
            sqlx::query(&sql)
                .bind(namespace_id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn queue_task_row(r: &AnyRow) -> QueueTaskRow {
    QueueTaskRow {
        task_id: r.get("task_id"),
        namespace_id: r.get("namespace_id"),
        task_queue: r.get("task_queue"),
        kind: r.get("kind"),
        data: r.get("data"),
    }
}
