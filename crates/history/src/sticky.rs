//! Sticky execution: the worker that ran a workflow's last task keeps the workflow cached, so
//! the next task goes to that worker's own queue and carries only the events it has not seen.
//! If the worker does not pick the task up within the sticky schedule-to-start timeout, or
//! says it is shutting down, the task goes back to the normal queue with the full history.

use crate::engine::timer::{Attempt, Timer};
use crate::events::normal_queue;
use crate::txn::Txn;
use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::enums::v1::{TaskQueueKind, TimeoutType};
use chronicle_api::history::v1::WorkflowTaskTimedOutEventAttributes;
use chronicle_api::taskqueue::v1::{StickyExecutionAttributes, TaskQueue};
use chronicle_common::{ExecutionKey, QueueKind, time};
use chronicle_matching::QueueKey;
use std::time::Duration;

/// Used when the worker names no sticky schedule-to-start timeout.
const DEFAULT_STICKY_TIMEOUT: Duration = Duration::from_secs(5);
/// A sticky queue nobody polled for this long has lost its worker (as in Temporal).
const STICKY_POLLER_WINDOW: Duration = Duration::from_secs(10);

impl Txn {
    /// The queue the next workflow task is scheduled on, as its event records it: the
    /// sticky queue if the last worker kept the workflow, else the normal queue.
    pub fn next_workflow_task_queue(&self) -> TaskQueue {
        let info = self.info();
        if info.sticky_task_queue.is_empty() {
            normal_queue(&info.task_queue)
        } else {
            TaskQueue {
                name: info.sticky_task_queue.clone(),
                kind: TaskQueueKind::Sticky as i32,
                normal_name: info.task_queue.clone(),
            }
        }
    }

    /// Where a task scheduled on `queue` is dispatched: a sticky queue nobody polls is
    /// passed over for the normal queue at once, as Temporal's matching does.
    pub fn dispatch_queue(&self, queue: TaskQueue) -> TaskQueue {
        if queue.kind != TaskQueueKind::Sticky as i32 {
            return queue;
        }
        if self.ctx.is_polled(&queue.name) {
            queue
        } else {
            normal_queue(queue.normal_name)
        }
    }

    /// The task queue as an event records it, for a task dispatched to `name`.
    pub fn task_queue_named(&self, name: &str) -> TaskQueue {
        let info = self.info();
        if name == info.task_queue {
            normal_queue(name)
        } else {
            TaskQueue {
                name: name.to_owned(),
                kind: TaskQueueKind::Sticky as i32,
                normal_name: info.task_queue.clone(),
            }
        }
    }

    /// A task put on a sticky queue falls back to the normal queue if nobody takes it in time.
    pub fn arm_sticky_timeout(&mut self, queue: &TaskQueue, scheduled_event_id: i64, attempt: i32) {
        if queue.kind != TaskQueueKind::Sticky as i32 {
            return;
        }
        let info = self.info();
        let wait = time::stored_duration(info.sticky_schedule_to_start_timeout.as_ref())
            .unwrap_or(DEFAULT_STICKY_TIMEOUT);
        let attempt = Attempt {
            scheduled_event_id,
            attempt,
        };
        self.add_timer(wait, Timer::StickyScheduleToStart(attempt));
    }

    /// Remembers (or forgets) the worker that keeps the workflow cached.
    pub fn set_sticky(&mut self, sticky: Option<StickyExecutionAttributes>) {
        let queue = sticky
            .as_ref()
            .and_then(|s| s.worker_task_queue.as_ref())
            .map(|q| q.name.clone());
        let info = self.state.info_mut();
        info.sticky_task_queue = queue.unwrap_or_default();
        info.sticky_schedule_to_start_timeout = sticky.and_then(|s| s.schedule_to_start_timeout);
    }

    /// Sends the scheduled, unstarted workflow task to the normal queue.
    fn unstick(&mut self, timed_out: bool) {
        self.set_sticky(None);
        let Some(wft) = self.state.workflow_task.take() else {
            return;
        };
        self.finish_dispatch(wft.task_id);
        if timed_out && !wft.is_transient() {
            self.append(WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id: wft.scheduled_event_id,
                started_event_id: 0,
                timeout_type: TimeoutType::ScheduleToStart as i32,
            });
        }
        self.schedule_workflow_task(if wft.is_transient() { wft.attempt } else { 1 });
    }
}

impl Txn {
    /// The sticky worker did not pick the task up in time: it goes to the normal queue.
    pub fn sticky_timed_out(&mut self, attempt: Attempt) -> Result<()> {
        let normal = self.info().task_queue.clone();
        let waiting =
            self.state.workflow_task.as_ref().is_some_and(|w| {
                !w.is_started() && w.is_attempt(attempt) && w.task_queue != normal
            });
        if !waiting {
            return Err(HistoryError::StaleTask);
        }
        self.unstick(true);
        Ok(())
    }
}

impl History {
    pub(crate) async fn fire_sticky_timeout(
        &self,
        key: &ExecutionKey,
        attempt: Attempt,
    ) -> Result<()> {
        self.update(key, |txn| txn.sticky_timed_out(attempt)).await
    }

    /// ResetStickyTaskQueue: the next task goes to the normal queue with the full history.
    pub async fn reset_sticky(
        &self,
        namespace_id: &str,
        execution: WorkflowExecution,
    ) -> Result<()> {
        self.update_named(namespace_id, &execution, |txn| {
            txn.set_sticky(None);
            Ok(())
        })
        .await
    }

    /// A worker shut down: tasks waiting on its sticky queue go to their normal queues now
    /// rather than when their sticky timeouts fire.
    /// Whether a worker polled the sticky queue lately: matching's answer before a change,
    /// which the change's context carries.
    pub(crate) fn sticky_polled(&self, namespace_id: &str, sticky_queue: &str) -> bool {
        let key = QueueKey {
            namespace_id: namespace_id.to_owned(),
            name: sticky_queue.to_owned(),
            kind: QueueKind::Workflow,
        };
        self.inner.matching.has_poller(&key, STICKY_POLLER_WINDOW)
    }

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
                .update(&task.execution_key(), |txn| {
                    let waiting = txn
                        .state
                        .workflow_task
                        .as_ref()
                        .is_some_and(|w| w.task_id == task.task_id && !w.is_started());
                    if !waiting {
                        return Err(HistoryError::StaleTask);
                    }
                    txn.unstick(false);
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
