//! Sticky execution: the worker that ran a workflow's last task keeps the workflow cached, so
//! the next task goes to that worker's own queue and carries only the events it has not seen.
//! If the worker does not pick the task up within the sticky schedule-to-start timeout, or
//! says it is shutting down, the task goes back to the normal queue with the full history.

use crate::engine::context::Context;
use crate::engine::timer::Attempt;
use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_common::{ExecutionKey, QueueKind};
use chronicle_matching::QueueKey;
use std::time::Duration;

/// A sticky queue nobody polled for this long has lost its worker (as in Temporal).
const STICKY_POLLER_WINDOW: Duration = Duration::from_secs(10);

impl History {
    pub(crate) async fn fire_sticky_timeout(
        &self,
        key: &ExecutionKey,
        attempt: Attempt,
    ) -> Result<()> {
        self.update(key, |change| change.sticky_timed_out(attempt))
            .await
    }

    /// ResetStickyTaskQueue: the next task goes to the normal queue with the full history.
    pub async fn reset_sticky(
        &self,
        namespace_id: &str,
        execution: WorkflowExecution,
    ) -> Result<()> {
        self.update_named(namespace_id, &execution, |change| {
            change.set_sticky(None);
            Ok(())
        })
        .await
    }

    /// Tells the change's context whether a worker polled the sticky queue lately, as
    /// matching knows it before the change.
    pub(crate) fn note_sticky_poller(&self, ctx: &mut Context, namespace_id: &str, queue: &str) {
        let key = QueueKey {
            namespace_id: namespace_id.to_owned(),
            name: queue.to_owned(),
            kind: QueueKind::Workflow,
        };
        if !queue.is_empty() && self.inner.matching.has_poller(&key, STICKY_POLLER_WINDOW) {
            ctx.note_sticky_poller(queue);
        }
    }

    /// A worker shut down: tasks waiting on its sticky queue go to their normal queues now
    /// rather than when their sticky timeouts fire.
    pub async fn release_sticky_queue(
        &self,
        namespace: &NamespaceRef,
        sticky_queue: &str,
    ) -> Result<()> {
        let key = QueueKey {
            namespace_id: namespace.id.clone(),
            name: sticky_queue.to_owned(),
            kind: QueueKind::Workflow,
        };
        for task in self.inner.matching.drain(&key) {
            let moved = self
                .update(&task.execution_key(), |change| {
                    let waiting = change
                        .state
                        .workflow_task
                        .as_ref()
                        .is_some_and(|w| w.task_id == task.task_id && !w.is_started());
                    if !waiting {
                        return Err(HistoryError::StaleTask);
                    }
                    change.unstick(false);
                    Ok(())
                })
                .await;
            match moved {
                Ok(()) => {}
                Err(e) if e.is_stale() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
