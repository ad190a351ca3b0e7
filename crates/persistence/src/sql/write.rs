//! The one write of a state change: fence, state, current run, history, tasks, timers and
//! visibility, inside one transaction.

use super::Dialect;
use crate::visibility::{AttributeRow, AttributeRows, VisibilityRecord, attribute_rows};
use crate::{
    CurrentRunWrite, ExecutionWrite, Lease, PersistenceError, QueueTaskRow, Result, TimerRow,
};
use sqlx::{Any, AnyPool, Transaction};
use std::ops::Range;

pub(super) type Tx<'a> = Transaction<'a, Any>;
type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// Bytes of bound values one INSERT carries at most, well under MySQL's smallest default
/// max_allowed_packet (16 MiB on MariaDB), which bounds a whole statement.
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// A row's bound bytes, roughly: its blob dominates.
trait Weighed {
    fn bytes(&self) -> usize;
}

impl Weighed for (i64, Vec<u8>) {
    fn bytes(&self) -> usize {
        self.1.len()
    }
}

impl Weighed for QueueTaskRow {
    fn bytes(&self) -> usize {
        self.data.len() + self.task_queue.len()
    }
}

impl Weighed for TimerRow {
    fn bytes(&self) -> usize {
        self.data.len()
    }
}

/// Splits rows, given by their sizes, into consecutive ranges, one statement each: at most
/// `max_rows` rows, and no more than `max_bytes` unless a single row is larger.
fn statement_chunks(
    sizes: impl Iterator<Item = usize>,
    max_rows: usize,
    max_bytes: usize,
) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut end, mut bytes) = (0, 0, 0);
    for (i, size) in sizes.enumerate() {
        if i - start == max_rows || (i > start && bytes + size > max_bytes) {
            chunks.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
        end = i + 1;
    }
    if end > start {
        chunks.push(start..end);
    }
    chunks
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

/// Commits `writes` in a transaction of their own.
pub(super) async fn commit_alone(
    pool: &AnyPool,
    dialect: &Dialect,
    writes: &[ExecutionWrite],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    Writer::new(dialect).write_all(&mut tx, writes).await?;
    tx.commit().await.map_err(PersistenceError::at_commit)?;
    Ok(())
}

/// Writes state changes inside one transaction (use one Writer per transaction).
pub(super) struct Writer<'d> {
    dialect: &'d Dialect,
    /// Leases this transaction checked, whose shard rows it holds locked until it ends.
    fenced: Vec<Lease>,
}

impl<'d> Writer<'d> {
    pub fn new(dialect: &'d Dialect) -> Self {
        Self {
            dialect,
            fenced: Vec::new(),
        }
    }

