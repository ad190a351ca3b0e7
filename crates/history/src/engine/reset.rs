//! ResetWorkflowExecution in the engine: the new run rebuilt from the kept events, the reset
//! point's task failed and pending work re-armed.

use crate::engine::change::Change;
use crate::engine::context::Context;
use crate::engine::rebuild;
use crate::engine::state::MutableState;
use crate::engine::timer::Timer;
use chronicle_api::enums::v1::{
    ResetReapplyExcludeType, ResetReapplyType, WorkflowExecutionStatus as Status,
    WorkflowTaskFailedCause,
};
use chronicle_api::failure::v1::Failure;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::history::v1::{HistoryEvent, WorkflowTaskFailedEventAttributes};
use chronicle_api::workflowservice::ResetWorkflowExecutionRequest;
use chronicle_common::{ExecutionKey, time};
use chronicle_persistence::{CurrentRun, CurrentRunWrite};

pub(crate) const READ_BATCH: usize = 1000;

/// The workflow task a reset point names: (scheduled event id, started event id).
pub(crate) fn reset_point(event: &HistoryEvent) -> Option<(i64, i64)> {
    match event.attributes.as_ref()? {
        A::WorkflowTaskCompletedEventAttributes(a) => {
            Some((a.scheduled_event_id, a.started_event_id))
        }
        A::WorkflowTaskFailedEventAttributes(a) => Some((a.scheduled_event_id, a.started_event_id)),
        A::WorkflowTaskTimedOutEventAttributes(a) => {
            Some((a.scheduled_event_id, a.started_event_id))
        }
        A::WorkflowTaskStartedEventAttributes(a) => Some((a.scheduled_event_id, event.event_id)),
        _ => None,
    }
}

// reset_reapply_type is deprecated in favour of the exclude list, yet the CLI still sends it.
#[allow(deprecated)]
pub(crate) fn reapplies_signals(r: &ResetWorkflowExecutionRequest) -> bool {
    r.reset_reapply_type != ResetReapplyType::None as i32
        && !r
            .reset_reapply_exclude_types
            .contains(&(ResetReapplyExcludeType::Signal as i32))
}

impl Change {
    /// Timers and activities pending at the reset point start again; so do the run's timeouts.
    pub(crate) fn rearm_after_reset(&mut self) {
        let timers: Vec<_> = self.state.timers.values().cloned().collect();
        for timer in timers {
            let at = timer
                .expiry_time
                .as_ref()
                .map_or(self.now, time::from_timestamp);
            let started_event_id = timer.started_event_id;
            self.add_timer_at(at.max(self.now), Timer::User { started_event_id });
        }
        let activities: Vec<i64> = self.state.activities.keys().copied().collect();
        for scheduled_event_id in activities {
            self.dispatch_activity(scheduled_event_id);
        }
        let info = self.info().clone();
        if let Some(run_timeout) = time::stored_duration(info.run_timeout.as_ref()) {
            self.add_timer(run_timeout, Timer::WorkflowRunTimeout);
        }
        if let Some(expiration) = info.execution_expiration_time.as_ref() {
            let at = time::from_timestamp(expiration);
            self.add_timer_at(at, Timer::WorkflowExecutionTimeout);
        }
    }
}

/// What a reset starts from, as the service read it.
pub(crate) struct ResetPoint<'a> {
    pub base: &'a MutableState,
    /// The base run's events up to the reset point's workflow task started event.
    pub kept: Vec<HistoryEvent>,
    /// The reset point's workflow task: (scheduled event id, started event id).
    pub workflow_task: (i64, i64),
    pub request_id: String,
    /// The workflow id's current run, which the new run replaces.
    pub current_run_id: String,
    /// Events after the reset point (buffered ones last): their signals are applied again.
    pub later: Vec<HistoryEvent>,
}

/// The new run: the kept events, the reset point's task failed with cause ResetWorkflow,
/// pending work re-armed, the later signals again, and a workflow task to go on from there.
pub(crate) fn reset_run(
    ctx: Context,
    point: ResetPoint,
    r: &ResetWorkflowExecutionRequest,
) -> Change {
    let base = point.base;
    let run_id = ctx.run_id();
    let now = ctx.now;
    let mut info = base.info().clone();
    info.run_id = run_id.clone();
    info.status = Status::Running as i32;
    info.close_time = None;
    info.close_event_id = 0;
    info.new_execution_run_id.clear();
    info.start_request_id.clone_from(&point.request_id);
    info.start_time = Some(time::timestamp(now));
    info.execution_time = Some(time::timestamp(now));
    info.sticky_task_queue.clear();
    let state = rebuild::replay(&point.kept, info);
    let key = ExecutionKey::new(&base.info().namespace_id, &base.info().workflow_id, &run_id);
    let mut change = Change::create(ctx, key, state);
    change.copy_events(point.kept);
    change.current = CurrentRunWrite::Claim {
        previous_run_id: Some(point.current_run_id),
        row: CurrentRun {
            run_id: run_id.clone(),
            running: true,
            status: Status::Running as i32,
            start_request_id: point.request_id,
        },
    };
    let (scheduled_event_id, started_event_id) = point.workflow_task;
    change.append(WorkflowTaskFailedEventAttributes {
        scheduled_event_id,
        started_event_id,
        cause: WorkflowTaskFailedCause::ResetWorkflow as i32,
        failure: Some(Failure {
            message: r.reason.clone(),
            ..Default::default()
        }),
        identity: r.identity.clone(),
        base_run_id: base.info().run_id.clone(),
        new_run_id: run_id,
        ..Default::default()
    });
    change.state.workflow_task = None;
    change.rearm_after_reset();
    for event in point.later {
        if let Some(A::WorkflowExecutionSignaledEventAttributes(signal)) = event.attributes {
            change.append(signal);
        }
    }
    change.schedule_workflow_task(1);
    change
}
