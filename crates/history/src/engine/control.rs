//! Requests from clients into a running workflow, in the engine: signal, cancel request,
//! terminate.

use crate::engine::change::Change;
use chronicle_api::common::v1::{Payloads, WorkflowExecution};
use chronicle_api::enums::v1::{WorkflowExecutionStatus, WorkflowTaskFailedCause};
use chronicle_api::history::v1::{
    WorkflowExecutionCancelRequestedEventAttributes, WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
};

/// Signal request ids remembered per run for deduplication.
pub(crate) const REMEMBERED_SIGNALS: usize = 100;

impl Change {
    /// Records the signal unless its request id was seen; returns whether anything changed.
    pub fn apply_signal(&mut self, signal: WorkflowExecutionSignaledEventAttributes) -> bool {
        if !signal.request_id.is_empty() {
            let seen = &mut self.state.signal_request_ids;
            if seen.contains(&signal.request_id) {
                return false;
            }
            if seen.len() >= REMEMBERED_SIGNALS {
                seen.remove(0);
            }
            seen.push(signal.request_id.clone());
        }
        self.state.info_mut().signal_count += 1;
        self.append_external(signal);
        self.schedule_workflow_task_if_needed();
        true
    }

    /// Asks the workflow to cancel itself; `from` names the workflow (and its initiated
    /// event) that asked. Returns false when cancellation was already requested.
    pub fn request_cancellation(
        &mut self,
        reason: &str,
        identity: &str,
        from: Option<(i64, WorkflowExecution)>,
    ) -> bool {
        if self.info().cancel_requested {
            return false;
        }
        self.state.info_mut().cancel_requested = true;
        let (external_initiated_event_id, external_workflow_execution) =
            from.map_or((0, None), |(id, e)| (id, Some(e)));
        self.append_external(WorkflowExecutionCancelRequestedEventAttributes {
            cause: reason.to_owned(),
            identity: identity.to_owned(),
            external_initiated_event_id,
            external_workflow_execution,
        });
        self.schedule_workflow_task_if_needed();
        true
    }

    /// Closes the run as terminated; a workflow task running on a worker is failed first so
    /// the history stays well formed.
    pub fn terminate(&mut self, reason: &str, details: Option<Payloads>, identity: &str) {
        self.fail_in_flight_workflow_task(
            WorkflowTaskFailedCause::ForceCloseCommand,
            None,
            identity,
        );
        self.flush_buffered();
        self.append(WorkflowExecutionTerminatedEventAttributes {
            reason: reason.to_owned(),
            details,
            identity: identity.to_owned(),
        });
        self.close(WorkflowExecutionStatus::Terminated);
    }
}