    fn q<'s>(&self, text: &'s str) -> std::borrow::Cow<'s, str> {
        self.dialect.sql(text)
    }

    /// A multi-row insert of `rows` rows into `table (columns)`: one statement, however many.
    fn insert_rows(&self, table: &str, columns: &str, rows: usize) -> String {
        let row = format!("({})", vec!["?"; columns.split(',').count()].join(", "));
        let values = vec![row; rows].join(", ");
        let sql = format!("INSERT INTO {table} ({columns}) VALUES {values}");
        self.q(&sql).into_owned()
    }

    /// All of one `write_executions` call, inside the caller's transaction.
    pub async fn write_all(&mut self, tx: &mut Tx<'_>, writes: &[ExecutionWrite]) -> Result<()> {
        for write in writes {
            self.check_fence(tx, write.lease()).await?;
            self.write_state(tx, write).await?;
            self.write_current(tx, write).await?;
            self.write_outbox(tx, write).await?;
            if let Some(record) = &write.visibility {
                self.write_visibility(tx, record, write.expected_version.is_none())
                    .await?;
            }
        }
        Ok(())
    }

    /// The shard's lease must still be the writer's. The row stays locked until commit, so a
    /// node taking the shard over waits for this write and then fences out the next.
    pub async fn check_fence(&mut self, tx: &mut Tx<'_>, lease: Lease) -> Result<()> {
        if self.fenced.contains(&lease) {
            return Ok(());
        }
        let sql = format!(
            "SELECT range_id FROM shards WHERE shard_id = ?{}",
            self.dialect.for_update()
        );
        let current: Option<i64> = sqlx::query_scalar(&self.q(&sql))
            .bind(i64::from(lease.shard_id))
            .fetch_optional(&mut **tx)
            .await?;
        if current == Some(lease.range_id) {
            self.fenced.push(lease);
            Ok(())
        } else {
            Err(PersistenceError::ShardOwnershipLost {
                shard_id: lease.shard_id,
                range_id: lease.range_id,
            })
        }
    }

    pub async fn write_state(&self, tx: &mut Tx<'_>, w: &ExecutionWrite) -> Result<()> {
        let Some(expected) = w.expected_version else {
            sqlx::query(&self.q("INSERT INTO executions (namespace_id, workflow_id, run_id, shard_id, db_version, state) VALUES (?, ?, ?, ?, ?, ?)"))
                .bind(&w.namespace_id)
                .bind(&w.workflow_id)
                .bind(&w.run_id)
                .bind(i64::from(w.shard_id))
                .bind(w.new_version)
                .bind(&w.state)
                .execute(&mut **tx)
                .await
                .map_err(as_conflict("run already exists"))?;
            return Ok(());
        };
        let done = sqlx::query(&self.q(
            "UPDATE executions SET db_version = ?, state = ? WHERE namespace_id = ? AND workflow_id = ? AND run_id = ? AND db_version = ?",
        ))
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
        Ok(())
    }

    pub async fn write_current(&self, tx: &mut Tx<'_>, w: &ExecutionWrite) -> Result<()> {
        let (row, condition) = match &w.current {
            None | Some(CurrentRunWrite::Unchanged) => return Ok(()),
            Some(CurrentRunWrite::Claim {
                previous_run_id: None,
                row,
            }) => {
                sqlx::query(&self.q(
                    "INSERT INTO current_executions (namespace_id, workflow_id, run_id, running, status, start_request_id) VALUES (?, ?, ?, ?, ?, ?)",
                ))
                .bind(&w.namespace_id)
                .bind(&w.workflow_id)
                .bind(&row.run_id)
                .bind(i64::from(row.running))
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
        let done = sqlx::query(&self.q(
            "UPDATE current_executions SET run_id = ?, running = ?, status = ?, start_request_id = ? WHERE namespace_id = ? AND workflow_id = ? AND run_id = ?",
        ))
        .bind(&row.run_id)
        .bind(i64::from(row.running))
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

    pub async fn write_outbox(&self, tx: &mut Tx<'_>, w: &ExecutionWrite) -> Result<()> {
        let columns = "run_id, event_id, data";
        let run = &w.run_id;
        self.insert_all(
            tx,
            ("history_events", columns),
            (run, &w.events),
            |q, run, (id, data)| q.bind(run).bind(*id).bind(data),
        )
        .await
        .map_err(as_conflict("history event already written"))?;
        let columns = "task_id, namespace_id, task_queue, kind, data";
        self.insert_all(
            tx,
            ("queue_tasks", columns),
            (run, &w.new_queue_tasks),
            |q, _, t| {
                q.bind(t.task_id)
                    .bind(&t.namespace_id)
                    .bind(&t.task_queue)
                    .bind(t.kind)
                    .bind(&t.data)
            },
        )
        .await?;
        for task_id in &w.done_queue_tasks {
            sqlx::query(&self.q("DELETE FROM queue_tasks WHERE task_id = ?"))
                .bind(*task_id)
                .execute(&mut **tx)
                .await?;
        }
        let columns = "shard_id, fire_time, task_id, data";
        self.insert_all(
            tx,
            ("timer_tasks", columns),
            (run, &w.new_timers),
            |q, _, t| {
                q.bind(i64::from(t.shard_id))
                    .bind(t.fire_time)
                    .bind(t.task_id)
                    .bind(&t.data)
            },
        )
        .await?;
        self.write_buffered(tx, w).await
    }

    /// Buffered events go before the change's new ones are written, so a change that appends
    /// the buffer to history and buffers anew (in the same transaction) keeps the new ones.
    async fn write_buffered(&self, tx: &mut Tx<'_>, w: &ExecutionWrite) -> Result<()> {
        if w.clear_buffered {
            sqlx::query(&self.q("DELETE FROM buffered_events WHERE run_id = ?"))
                .bind(&w.run_id)
                .execute(&mut **tx)
                .await?;
        }
        let into = ("buffered_events", "run_id, seq, data");
        self.insert_all(
            tx,
            into,
            (&w.run_id, &w.new_buffered),
            |q, run, (seq, data)| q.bind(run).bind(*seq).bind(data),
        )
        .await
        .map_err(as_conflict("buffered event already written"))
    }

    /// Inserts `rows` of one run into `(table, columns)` with as few statements as the
    /// backend's limits allow, all inside the caller's transaction.
    async fn insert_all<T: Weighed>(
        &self,
        tx: &mut Tx<'_>,
        (table, columns): (&str, &str),
        (run_id, rows): (&str, &[T]),
        bind: impl for<'q> Fn(Query<'q>, &'q str, &'q T) -> Query<'q>,
    ) -> std::result::Result<(), sqlx::Error> {
        let width = columns.split(',').count();
        let max_rows = self.dialect.max_bind_params() / width;
        for chunk in statement_chunks(rows.iter().map(T::bytes), max_rows, MAX_STATEMENT_BYTES) {
            let sql = self.insert_rows(table, columns, chunk.len());
            let mut insert = sqlx::query(&sql);
            for row in &rows[chunk] {
                insert = bind(insert, run_id, row);
            }
            insert.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The run's listing row, and its attribute rows when they change (a run written for the
    /// first time has none to delete).
    pub async fn write_visibility(
        &self,
        tx: &mut Tx<'_>,
        r: &VisibilityRecord,
        new_run: bool,
    ) -> Result<()> {
        let columns = [
            "workflow_type",
            "task_queue",
            "status",
            "start_time",
            "execution_time",
            "close_time",
            "execution_duration",
            "history_length",
            "history_size_bytes",
            "state_transition_count",
            "data",
        ];
        let sql = format!(
            "INSERT INTO executions_visibility (namespace_id, run_id, workflow_id, workflow_type, task_queue, status,
                start_time, execution_time, close_time, execution_duration, history_length, history_size_bytes,
                state_transition_count, parent_workflow_id, parent_run_id, root_workflow_id, root_run_id, data)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){}",
            self.dialect.upsert("namespace_id, run_id", &columns)
        );
        sqlx::query(&self.q(&sql))
            .bind(&r.namespace_id)
            .bind(&r.run_id)
            .bind(&r.workflow_id)
            .bind(&r.workflow_type)
            .bind(&r.task_queue)
            .bind(r.status)
            .bind(r.start_time)
            .bind(r.execution_time)
            .bind(r.close_time)
            .bind(r.execution_duration)
            .bind(r.history_length)
            .bind(r.history_size_bytes)
            .bind(r.state_transition_count)
            .bind(r.parent_workflow_id.clone())
            .bind(r.parent_run_id.clone())
            .bind(r.root_workflow_id.clone())
            .bind(r.root_run_id.clone())
            .bind(&r.data)
            .execute(&mut **tx)
            .await?;
        let AttributeRows::Set(attributes) = &r.attributes else {
            return Ok(());
        };
        if !new_run {
            sqlx::query(
                &self.q("DELETE FROM visibility_attributes WHERE namespace_id = ? AND run_id = ?"),
            )
            .bind(&r.namespace_id)
            .bind(&r.run_id)
            .execute(&mut **tx)
            .await?;
        }
        for (name, value) in attributes {
            for row in attribute_rows(value) {
                let sql = format!(
                    "INSERT INTO visibility_attributes (namespace_id, run_id, name, {}) VALUES (?, ?, ?, ?)",
                    row.column()
                );
                let sql = self.q(&sql);
                let query = sqlx::query(&sql)
                    .bind(&r.namespace_id)
                    .bind(&r.run_id)
                    .bind(name);
                let query = match row {
                    AttributeRow::Str(s) => query.bind(s),
                    AttributeRow::Int(i) => query.bind(i),
                    AttributeRow::Double(d) => query.bind(d),
                };
                query.execute(&mut **tx).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::statement_chunks;

    #[test]
    fn statements_are_cut_by_row_count_and_bytes() {
        assert!(statement_chunks([].into_iter(), 3, 100).is_empty());
        assert_eq!(
            statement_chunks([1; 7].into_iter(), 3, 100),
            [0..3, 3..6, 6..7]
        );
        assert_eq!(
            statement_chunks([40, 40, 40, 10].into_iter(), 9, 100),
            [0..2, 2..4]
        );
        // A row larger than the budget goes alone rather than never.
        assert_eq!(
            statement_chunks([5, 500, 5].into_iter(), 9, 100),
            [0..1, 1..2, 2..3]
        );
    }
}
