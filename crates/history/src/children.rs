//! Child workflows: the StartChildWorkflowExecution command, starting the child (a task due
//! at once on the parent's shard), telling the parent when the child started and when its
//! chain closed, and the parent close policy. No two workflow locks are ever held together:
//! each step changes one run, and every step can be repeated harmlessly.

use crate::engine::children::ChildClose;
use crate::engine::start::NewRun;
use crate::{History, HistoryError, Result};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::enums::v1::{
    ParentClosePolicy, StartChildWorkflowExecutionFailedCause, WorkflowIdConflictPolicy,
};
use chronicle_api::history::v1::StartChildWorkflowExecutionFailedEventAttributes;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_common::{ExecutionKey, time};

impl History {
    pub(crate) async fn fire_start_child(
        &self,
        parent_key: &ExecutionKey,
        initiated_event_id: i64,
    ) -> Result<()> {
        let parent_key = parent_key.clone();
        let (state, _) = self.snapshot(&parent_key).await?;
        let pending = state
            .children
            .get(&initiated_event_id)
            .is_some_and(|c| c.started_event_id == 0);
        if !state.is_running() || !pending {
            return Err(HistoryError::StaleTask);
        }
        let event = self.read_event(&parent_key, initiated_event_id).await?;
        let user_metadata = event.user_metadata;
        let initiated = match event.attributes {
            Some(A::StartChildWorkflowExecutionInitiatedEventAttributes(a)) => a,
            _ => {
                return Err(HistoryError::Corrupt(format!(
                    "event {} of {parent_key} is not a child's initiated event",
                    initiated_event_id
                )));
            }
        };
        let reuse = initiated.workflow_id_reuse_policy;
        let failure = StartChildWorkflowExecutionFailedEventAttributes {
            namespace: initiated.namespace.clone(),
            namespace_id: initiated.namespace_id.clone(),
            workflow_id: initiated.workflow_id.clone(),
            workflow_type: initiated.workflow_type.clone(),
            cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists as i32,
            initiated_event_id,
            workflow_task_completed_event_id: initiated.workflow_task_completed_event_id,
            ..Default::default()
        };
        let mut run = NewRun::child(state.info(), initiated_event_id, initiated, time::now())?;
        // The child is started with the summary its parent's command gave it.
        run.user_metadata = user_metadata;
        match self
            .start_run(run, reuse, WorkflowIdConflictPolicy::Fail as i32, None)
            .await
        {
            Ok(started) => {
                self.update(&parent_key, |change| {
                    change.record_child(initiated_event_id, &started.run_id, None);
                    Ok(())
                })
                .await
            }
            Err(HistoryError::AlreadyStarted { .. }) => {
                self.update(&parent_key, |change| {
                    if change.state.children.remove(&initiated_event_id).is_none() {
                        return Err(HistoryError::StaleTask);
                    }
                    change.append_external(failure);
                    change.schedule_workflow_task_if_needed();
                    Ok(())
                })
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// A child's chain closed (the timer is on the child's last run): record it in the parent.
    pub(crate) async fn fire_record_child_closed(&self, child_key: &ExecutionKey) -> Result<()> {
        let child_key = child_key.clone();
        let (child, _) = self.snapshot(&child_key).await?;
        let parent = child.info().parent.clone().ok_or(HistoryError::StaleTask)?;
        let close = self
            .read_event(&child_key, child.info().close_event_id)
            .await?;
        let close = ChildClose(close.attributes.ok_or_else(|| {
            HistoryError::Corrupt(format!("close event of {child_key} has no attributes"))
        })?);
        let parent_key =
            ExecutionKey::new(&parent.namespace_id, &parent.workflow_id, &parent.run_id);
        let first_run = child.info().first_execution_run_id.clone();
        self.update(&parent_key, |change| {
            if !change
                .state
                .children
                .contains_key(&parent.initiated_event_id)
            {
                return Err(HistoryError::StaleTask);
            }
            change.record_child(parent.initiated_event_id, &first_run, Some(close));
            Ok(())
        })
        .await
    }

    /// The parent closed: terminate or cancel the child, if it is still this parent's child.
    pub(crate) async fn fire_parent_close_policy(
        &self,
        parent_key: &ExecutionKey,
        initiated_event_id: i64,
    ) -> Result<()> {
        let parent_key = parent_key.clone();
        let (parent, _) = self.snapshot(&parent_key).await?;
        let child = parent
            .children
            .get(&initiated_event_id)
            .cloned()
            .ok_or(HistoryError::StaleTask)?;
        let execution = WorkflowExecution {
            workflow_id: child.workflow_id.clone(),
            run_id: String::new(),
        };
        let terminate = child.parent_close_policy == ParentClosePolicy::Terminate as i32;
        self.update_named(&parent_key.namespace_id, &execution, |change| {
            let ours = change.info().parent.as_ref().is_some_and(|p| {
                p.workflow_id == parent_key.workflow_id && p.run_id == parent_key.run_id
            });
            if !ours {
                return Err(HistoryError::StaleTask);
            }
            if terminate {
                change.terminate("by parent close policy", None, "history-service");
            } else {
                change.request_cancellation(
                    "by parent close policy",
                    "history-service",
                    Some((initiated_event_id, parent_key.execution())),
                );
            }
            Ok(())
        })
        .await
    }
}
