//! Group commit for SQLite's single writer connection. A commit costs an fsync whatever its
//! size, so the writer takes every write that queued while the previous commit was on its way
//! to disk and commits them together: one transaction, one fsync. Should one member fail (a
//! conflict, which the caller's locks make rare), the group is rolled back and each member
//! committed alone, so the failure stays its own. No write is answered before the commit that
//! holds it is durable; a group whose commit fails fails every member. At shutdown the
//! writer stops taking writes, commits every write already queued, and only then ends, so
//! a write whose caller was answered is always on disk.

use super::Dialect;
use super::write::{Writer, commit_alone};
use crate::{ExecutionWrite, PersistenceError, Result};
use chronicle_common::supervisor::{CancellationToken, Supervisor};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// Bounds one group, so a long queue does not make one transaction huge.
const MAX_GROUP: usize = 256;

struct Request {
    writes: Vec<ExecutionWrite>,
    done: oneshot::Sender<Result<()>>,
}

/// Cheap-to-clone handle to the writer task.
#[derive(Clone)]
pub(super) struct GroupCommit {
    requests: mpsc::UnboundedSender<Request>,
}

impl GroupCommit {
    /// Starts the writer task on `pool`, which it shares with the store's other writes.
    pub fn start(pool: AnyPool, dialect: Dialect, supervisor: &Supervisor) -> Self {
        let (requests, queue) = mpsc::unbounded_channel();
        let stop = supervisor.token();
        supervisor.spawn("group commit", run(pool, dialect, queue, stop));
        Self { requests }
    }

    /// Commits `writes` atomically, in a group with whatever else is waiting.
    pub async fn write(&self, writes: Vec<ExecutionWrite>) -> Result<()> {
        let (done, outcome) = oneshot::channel();
        const GONE: &str = "the database writer has stopped";
        self.requests
            .send(Request { writes, done })
            .map_err(|_| PersistenceError::Unavailable(GONE.into()))?;
        // The writer took the write and vanished: it may have committed it first.
        outcome
            .await
            .map_err(|_| PersistenceError::CommitInDoubt(GONE.into()))?
    }
}

async fn run(
    pool: AnyPool,
    dialect: Dialect,
    mut queue: mpsc::UnboundedReceiver<Request>,
    stop: CancellationToken,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut closed = false;
    loop {
        let received = tokio::select! {
            received = queue.recv_many(&mut group, MAX_GROUP) => received,
            // Later writes are refused (Unavailable, never answered as done); the queued
            // ones are still received, and `recv_many` answers 0 once they are all taken.
            () = stop.cancelled(), if !closed => {
                queue.close();
                closed = true;
                continue;
            }
        };
        if received == 0 {
            break;
        }
        // Chronicle's own: how many writers share one transaction, and what the transaction
        // with its fsync costs.
        metrics::histogram!("chronicle_group_commit_size").record(received as f64);
        let began = std::time::Instant::now();
        let committed = commit_group(&pool, &dialect, &group).await;
        metrics::histogram!("chronicle_group_commit_latency").record(began.elapsed().as_secs_f64());
        let outcomes = match committed {
            Ok(outcomes) => outcomes,
            Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
        };
        for (request, outcome) in group.drain(..).zip(outcomes) {
            let _ = request.done.send(outcome);
        }
    }
}

/// Each member's outcome, or the error that sank them all.
async fn commit_group(
    pool: &AnyPool,
    dialect: &Dialect,
    group: &[Request],
) -> Result<Vec<Result<()>>> {
    let mut tx = pool.begin().await?;
    let mut writer = Writer::new(dialect);
    for request in group {
        if let Err(e) = writer.write_all(&mut tx, &request.writes).await {
            tx.rollback().await?;
            if group.len() == 1 {
                return Ok(vec![Err(e)]);
            }
            let mut outcomes = Vec::with_capacity(group.len());
            for request in group {
                outcomes.push(commit_alone(pool, dialect, &request.writes).await);
            }
            return Ok(outcomes);
        }
    }
    tx.commit().await.map_err(PersistenceError::at_commit)?;
    Ok(group.iter().map(|_| Ok(())).collect())
}

#[cfg(test)]
mod tests {
    use crate::sql::{Backend, Schema, SqlStore};
    use crate::{ExecutionStore, ExecutionWrite, PersistenceError, ShardStore};
    use chronicle_common::Supervisor;
    use std::time::Duration;

    fn start(range_id: i64, run: usize) -> ExecutionWrite {
        ExecutionWrite {
            namespace_id: "ns".into(),
            workflow_id: format!("wf-{run}"),
            run_id: format!("run-{run}"),
            range_id,
            new_version: 1,
            state: b"v1".to_vec(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn shutdown_commits_the_queued_writes_then_refuses_new_ones() {
        let supervisor = Supervisor::new();
        let store = SqlStore::open_supervised(&Backend::SqliteMemory, Schema::Migrate, &supervisor)
            .await
            .unwrap();
        let range = store.acquire_shard(0).await.unwrap();
        let write = |run| {
            let store = store.clone();
            tokio::spawn(async move { store.write_executions(vec![start(range, run)]).await })
        };
        let settle = || async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        };
        // With the one connection held, the writer takes the first write and waits; the
        // rest queue behind it, and the shutdown begins while they are queued.
        let held = store.writer.acquire().await.unwrap();
        let mut writes = vec![write(0)];
        settle().await;
        writes.extend((1..50).map(write));
        settle().await;
        let shutdown = tokio::spawn({
            let supervisor = supervisor.clone();
            async move { supervisor.shutdown(Duration::from_secs(10)).await }
        });
        settle().await;
        drop(held);
        let report = shutdown.await.unwrap();
        assert!(report.unfinished.is_empty(), "{report:?}");
        for (run, write) in writes.into_iter().enumerate() {
            write.await.unwrap().expect("a queued write is committed");
            let (workflow, run_id) = (format!("wf-{run}"), format!("run-{run}"));
            let row = store.execution("ns", &workflow, &run_id).await.unwrap();
            assert!(row.is_some(), "run {run} is not on disk");
        }
        let late = store.write_executions(vec![start(range, 99)]).await;
        assert!(
            matches!(late, Err(PersistenceError::Unavailable(_))),
            "{late:?}"
        );
    }
}
