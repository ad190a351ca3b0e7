//! Sticky execution in the engine: which queue a workflow task goes to, the sticky
//! schedule-to-start timeout and the fallback to the normal queue.

use crate::engine::change::Change;
use crate::engine::events::normal_queue;
use crate::engine::state::MutableState;
use crate::engine::timer::{Attempt, Timer};
use crate::{HistoryError, Result};
use chronicle_api::enums::v1::{TaskQueueKind, TimeoutType};
use chronicle_api::history::v1::WorkflowTaskTimedOutEventAttributes;
use chronicle_api::taskqueue::v1::{StickyExecutionAttributes, TaskQueue};
use chronicle_common::time;
use std::time::Duration;

/// Used when the worker names no sticky schedule-to-start timeout.
pub(crate) const DEFAULT_STICKY_TIMEOUT: Duration = Duration::from_secs(5);

impl Change {
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
    pub(crate) fn unstick(&mut self, timed_out: bool) {
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

impl Change {
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

impl MutableState {
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
}
