//! Child workflows in the engine: the StartChildWorkflowExecution command, the child's
//! started and closed events in the parent, and the parent close policies armed on close.

use crate::engine::change::Change;
use crate::engine::start::NewRun;
use crate::engine::state::{ChildInfo, ExecutionInfo};
use crate::engine::timer::Timer;
use crate::engine::{cron, retry};
use crate::{HistoryError, NamespaceRef, Result};
use chronicle_api::command::v1::StartChildWorkflowExecutionCommandAttributes as StartChild;
use chronicle_api::common::v1::{WorkflowExecution, WorkflowType};
use chronicle_api::enums::v1::{ParentClosePolicy, WorkflowTaskFailedCause as Cause};
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::history::v1::{
    ChildWorkflowExecutionCanceledEventAttributes, ChildWorkflowExecutionCompletedEventAttributes,
    ChildWorkflowExecutionFailedEventAttributes, ChildWorkflowExecutionStartedEventAttributes,
    ChildWorkflowExecutionTerminatedEventAttributes, ChildWorkflowExecutionTimedOutEventAttributes,
    StartChildWorkflowExecutionInitiatedEventAttributes,
};
use chronicle_common::{limits, time};
use std::time::Duration;

pub(crate) fn bad(message: impl Into<String>) -> HistoryError {
    HistoryError::BadCommand {
        cause: Cause::BadStartChildExecutionAttributes,
        message: message.into(),
    }
}

pub(crate) fn check(a: &StartChild) -> Result<()> {
    let type_name = a
        .workflow_type
        .as_ref()
        .map(|t| t.name.as_str())
        .unwrap_or_default();
    for (value, what) in [
        (a.workflow_id.as_str(), "WorkflowId"),
        (type_name, "WorkflowType"),
    ] {
        if value.is_empty() || value.len() > limits::MAX_ID_LENGTH {
            return Err(bad(format!(
                "{what} must be 1 to {} characters.",
                limits::MAX_ID_LENGTH
            )));
        }
    }
    time::check_durations(&[
        (&a.workflow_execution_timeout, "WorkflowExecutionTimeout"),
        (&a.workflow_run_timeout, "WorkflowRunTimeout"),
        (&a.workflow_task_timeout, "WorkflowTaskTimeout"),
    ])
    .map_err(|e| bad(e.to_string()))?;
    if let Some(policy) = &a.retry_policy {
        retry::validate(policy).map_err(bad)?;
    }
    if !a.cron_schedule.is_empty() {
        cron::Schedule::parse(&a.cron_schedule).map_err(bad)?;
    }
    Ok(())
}

impl ChildInfo {
    /// The child as its initiated event describes it (`initiated_event_id` left to the caller).
    pub fn initiated(a: &StartChildWorkflowExecutionInitiatedEventAttributes) -> Self {
        Self {
            workflow_id: a.workflow_id.clone(),
            workflow_type: a
                .workflow_type
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            parent_close_policy: a.parent_close_policy,
            ..Default::default()
        }
    }
}

impl Change {
    pub fn initiate_child(&mut self, a: StartChild, completed_event_id: i64) -> Result<()> {
        check(&a)?;
        let info = self.info().clone();
        let task_queue = match a.task_queue {
            Some(q) if !q.name.is_empty() => q,
            _ => crate::engine::events::normal_queue(&info.task_queue),
        };
        let policy = match ParentClosePolicy::try_from(a.parent_close_policy) {
            Ok(ParentClosePolicy::Unspecified) | Err(_) => ParentClosePolicy::Terminate,
            Ok(policy) => policy,
        };
        let initiated = StartChildWorkflowExecutionInitiatedEventAttributes {
            namespace: info.namespace_name.clone(),
            namespace_id: info.namespace_id.clone(),
            workflow_id: a.workflow_id,
            workflow_type: a.workflow_type,
            task_queue: Some(task_queue),
            input: a.input,
            workflow_execution_timeout: a.workflow_execution_timeout,
            workflow_run_timeout: a.workflow_run_timeout,
            workflow_task_timeout: a.workflow_task_timeout,
            parent_close_policy: policy as i32,
            workflow_task_completed_event_id: completed_event_id,
            workflow_id_reuse_policy: a.workflow_id_reuse_policy,
            retry_policy: a.retry_policy,
            cron_schedule: a.cron_schedule,
            header: a.header,
            memo: a.memo,
            search_attributes: a.search_attributes,
            priority: a.priority,
            ..Default::default()
        };
        let child = ChildInfo::initiated(&initiated);
        let initiated_event_id = self.append(initiated);
        self.state.children.insert(
            initiated_event_id,
            ChildInfo {
                initiated_event_id,
                ..child
            },
        );
        self.add_timer(Duration::ZERO, Timer::StartChild { initiated_event_id });
        Ok(())
    }

    /// Run by `close`: a child's chain that ends tells its parent; a parent that closes
    /// applies its children's close policies.
    pub fn after_close(&mut self) {
        let info = self.info();
        if info.parent.is_some() && info.new_execution_run_id.is_empty() {
            self.add_timer(Duration::ZERO, Timer::RecordChildClosed);
        }
        let to_close: Vec<i64> = self
            .state
            .children
            .values()
            .filter(|c| c.parent_close_policy != ParentClosePolicy::Abandon as i32)
            .map(|c| c.initiated_event_id)
            .collect();
        for initiated_event_id in to_close {
            self.add_timer(
                Duration::ZERO,
                Timer::ParentClosePolicy { initiated_event_id },
            );
        }
    }

