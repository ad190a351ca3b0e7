//! Queries in the engine: whether a run's state refuses a query, and where a query waiting
//! for a worker goes after a change. The registry that holds queries is the service's.

use crate::engine::state::MutableState;
use chronicle_api::enums::v1::{QueryRejectCondition, WorkflowExecutionStatus};

/// Where a query is on its way to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Waiting for the run's next workflow task to start.
    Buffered,
    /// Sent with the workflow task (scheduled event id, attempt) now running.
    WithTask(i64, i32),
    /// A query task of its own on the task queue.
    Dispatched,
}

impl Route {
    /// Where the query goes once the run's workflow task is as `task` says: none while it
    /// stays (dispatched already, or riding with the task still running). A query whose task
    /// ended unanswered, or that waits for a task that will not come, goes to the next task
    /// if one is pending, else becomes a query task of its own.
    pub fn after(self, task: TaskState) -> Option<Route> {
        let waiting = match self {
            Route::Dispatched => false,
            Route::WithTask(scheduled, attempt) => task.running != Some((scheduled, attempt)),
            Route::Buffered => true,
        };
        if !waiting {
            None
        } else if task.pending {
            Some(Route::Buffered)
        } else {
            Some(Route::Dispatched)
        }
    }
}

/// A run's workflow task as queries care about it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskState {
    pub pending: bool,
    /// (scheduled event id, attempt) of the task running on a worker, if one is.
    pub running: Option<(i64, i32)>,
}

impl TaskState {
    pub fn of(state: &MutableState) -> Self {
        let wft = state.workflow_task.as_ref();
        Self {
            pending: wft.is_some(),
            running: wft
                .filter(|w| w.is_started())
                .map(|w| (w.scheduled_event_id, w.attempt)),
        }
    }
}

/// The status a closed run is rejected with, if the condition rejects it.
pub(crate) fn rejected(state: &MutableState, condition: i32) -> Option<i32> {
    let status = state.info().status;
    let reject = match QueryRejectCondition::try_from(condition) {
        Ok(QueryRejectCondition::NotOpen) => !state.is_running(),
        Ok(QueryRejectCondition::NotCompletedCleanly) => {
            !state.is_running() && status != WorkflowExecutionStatus::Completed as i32
        }
        _ => false,
    };
    reject.then_some(status)
}
