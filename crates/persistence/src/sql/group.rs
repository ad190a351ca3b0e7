//! Group commit for SQLite's single writer connection. A commit costs an fsync whatever its
//! size, so the writer takes every write that queued while the previous commit was on its way
//! to disk and commits them together: one transaction, one fsync. Should one member fail (a
//! conflict, which the caller's locks make rare), the group is rolled back and each member
//! committed alone, so the failure stays its own. No write is answered before the commit that
//! holds it is durable; a group whose commit fails fails every member.

use super::Dialect;
use super::write::{Writer, commit_alone};
use crate::{ExecutionWrite, PersistenceError, Result};
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
    pub fn start(pool: AnyPool, dialect: Dialect) -> Self {
        let (requests, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, dialect, queue));
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

async fn run(pool: AnyPool, dialect: Dialect, mut queue: mpsc::UnboundedReceiver<Request>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let outcomes = match commit_group(&pool, &dialect, &group).await {
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
