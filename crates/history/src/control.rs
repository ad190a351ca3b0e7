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
        let _lock = self
            .inner
            .locks
            .lock(namespace_id, &execution.workflow_id)
            .await;
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, &execution.run_id)
            .await?;
        let mut txn = self.load_running(&key).await?;
        let signal = WorkflowExecutionSignaledEventAttributes {
            signal_name: r.signal_name,
            input: r.input,
            identity: r.identity,
            header: r.header,
            request_id: r.request_id,
            ..Default::default()
        };
        if self.apply_signal(&mut txn, signal) {
            self.commit(txn).await?;
        }
        Ok(())
    }

    /// Records the signal unless its request id was seen; returns whether anything changed.
    pub(crate) fn apply_signal(
        &self,
        txn: &mut Txn,
        signal: WorkflowExecutionSignaledEventAttributes,
    ) -> bool {
        if !signal.request_id.is_empty() {
            let seen = &mut txn.state.signal_request_ids;
            if seen.contains(&signal.request_id) {
                return false;
            }
            if seen.len() >= REMEMBERED_SIGNALS {
                seen.remove(0);
            }
            seen.push(signal.request_id.clone());
        }
        txn.append_external(signal);
        txn.schedule_workflow_task_if_needed();
        true
    }

    pub async fn request_cancel(
        &self,
        namespace_id: &str,
        r: RequestCancelWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = r.workflow_execution.unwrap_or_default();
        let _lock = self
            .inner
            .locks
            .lock(namespace_id, &execution.workflow_id)
            .await;
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, &execution.run_id)
            .await?;
        let mut txn = self.load_running(&key).await?;
        // A repeated cancel request is accepted and changes nothing, as in Temporal.
        if txn.info().cancel_requested {
            return Ok(());
        }
        txn.state.info_mut().cancel_requested = true;
        txn.append_external(WorkflowExecutionCancelRequestedEventAttributes {
            cause: r.reason,
            identity: r.identity,
            ..Default::default()
        });
        txn.schedule_workflow_task_if_needed();
        self.commit(txn).await
    }

    pub async fn terminate(
        &self,
        namespace_id: &str,
        r: TerminateWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = r.workflow_execution.unwrap_or_default();
        let _lock = self
            .inner
            .locks
            .lock(namespace_id, &execution.workflow_id)
            .await;
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, &execution.run_id)
            .await?;
        let mut txn = self.load_running(&key).await?;
        self.terminate_in(&mut txn, &r.reason, r.details, &r.identity);
        self.commit(txn).await
    }

    /// Closes the run as terminated; a workflow task running on a worker is failed first so
    /// the history stays well formed.
    pub(crate) fn terminate_in(
        &self,
        txn: &mut Txn,
        reason: &str,
        details: Option<Payloads>,
        identity: &str,
    ) {
        txn.fail_in_flight_workflow_task(
            WorkflowTaskFailedCause::ForceCloseCommand,
            None,
            identity,
        );
        txn.flush_buffered();
        txn.append(WorkflowExecutionTerminatedEventAttributes {
            reason: reason.to_owned(),
            details,
            identity: identity.to_owned(),
        });
        txn.close(WorkflowExecutionStatus::Terminated);
    }
}
