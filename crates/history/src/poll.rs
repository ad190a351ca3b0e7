//! Long polls: the bridge from a matched task to the history transaction that starts it.

use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_common::{DispatchTask, QueueKind, time};
use chronicle_matching::{PollerRecord, QueueKey};
use std::future::Future;
use tokio::time::Instant;

impl History {
    /// Polls one task queue until `start` accepts a task or the deadline passes (None). A task
    /// that is no longer current (its attempt ended, its run closed) is dropped with its
    /// backlog row, and the poll goes on. The task is claimed from matching only once started:
    /// if `start` fails or the poll is abandoned, the task goes back to its queue.
    pub(crate) async fn poll_queue<T, Fut>(
        &self,
        namespace: &NamespaceRef,
        queue: &str,
        kind: QueueKind,
        identity: &str,
        deadline: Instant,
        start: impl Fn(DispatchTask) -> Fut,
    ) -> Result<Option<T>>
    where
        Fut: Future<Output = Result<T>>,
    {
        let key = QueueKey {
            namespace_id: namespace.id.clone(),
            name: queue.to_owned(),
            kind,
        };
        loop {
            let poller = PollerRecord {
                identity: identity.to_owned(),
                last_access_time: time::now(),
            };
            let Some(grant) = self
                .inner
                .matching
                .poll(key.clone(), poller, deadline)
                .await
            else {
                return Ok(None);
            };
            match start(grant.task().clone()).await {
                Ok(started) => {
                    grant.take();
                    return Ok(Some(started));
                }
                Err(e) if e.is_stale() => {
                    let task = grant.take();
                    let shard = self.shard_of(&task.namespace_id, &task.workflow_id);
                    if task.query_id.is_empty()
                        && let Ok(shard) = shard
                        && let Err(e) = self
                            .store()
                            .delete_queue_task(shard.lease(), task.task_id)
                            .await
                    {
                        self.note_write_failure(&e);
                        tracing::warn!(
                            task_id = task.task_id,
                            "stale backlog task not deleted: {e}"
                        );
                    }
                }
                Err(HistoryError::ShardNotOwned(_)) => {
                    // Another node owns the workflow now: its row stays for that owner.
                    grant.take();
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Temporal's `task_schedule_to_start_latency`: how long a task waited for a worker.
pub(crate) fn record_schedule_to_start(
    namespace: &str,
    task_type: &'static str,
    task_queue: &str,
    scheduled: Option<&chronicle_api::wkt::Timestamp>,
    started: Option<&chronicle_api::wkt::Timestamp>,
) {
    let (Some(scheduled), Some(started)) = (scheduled, started) else {
        return;
    };
    let waited = time::from_timestamp(started)
        .duration_since(time::from_timestamp(scheduled))
        .unwrap_or_default();
    metrics::histogram!(
        "task_schedule_to_start_latency",
        "namespace" => namespace.to_owned(),
        "task_type" => task_type,
        "taskqueue" => task_queue.to_owned(),
    )
    .record(waited.as_secs_f64());
}
