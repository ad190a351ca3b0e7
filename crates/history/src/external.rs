//! Signals and cancel requests a workflow sends to another workflow: the command records the
//! initiated event, a task due at once delivers it, and the outcome is recorded back in the
//! sender. Delivery carries a request id derived from the sender's event, so a repeated
//! delivery (after a crash) signals once.

use crate::engine::external::{Delivered, Delivery, outcome};
use crate::engine::limits;
use crate::{History, HistoryError, Result};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::history::v1::WorkflowExecutionSignaledEventAttributes;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_common::ExecutionKey;

impl History {
    pub(crate) async fn fire_external_request(
        &self,
        source: &ExecutionKey,
        initiated_event_id: i64,
    ) -> Result<()> {
        let source = source.clone();
        let (state, _) = self.snapshot(&source).await?;
        let request = state.external_requests.get(&initiated_event_id).cloned();
        let request = request
            .filter(|_| state.is_running())
            .ok_or(HistoryError::StaleTask)?;
        let event = self
            .read_event(&source, initiated_event_id)
            .await?
            .attributes;
        let event = event.ok_or_else(|| {
            HistoryError::Corrupt(format!(
                "event {} of {source} has no attributes",
                initiated_event_id
            ))
        })?;
        let child_only = match &event {
            A::SignalExternalWorkflowExecutionInitiatedEventAttributes(a) => a.child_workflow_only,
            A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(a) => {
                a.child_workflow_only
            }
            _ => false,
        };
        let target = WorkflowExecution {
            workflow_id: request.workflow_id,
            run_id: request.run_id,
        };
        let delivery = Delivery {
            source,
            initiated_event_id,
            target,
            child_only,
            event,
        };
        let delivered = match self.deliver(&delivery).await {
            Ok(delivered) => delivered,
            Err(
                HistoryError::WorkflowNotFound(_)
                | HistoryError::WorkflowCompleted
                | HistoryError::StaleTask,
            ) => Delivered::NotFound,
            Err(e) => return Err(e),
        };
        self.update(&delivery.source, |change| {
            if change
                .state
                .external_requests
                .remove(&delivery.initiated_event_id)
                .is_none()
            {
                return Err(HistoryError::StaleTask);
            }
            change.append_external(outcome(&delivery, change, delivered));
            change.schedule_workflow_task_if_needed();
            Ok(())
        })
        .await
    }

    /// Applies the signal or cancel request to its target; NotFound-like errors mean there
    /// is no such (running, and if asked, child) workflow.
    async fn deliver(&self, d: &Delivery) -> Result<Delivered> {
        let sender = d.source.execution();
        self.update_named(&d.source.namespace_id, &d.target, |change| {
            let is_child =
                change.info().parent.as_ref().is_some_and(|p| {
                    p.workflow_id == sender.workflow_id && p.run_id == sender.run_id
                });
            if d.child_only && !is_child {
                return Err(HistoryError::StaleTask);
            }
            match &d.event {
                A::SignalExternalWorkflowExecutionInitiatedEventAttributes(a) => {
                    let signal = WorkflowExecutionSignaledEventAttributes {
                        signal_name: a.signal_name.clone(),
                        input: a.input.clone(),
                        header: a.header.clone(),
                        request_id: format!("{}:{}", sender.run_id, d.initiated_event_id),
                        external_workflow_execution: Some(sender.clone()),
                        ..Default::default()
                    };
                    if limits::may_signal(&change.state, self.limits(&change.info().namespace_name))
                        .is_err()
                    {
                        change.nothing_to_write();
                        return Ok(Delivered::OverSignalLimit);
                    }
                    if !change.apply_signal(signal) {
                        change.nothing_to_write();
                    }
                }
                A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(a) => {
                    let from = Some((d.initiated_event_id, sender.clone()));
                    if !change.request_cancellation(&a.reason, "history-service", from) {
                        change.nothing_to_write();
                    }
                }
                _ => return Err(HistoryError::StaleTask),
            }
            Ok(Delivered::Yes)
        })
        .await
    }
}