    /// The parent's events for a child that started, then (optionally) closed: adjacent, and
    /// buffered together while a workflow task runs.
    pub(crate) fn record_child(
        &mut self,
        initiated_event_id: i64,
        child_run_id: &str,
        closed: Option<ChildClose>,
    ) {
        let Some(child) = self.state.children.get(&initiated_event_id).cloned() else {
            return;
        };
        let info = self.info().clone();
        let execution = WorkflowExecution {
            workflow_id: child.workflow_id.clone(),
            run_id: if child.run_id.is_empty() {
                child_run_id.to_owned()
            } else {
                child.run_id.clone()
            },
        };
        let workflow_type = Some(WorkflowType {
            name: child.workflow_type.clone(),
        });
        let mut events: Vec<A> = Vec::new();
        let started_event_id = if child.started_event_id != 0 {
            child.started_event_id
        } else {
            events.push(
                ChildWorkflowExecutionStartedEventAttributes {
                    namespace: info.namespace_name.clone(),
                    namespace_id: info.namespace_id.clone(),
                    initiated_event_id,
                    workflow_execution: Some(execution.clone()),
                    workflow_type: workflow_type.clone(),
                    header: None,
                }
                .into(),
            );
            if self.state.wft_in_flight() {
                crate::engine::events::BUFFERED_EVENT_ID
            } else {
                self.state.next_event_id
            }
        };
        let ids = ChildIds {
            namespace: info.namespace_name,
            namespace_id: info.namespace_id,
            execution,
            workflow_type,
            initiated_event_id,
            started_event_id,
        };
        match closed {
            Some(close) => {
                events.push(close.event(ids));
                self.state.children.remove(&initiated_event_id);
            }
            None => {
                if let Some(child) = self.state.children.get_mut(&initiated_event_id) {
                    child.started_event_id = started_event_id;
                    child.run_id = ids.execution.run_id;
                }
            }
        }
        self.append_external_all(events);
        self.schedule_workflow_task_if_needed();
    }
}

/// How a child's chain ended, from its close event.
pub(crate) struct ChildClose(pub A);

/// What every child event of the parent names.
pub(crate) struct ChildIds {
    namespace: String,
    namespace_id: String,
    execution: WorkflowExecution,
    workflow_type: Option<WorkflowType>,
    initiated_event_id: i64,
    started_event_id: i64,
}

impl ChildClose {
    fn event(self, ids: ChildIds) -> A {
        let ChildIds {
            namespace,
            namespace_id,
            execution,
            workflow_type,
            initiated_event_id,
            started_event_id,
        } = ids;
        let workflow_execution = Some(execution);
        match self.0 {
            A::WorkflowExecutionCompletedEventAttributes(c) => {
                ChildWorkflowExecutionCompletedEventAttributes {
                    result: c.result,
                    namespace,
                    namespace_id,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                }
                .into()
            }
            A::WorkflowExecutionFailedEventAttributes(c) => {
                ChildWorkflowExecutionFailedEventAttributes {
                    failure: c.failure,
                    namespace,
                    namespace_id,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    retry_state: c.retry_state,
                }
                .into()
            }
            A::WorkflowExecutionCanceledEventAttributes(c) => {
                ChildWorkflowExecutionCanceledEventAttributes {
                    details: c.details,
                    namespace,
                    namespace_id,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                }
                .into()
            }
            A::WorkflowExecutionTimedOutEventAttributes(c) => {
                ChildWorkflowExecutionTimedOutEventAttributes {
                    namespace,
                    namespace_id,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    retry_state: c.retry_state,
                }
                .into()
            }
            _ => ChildWorkflowExecutionTerminatedEventAttributes {
                namespace,
                namespace_id,
                workflow_execution,
                workflow_type,
                initiated_event_id,
                started_event_id,
            }
            .into(),
        }
    }
}

impl NewRun {
    /// The child run a parent's initiated event asks for. Its request id is derived from the
    /// parent run and event, so a repeated start finds the child it already started.
    pub(crate) fn child(
        parent: &ExecutionInfo,
        initiated_event_id: i64,
        a: StartChildWorkflowExecutionInitiatedEventAttributes,
        now: std::time::SystemTime,
    ) -> Result<Self> {
        let request = chronicle_api::workflowservice::StartWorkflowExecutionRequest {
            namespace: parent.namespace_name.clone(),
            workflow_id: a.workflow_id,
            workflow_type: a.workflow_type,
            task_queue: a.task_queue,
            input: a.input,
            workflow_execution_timeout: a.workflow_execution_timeout,
            workflow_run_timeout: a.workflow_run_timeout,
            workflow_task_timeout: a.workflow_task_timeout,
            request_id: format!("{}:{initiated_event_id}", parent.run_id),
            workflow_id_reuse_policy: a.workflow_id_reuse_policy,
            retry_policy: a.retry_policy,
            cron_schedule: a.cron_schedule,
            memo: a.memo,
            search_attributes: a.search_attributes,
            header: a.header,
            priority: a.priority,
            ..Default::default()
        };
        let namespace = NamespaceRef::of(parent);
        let mut run = NewRun::from_request(&namespace, request, now)?;
        run.started.parent_workflow_namespace = parent.namespace_name.clone();
        run.started.parent_workflow_namespace_id = parent.namespace_id.clone();
        run.started.parent_workflow_execution = Some(WorkflowExecution {
            workflow_id: parent.workflow_id.clone(),
            run_id: parent.run_id.clone(),
        });
        run.started.parent_initiated_event_id = initiated_event_id;
        // A child's root is its parent's: the top of the tree, however deep the child.
        run.started.root_workflow_execution = parent
            .root
            .clone()
            .or_else(|| run.started.parent_workflow_execution.clone());
        Ok(run)
    }
}
