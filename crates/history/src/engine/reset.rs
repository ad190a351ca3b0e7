//! ResetWorkflowExecution in the engine: the new run rebuilt from the kept events, the reset
//! point's task failed and pending work re-armed.

use crate::engine::change::Change;
use crate::engine::timer::Timer;
use chronicle_api::enums::v1::{ResetReapplyExcludeType, ResetReapplyType};
use chronicle_api::history::v1::HistoryEvent;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::workflowservice::ResetWorkflowExecutionRequest;
use chronicle_common::time;

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
