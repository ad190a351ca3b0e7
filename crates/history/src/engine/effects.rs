//! What a change asks of the world beyond its own rows, as plain data: the service carries
//! it out once the change is durable.

use crate::engine::timer::Timer;
use chronicle_api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;
use chronicle_api::update::v1::Outcome;
use chronicle_common::DispatchTask;
use std::time::SystemTime;

/// What the change asks of the world beyond its own rows.
pub(crate) struct Effects {
    /// Tasks to put on task queues: written as backlog rows, handed to matching once durable.
    pub tasks: Vec<DispatchTask>,
    /// Backlog rows of tasks that will never start, to delete.
    pub finished_tasks: Vec<i64>,
    pub timers: Vec<(SystemTime, Timer)>,
    /// Update progress to announce to waiting callers once durable.
    pub updates: Vec<UpdateEffect>,
    /// Set when List and Count must show the change.
    pub visibility: Option<VisibilityChange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VisibilityChange {
    /// The search attribute rows are rewritten too.
    pub search_attributes: bool,
}

/// Where an update stands, as its waiters see it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Progress {
    Admitted,
    Accepted,
    Completed(Box<Outcome>),
    /// The run closed before any worker saw the update: its caller is told it is gone.
    Aborted,
}

impl Progress {
    pub(crate) fn stage(&self) -> Stage {
        match self {
            Self::Admitted => Stage::Admitted,
            Self::Accepted => Stage::Accepted,
            Self::Completed(_) | Self::Aborted => Stage::Completed,
        }
    }
}

/// A change to an update's progress, announced once the write that made it is durable.
pub(crate) struct UpdateEffect {
    pub update_id: String,
    pub progress: Progress,
}
