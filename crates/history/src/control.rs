//! Requests from clients into a running workflow: signal, cancel request, terminate.

use crate::txn::Txn;
use crate::{History, Result};
use chronicle_api::common::v1::Payloads;
use chronicle_api::enums::v1::{WorkflowExecutionStatus, WorkflowTaskFailedCause};
use chronicle_api::history::v1::{
    WorkflowExecutionCancelRequestedEventAttributes, WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
};
use chronicle_api::workflowservice::{
    RequestCancelWorkflowExecutionRequest, SignalWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
};

/// Signal request ids remembered per run for deduplication.
const REMEMBERED_SIGNALS: usize = 100;

impl History {
    pub async fn signal(
        &self,
        namespace_id: &str,
        r: SignalWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = r.workflow_execution.unwrap_or_default();
        let signal = WorkflowExecutionSignaledEventAttributes {
            signal_name: r.signal_name,
            input: r.input,
            identity: r.identity,
            header: r.header,
            request_id: r.request_id,
            ..Default::default()
        };
        self.update_named(namespace_id, &execution, |txn| {
            if !txn.apply_signal(signal) {
                txn.nothing_to_write();
            }
            Ok(())
        })
        .await
    }

    pub async fn request_cancel(
        &self,
        namespace_id: &str,
        r: RequestCancelWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = r.workflow_execution.unwrap_or_default();
        self.update_named(namespace_id, &execution, |txn| {
            // A repeated cancel request is accepted and changes nothing, as in Temporal.
            if txn.info().cancel_requested {
                txn.nothing_to_write();
                return Ok(());
            }
            txn.state.info_mut().cancel_requested = true;
            txn.append_external(WorkflowExecutionCancelRequestedEventAttributes {
                cause: r.reason,
                identity: r.identity,
                ..Default::default()
            });
            txn.schedule_workflow_task_if_needed();
            Ok(())
        })
        .await
    }

    pub async fn terminate(
        &self,
        namespace_id: &str,
        r: TerminateWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = r.workflow_execution.unwrap_or_default();
        self.update_named(namespace_id, &execution, |txn| {
            txn.terminate(&r.reason, r.details, &r.identity);
            Ok(())
        })
        .await
    }
}

impl Txn {
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
        self.append_external(signal);
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
