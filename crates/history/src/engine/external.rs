//! Signals and cancel requests a workflow sends to another workflow, in the engine: the
//! command's initiated event and the outcome recorded in the sender.

use crate::engine::change::Change;
use crate::engine::state::ExternalRequest;
use crate::engine::timer::Timer;
use crate::{HistoryError, Result};
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
use chronicle_api::history::v1::{
    ExternalWorkflowExecutionCancelRequestedEventAttributes,
    ExternalWorkflowExecutionSignaledEventAttributes,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
};
use chronicle_common::{ExecutionKey, limits};
use std::time::Duration;

pub(crate) fn bad(cause: Cause, message: impl Into<String>) -> HistoryError {
    HistoryError::BadCommand {
        cause,
        message: message.into(),
    }
}

pub(crate) fn check_target(workflow_id: &str, cause: Cause) -> Result<()> {
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

impl Change {
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
pub(crate) struct Delivery {
    pub source: ExecutionKey,
    pub initiated_event_id: i64,
    pub target: WorkflowExecution,
    pub child_only: bool,
    pub event: A,
}

/// How delivering a signal or cancel request to its target went.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    Yes,
    /// No such running (and, if asked, child) workflow.
    NotFound,
    /// The target takes no more signals (its signal count or history is at its limit).
    OverSignalLimit,
}

/// The sender's event saying how delivery went.
pub(crate) fn outcome(d: &Delivery, change: &Change, delivered: Delivered) -> A {
    let info = change.info();
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
