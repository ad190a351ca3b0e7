//! Closing a run: completion, failure, cancellation and timeouts. A failure or timeout that
//! the workflow's retry policy allows starts the next run, committed with the closing one.

use crate::start::{NewRun, expiration};
use crate::timers::{TimerKind, TimerTask};
use crate::txn::Txn;
use crate::{History, HistoryError, NamespaceRef, Result, retry};
use chronicle_api::common::v1::Payloads;
use chronicle_api::enums::v1::{
    ContinueAsNewInitiator, RetryState, TimeoutType, WorkflowExecutionStatus as Status,
    WorkflowTaskFailedCause,
};
use chronicle_api::failure::v1::{Failure, TimeoutFailureInfo, failure::FailureInfo};
use chronicle_api::history::v1::{
    WorkflowExecutionCanceledEventAttributes, WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionFailedEventAttributes, WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes, history_event::Attributes,
};
use chronicle_common::time;
use std::time::Duration;

pub(crate) enum Closing {
    Completed(Option<Payloads>),
    Failed(Box<Failure>),
    Canceled(Option<Payloads>),
    /// The run timeout fired; or the execution timeout, which no retry outlives.
    TimedOut {
        execution_expired: bool,
    },
}

impl History {
    /// Closes the run in `txn`; returns the retry run to commit with it, if one was started.
    pub(crate) async fn close_run(
        &self,
        txn: &mut Txn,
        closing: Closing,
        completed_event_id: i64,
    ) -> Result<Option<Txn>> {
        let status = match &closing {
            Closing::Completed(_) => Status::Completed,
            Closing::Failed(_) => Status::Failed,
            Closing::Canceled(_) => Status::Canceled,
            Closing::TimedOut { .. } => Status::TimedOut,
        };
        let mut successor = None;
        match closing {
            Closing::Completed(result) => {
                txn.append(WorkflowExecutionCompletedEventAttributes {
                    result,
                    workflow_task_completed_event_id: completed_event_id,
                    new_execution_run_id: String::new(),
                });
            }
            Closing::Canceled(details) => {
                txn.append(WorkflowExecutionCanceledEventAttributes {
                    workflow_task_completed_event_id: completed_event_id,
                    details,
                });
            }
            Closing::Failed(failure) => {
                let (retry_state, next) = self.retry(txn, Some(&failure)).await?;
                let new_execution_run_id = next
                    .as_ref()
                    .map(|t| t.key.run_id.clone())
                    .unwrap_or_default();
                txn.append(WorkflowExecutionFailedEventAttributes {
                    failure: Some(*failure),
                    retry_state: retry_state as i32,
                    workflow_task_completed_event_id: completed_event_id,
                    new_execution_run_id,
                });
                successor = next;
            }
            Closing::TimedOut { execution_expired } => {
                let (retry_state, next) = if execution_expired {
                    (RetryState::Timeout, None)
                } else {
                    self.retry(txn, Some(&run_timeout_failure())).await?
                };
                let new_execution_run_id = next
                    .as_ref()
                    .map(|t| t.key.run_id.clone())
                    .unwrap_or_default();
                txn.append(WorkflowExecutionTimedOutEventAttributes {
                    retry_state: retry_state as i32,
                    new_execution_run_id,
                });
                successor = next;
            }
        }
        if let Some(next) = &successor {
            txn.state.info_mut().new_execution_run_id = next.key.run_id.clone();
        }
        txn.close(status);
        Ok(successor)
    }

    /// Asks the retry policy; when it allows another attempt, creates that run.
    async fn retry(
        &self,
        txn: &Txn,
        failure: Option<&Failure>,
    ) -> Result<(RetryState, Option<Txn>)> {
        let info = txn.info();
        let decision = retry::next_backoff(
            info.retry_policy.as_ref(),
            info.attempt,
            failure,
            txn.now,
            expiration(info),
        );
        match decision {
            Ok(backoff) => {
                let next = self.retry_run(txn, failure.cloned(), backoff).await?;
                Ok((RetryState::InProgress, Some(next)))
            }
            Err(state) => Ok((state, None)),
        }
    }

    async fn retry_run(
        &self,
        txn: &Txn,
        failure: Option<Failure>,
        backoff: Duration,
    ) -> Result<Txn> {
        let first = match self.read_event(&txn.key, 1).await?.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a,
            _ => {
                return Err(HistoryError::Corrupt(format!(
                    "first event of {} is not WorkflowExecutionStarted",
                    txn.key
                )));
            }
        };
        let info = txn.info();
        let started = WorkflowExecutionStartedEventAttributes {
            continued_execution_run_id: info.run_id.clone(),
            initiator: ContinueAsNewInitiator::Retry as i32,
            continued_failure: failure,
            attempt: info.attempt + 1,
            first_workflow_task_backoff: Some(time::duration(backoff)),
            memo: info.memo.clone(),
            search_attributes: info.search_attributes.clone(),
            original_execution_run_id: String::new(),
            ..first
        };
        let namespace = NamespaceRef {
            id: info.namespace_id.clone(),
            name: info.namespace_name.clone(),
        };
        let new_run = NewRun {
            namespace,
            workflow_id: info.workflow_id.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            started,
            backoff: Some(backoff),
            signal: None,
        };
        Ok(new_run.into_txn(self, Some(info.run_id.clone())))
    }

    /// The run or execution timeout fired.
    pub(crate) async fn fire_workflow_timeout(&self, task: &TimerTask) -> Result<()> {
        let key = task.key();
        let _lock = self
            .inner
            .locks
            .lock(&key.namespace_id, &key.workflow_id)
            .await;
        let mut txn = self.load_running(&key).await?;
        txn.fail_in_flight_workflow_task(
            WorkflowTaskFailedCause::ForceCloseCommand,
            None,
            "history-service",
        );
        txn.flush_buffered();
        let execution_expired = task.kind == TimerKind::WorkflowExecutionTimeout as i32;
        let successor = self
            .close_run(&mut txn, Closing::TimedOut { execution_expired }, 0)
            .await?;
        let mut txns = vec![txn];
        txns.extend(successor);
        self.commit_all(txns).await
    }
}

fn run_timeout_failure() -> Failure {
    Failure {
        message: "workflow run timeout".into(),
        source: "Server".into(),
        failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
            timeout_type: TimeoutType::StartToClose as i32,
            last_heartbeat_details: None,
        })),
        ..Default::default()
    }
}
