//! Requests from clients into a running workflow: signal, cancel request, terminate.

use crate::engine::limits;
use crate::{History, HistoryError, Result};
use chronicle_api::history::v1::WorkflowExecutionSignaledEventAttributes;
use chronicle_api::workflowservice::{
    RequestCancelWorkflowExecutionRequest, SignalWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
};

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
        self.append_named(namespace_id, &execution, |change| {
            limits::may_signal(&change.state, self.limits(&change.info().namespace_name))?;
            if !change.apply_signal(signal) {
                change.nothing_to_write();
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
        let cancelled = self
            .append_named(namespace_id, &execution, |change| {
                // A repeated cancel request is accepted and changes nothing, as in Temporal.
                if !change.request_cancellation(&r.reason, &r.identity, None) {
                    change.nothing_to_write();
                }
                Ok(())
            })
            .await;
        match cancelled {
            // Cancelling a closed workflow succeeds and changes nothing, as in Temporal.
            Err(HistoryError::WorkflowCompleted) => Ok(()),
            other => other,
        }
    }

    pub async fn terminate(
        &self,
        namespace_id: &str,
        r: TerminateWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = r.workflow_execution.unwrap_or_default();
        self.update_named(namespace_id, &execution, |change| {
            change.terminate(&r.reason, r.details, &r.identity);
            Ok(())
        })
        .await
    }
}
