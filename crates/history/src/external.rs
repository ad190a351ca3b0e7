//! Signals and cancel requests a workflow sends to another workflow: the command records the
//! initiated event, a task due at once delivers it, and the outcome is recorded back in the
//! sender. Delivery carries a request id derived from the sender's event, so a repeated
//! delivery (after a crash) signals once.

use crate::engine::timer::Timer;
use crate::state::ExternalRequest;
use crate::txn::Txn;
use crate::{History, HistoryError, Result};
use chronicle_api::command::v1::{
    RequestCancelExternalWorkflowExecutionCommandAttributes as CancelExternal,
    SignalExternalWorkflowExecutionCommandAttributes as SignalExternal,
};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::enums::v1::{
    CancelExternalWorkflowExecutionFailedCause, SignalExternalWorkflowExecutionFailedCause,
    WorkflowTaskFailedCause as Cause,
};
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::history::v1::*;
use chronicle_common::{ExecutionKey, limits};
use std::time::Duration;

fn bad(cause: Cause, message: impl Into<String>) -> HistoryError {
    HistoryError::BadCommand {
        cause,
        message: message.into(),
    }
}

fn check_target(workflow_id: &str, cause: Cause) -> Result<()> {
    if workflow_id.is_empty() || workflow_id.len() > limits::MAX_ID_LENGTH {
        return Err(bad(
            cause,
            format!(
                "WorkflowId must be 1 to {} characters.",
                limits::MAX_ID_LENGTH
            ),
        ));
    }
    Ok(())
}

impl Txn {
    pub fn initiate_signal_external(
        &mut self,
        a: SignalExternal,
        completed_event_id: i64,
    ) -> Result<()> {
        let cause = Cause::BadSignalWorkflowExecutionAttributes;
        let execution = a.execution.unwrap_or_default();
        check_target(&execution.workflow_id, cause)?;
        if a.signal_name.is_empty() {
            return Err(bad(
                cause,
                "SignalName is not set on SignalExternalWorkflowExecutionCommand.",
            ));
        }
        let info = self.info().clone();
        let initiated_event_id =
            self.append(SignalExternalWorkflowExecutionInitiatedEventAttributes {
                workflow_task_completed_event_id: completed_event_id,
                namespace: info.namespace_name,
                namespace_id: info.namespace_id,
                workflow_execution: Some(execution.clone()),
                signal_name: a.signal_name,
                input: a.input,
                child_workflow_only: a.child_workflow_only,
                header: a.header,
                ..Default::default()
            });
        self.track_external(initiated_event_id, execution, false);
        Ok(())
    }

    pub fn initiate_cancel_external(
        &mut self,
        a: CancelExternal,
        completed_event_id: i64,
    ) -> Result<()> {
        check_target(
            &a.workflow_id,
            Cause::BadRequestCancelExternalWorkflowExecutionAttributes,
        )?;
        let info = self.info().clone();
        let execution = WorkflowExecution {
            workflow_id: a.workflow_id,
            run_id: a.run_id,
        };
        let initiated_event_id = self.append(
            RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
                workflow_task_completed_event_id: completed_event_id,
                namespace: info.namespace_name,
                namespace_id: info.namespace_id,
                workflow_execution: Some(execution.clone()),
                child_workflow_only: a.child_workflow_only,
                reason: a.reason,
                ..Default::default()
            },
        );
        self.track_external(initiated_event_id, execution, true);
        Ok(())
    }

    fn track_external(&mut self, initiated_event_id: i64, target: WorkflowExecution, cancel: bool) {
        let request = ExternalRequest {
            initiated_event_id,
            workflow_id: target.workflow_id,
            run_id: target.run_id,
            cancel,
        };
        self.state
            .external_requests
            .insert(initiated_event_id, request);
        self.add_timer(
            Duration::ZERO,
            Timer::ExternalRequest { initiated_event_id },
        );
    }
}

/// What delivery needs from the sender's initiated event.
struct Delivery {
    source: ExecutionKey,
    initiated_event_id: i64,
    target: WorkflowExecution,
    child_only: bool,
    event: A,
}

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
        self.update(&delivery.source, |txn| {
            if txn
                .state
                .external_requests
                .remove(&delivery.initiated_event_id)
                .is_none()
            {
                return Err(HistoryError::StaleTask);
            }
            txn.append_external(outcome(&delivery, txn, delivered));
            txn.schedule_workflow_task_if_needed();
            Ok(())
        })
        .await
    }

    /// Applies the signal or cancel request to its target; NotFound-like errors mean there
    /// is no such (running, and if asked, child) workflow.
    async fn deliver(&self, d: &Delivery) -> Result<Delivered> {
        let sender = d.source.execution();
        self.update_named(&d.source.namespace_id, &d.target, |txn| {
            let is_child =
                txn.info().parent.as_ref().is_some_and(|p| {
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
                    if self.may_signal(txn).is_err() {
                        txn.nothing_to_write();
                        return Ok(Delivered::OverSignalLimit);
                    }
                    if !txn.apply_signal(signal) {
                        txn.nothing_to_write();
                    }
                }
                A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(a) => {
                    let from = Some((d.initiated_event_id, sender.clone()));
                    if !txn.request_cancellation(&a.reason, "history-service", from) {
                        txn.nothing_to_write();
                    }
                }
                _ => return Err(HistoryError::StaleTask),
            }
            Ok(Delivered::Yes)
        })
        .await
    }
}

/// How delivering a signal or cancel request to its target went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Delivered {
    Yes,
    /// No such running (and, if asked, child) workflow.
    NotFound,
    /// The target takes no more signals (its signal count or history is at its limit).
    OverSignalLimit,
}

/// The sender's event saying how delivery went.
fn outcome(d: &Delivery, txn: &Txn, delivered: Delivered) -> A {
    let info = txn.info();
    let (namespace, namespace_id) = (info.namespace_name.clone(), info.namespace_id.clone());
    let workflow_execution = Some(d.target.clone());
    let initiated_event_id = d.initiated_event_id;
    match (&d.event, delivered) {
        (A::SignalExternalWorkflowExecutionInitiatedEventAttributes(_), Delivered::Yes) => {
            ExternalWorkflowExecutionSignaledEventAttributes {
                initiated_event_id,
                namespace,
                namespace_id,
                workflow_execution,
                ..Default::default()
            }
            .into()
        }
        (A::SignalExternalWorkflowExecutionInitiatedEventAttributes(a), failed) => {
            let cause = if failed == Delivered::OverSignalLimit {
                SignalExternalWorkflowExecutionFailedCause::SignalCountLimitExceeded
            } else {
                SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound
            };
            SignalExternalWorkflowExecutionFailedEventAttributes {
                cause: cause as i32,
                workflow_task_completed_event_id: a.workflow_task_completed_event_id,
                namespace,
                namespace_id,
                workflow_execution,
                initiated_event_id,
                ..Default::default()
            }
            .into()
        }
        (_, Delivered::Yes) => ExternalWorkflowExecutionCancelRequestedEventAttributes {
            initiated_event_id,
            namespace,
            namespace_id,
            workflow_execution,
        }
        .into(),
        (other, _) => {
            let completed = match other {
                A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(a) => {
                    a.workflow_task_completed_event_id
                }
                _ => 0,
            };
            RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                cause: CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound
                    as i32,
                workflow_task_completed_event_id: completed,
                namespace,
                namespace_id,
                workflow_execution,
                initiated_event_id,
                ..Default::default()
            }
            .into()
        }
    }
}
