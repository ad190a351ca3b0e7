//! Closing a run in the engine: completion, failure, cancellation, timeouts and
//! continue-as-new, and the chain's next run (retry, cron, continued-as) made with it.

use crate::engine::change::Change;
use crate::engine::start::{NewRun, expiration};
use crate::engine::state::ExecutionInfo;
use crate::engine::{cron, retry};
use crate::{HistoryError, NamespaceRef, Result};
use chronicle_api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes as ContinueAsNew;
use chronicle_api::common::v1::Payloads;
use chronicle_api::enums::v1::{
    ContinueAsNewInitiator as Initiator, RetryState, TimeoutType,
    WorkflowExecutionStatus as Status, WorkflowTaskFailedCause,
};
use chronicle_api::failure::v1::{Failure, TimeoutFailureInfo, failure::FailureInfo};
use chronicle_api::history::v1::{
    WorkflowExecutionCanceledEventAttributes, WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionContinuedAsNewEventAttributes, WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionStartedEventAttributes, WorkflowExecutionTimedOutEventAttributes,
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
    ContinuedAsNew(Box<ContinueAsNew>),
}

impl Closing {
    /// Whether closing this way may start the chain's next run, which is made from the
    /// run's started event: only then does the service read that event for the change.
    pub fn needs_first_event(&self, info: &ExecutionInfo) -> bool {
        let cron = !info.cron_schedule.is_empty();
        let retry = info.retry_policy.is_some();
        match self {
            Self::Completed(_) => cron,
            Self::Canceled(_) => false,
            Self::Failed(_) => retry || cron,
            Self::TimedOut { execution_expired } => !execution_expired && (retry || cron),
            Self::ContinuedAsNew(_) => true,
        }
    }
}

pub(crate) type Started = WorkflowExecutionStartedEventAttributes;

/// How the next run of a chain differs from the closing one.
pub(crate) struct NextRun {
    initiator: Initiator,
    backoff: Duration,
    failure: Option<Failure>,
    last_completion_result: Option<Payloads>,
    /// Continue-as-new: what the workflow asked to change.
    command: Option<Box<ContinueAsNew>>,
}

impl NextRun {
    fn cron(backoff: Duration, failure: Option<Failure>, result: Option<Payloads>) -> Self {
        Self {
            initiator: Initiator::CronSchedule,
            backoff,
            failure,
            last_completion_result: result,
            command: None,
        }
    }
}

pub(crate) fn run_id_of(next: &Option<Change>) -> String {
    next.as_ref()
        .map(|t| t.key.run_id.clone())
        .unwrap_or_default()
}

impl Change {
    /// Closes the run in `change`; returns the chain's next run to commit with it, if any.
    /// `first` is the run's started event, which the chain's next run is made from: the
    /// service reads it first when `needs_first_event` says the close may start one.
    pub fn close_run(
        &mut self,
        closing: Closing,
        completed_event_id: i64,
        first: Option<&Started>,
    ) -> Result<Option<Change>> {
        let change = self;
        let (status, next) = match closing {
            Closing::Completed(result) => {
                let next = match change.cron_next(None, result.clone()) {
                    Some(plan) => Some(change.next_run(plan, first)?),
                    None => None,
                };
                let new_execution_run_id = run_id_of(&next);
                change.append(WorkflowExecutionCompletedEventAttributes {
                    result,
                    workflow_task_completed_event_id: completed_event_id,
                    new_execution_run_id,
                });
                (Status::Completed, next)
            }
            Closing::Canceled(details) => {
                change.append(WorkflowExecutionCanceledEventAttributes {
                    workflow_task_completed_event_id: completed_event_id,
                    details,
                });
                (Status::Canceled, None)
            }
            Closing::Failed(failure) => {
                let (retry_state, next) = change.retry_or_cron(&failure, false, first)?;
                let new_execution_run_id = run_id_of(&next);
                change.append(WorkflowExecutionFailedEventAttributes {
                    failure: Some(*failure),
                    retry_state: retry_state as i32,
                    workflow_task_completed_event_id: completed_event_id,
                    new_execution_run_id,
                });
                (Status::Failed, next)
            }
            Closing::TimedOut { execution_expired } => {
                let (retry_state, next) =
                    change.retry_or_cron(&run_timeout_failure(), execution_expired, first)?;
                let new_execution_run_id = run_id_of(&next);
                change.append(WorkflowExecutionTimedOutEventAttributes {
                    retry_state: retry_state as i32,
                    new_execution_run_id,
                });
                (Status::TimedOut, next)
            }
            Closing::ContinuedAsNew(command) => {
                let next = change.continue_as_new(command, completed_event_id, first)?;
                (Status::ContinuedAsNew, Some(next))
            }
        };
        if let Some(next) = &next {
            change.state.info_mut().new_execution_run_id = next.key.run_id.clone();
        }
        change.close(status);
        Ok(next)
    }

    /// The run or execution timeout fired. A workflow task a worker is running is failed
    /// first and the events waiting behind it written, so the history stays well formed.
    pub fn time_out_run(
        &mut self,
        execution_expired: bool,
        first: Option<&Started>,
    ) -> Result<Option<Change>> {
        self.fail_in_flight_workflow_task(
            WorkflowTaskFailedCause::ForceCloseCommand,
            None,
            "history-service",
        );
        self.flush_buffered();
        self.close_run(Closing::TimedOut { execution_expired }, 0, first)
    }

    /// A failed or timed-out run is retried if its policy allows, else its cron schedule (if
    /// any) starts the next run. No retry outlives the execution timeout.
    fn retry_or_cron(
        &self,
        failure: &Failure,
        execution_expired: bool,
        first: Option<&Started>,
    ) -> Result<(RetryState, Option<Change>)> {
        let change = self;
        if execution_expired {
            return Ok((RetryState::Timeout, None));
        }
        let info = change.info();
        let decision = retry::next_backoff(
            info.retry_policy.as_ref(),
            info.attempt,
            Some(failure),
            change.now,
            expiration(info),
        );
        let (state, plan) = match decision {
            Ok(backoff) => {
                let plan = NextRun {
                    initiator: Initiator::Retry,
                    backoff,
                    failure: Some(failure.clone()),
                    last_completion_result: None,
                    command: None,
                };
                (RetryState::InProgress, Some(plan))
            }
            Err(state) => (state, change.cron_next(Some(failure.clone()), None)),
        };
        let next = match plan {
            Some(plan) => Some(change.next_run(plan, first)?),
            None => None,
        };
        Ok((state, next))
    }

    /// The next run of a cron workflow, at its next scheduled time.
    fn cron_next(&self, failure: Option<Failure>, result: Option<Payloads>) -> Option<NextRun> {
        let change = self;
        let info = change.info();
        let schedule = cron::Schedule::parse(&info.cron_schedule).ok()?;
        let start = info
            .execution_time
            .as_ref()
            .map_or(change.now, time::from_timestamp);
        Some(NextRun::cron(
            schedule.backoff(start, change.now),
            failure,
            result,
        ))
    }

    fn continue_as_new(
        &mut self,
        command: Box<ContinueAsNew>,
        completed_event_id: i64,
        first: Option<&Started>,
    ) -> Result<Change> {
        let change = self;
        check_continue_as_new(&command)?;
        let backoff =
            time::stored_duration(command.backoff_start_interval.as_ref()).unwrap_or_default();
        let plan = NextRun {
            initiator: Initiator::Workflow,
            backoff,
            failure: command.failure.clone(),
            last_completion_result: command.last_completion_result.clone(),
            command: Some(command),
        };
        let started = change.next_started(plan, first)?;
        let next = change.create_next(started.clone(), backoff);
        change.append(WorkflowExecutionContinuedAsNewEventAttributes {
            new_execution_run_id: next.key.run_id.clone(),
            workflow_type: started.workflow_type,
            task_queue: started.task_queue,
            input: started.input,
            workflow_run_timeout: started.workflow_run_timeout,
            workflow_task_timeout: started.workflow_task_timeout,
            workflow_task_completed_event_id: completed_event_id,
            backoff_start_interval: started.first_workflow_task_backoff,
            initiator: Initiator::Workflow as i32,
            last_completion_result: started.last_completion_result,
            header: started.header,
            memo: started.memo,
            search_attributes: started.search_attributes,
            ..Default::default()
        });
        Ok(next)
    }

    /// Creates the chain's next run from this run's started event and `plan`.
    fn next_run(&self, plan: NextRun, first: Option<&Started>) -> Result<Change> {
        let change = self;
        let backoff = plan.backoff;
        let started = change.next_started(plan, first)?;
        Ok(change.create_next(started, backoff))
    }

    fn next_started(&self, plan: NextRun, first: Option<&Started>) -> Result<Started> {
        let change = self;
        let first = first.cloned().ok_or_else(|| {
            HistoryError::Corrupt(format!("the started event of {} was not read", change.key))
        })?;
        let info = change.info();
        let mut started = WorkflowExecutionStartedEventAttributes {
            continued_execution_run_id: info.run_id.clone(),
            initiator: plan.initiator as i32,
            continued_failure: plan.failure,
            last_completion_result: plan.last_completion_result,
            attempt: if plan.initiator == Initiator::Retry {
                info.attempt + 1
            } else {
                1
            },
            first_workflow_task_backoff: (!plan.backoff.is_zero())
                .then(|| time::duration(plan.backoff)),
            memo: info.memo.clone(),
            search_attributes: info.search_attributes.clone(),
            original_execution_run_id: String::new(),
            ..first
        };
        if let Some(command) = plan.command {
            apply_continue_as_new(&mut started, *command);
        }
        Ok(started)
    }

    fn create_next(&self, started: Started, backoff: Duration) -> Change {
        let change = self;
        let info = change.info();
        let namespace = NamespaceRef::of(info);
        let new_run = NewRun {
            namespace,
            workflow_id: info.workflow_id.clone(),
            request_id: change.ctx.request_id(),
            started,
            backoff: (!backoff.is_zero()).then_some(backoff),
            signal: None,
            user_metadata: None,
            eager: false,
        };
        new_run.into_change(change.ctx.clone(), Some(info.run_id.clone()))
    }
}

/// What Temporal's command checker refuses in a ContinueAsNew command.
pub(crate) fn check_continue_as_new(c: &ContinueAsNew) -> Result<()> {
    let bad = |message: String| HistoryError::BadCommand {
        cause: WorkflowTaskFailedCause::BadContinueAsNewAttributes,
        message,
    };
    time::check_durations(&[
        (&c.workflow_run_timeout, "WorkflowRunTimeout"),
        (&c.workflow_task_timeout, "WorkflowTaskTimeout"),
        (&c.backoff_start_interval, "BackoffStartInterval"),
    ])
    .map_err(|e| bad(e.to_string()))?;
    match &c.retry_policy {
        Some(policy) => retry::validate(policy).map_err(bad),
        None => Ok(()),
    }
}

/// What the workflow asked to change for the run it continues as; unset fields keep the
/// closing run's values.
pub(crate) fn apply_continue_as_new(
    started: &mut WorkflowExecutionStartedEventAttributes,
    c: ContinueAsNew,
) {
    if c.workflow_type.as_ref().is_some_and(|t| !t.name.is_empty()) {
        started.workflow_type = c.workflow_type;
    }
    if c.task_queue.as_ref().is_some_and(|q| !q.name.is_empty()) {
        started.task_queue = c.task_queue.map(crate::engine::events::as_normal);
    }
    started.input = c.input;
    if time::stored_duration(c.workflow_run_timeout.as_ref()).is_some() {
        started.workflow_run_timeout = c.workflow_run_timeout;
    }
    if let Some(task) = time::stored_duration(c.workflow_task_timeout.as_ref()) {
        // Capped as on start.
        let task = task.min(chronicle_common::limits::MAX_WORKFLOW_TASK_TIMEOUT);
        started.workflow_task_timeout = Some(time::duration(task));
    }
    if c.header.is_some() {
        started.header = c.header;
    }
    if c.memo.is_some() {
        started.memo = c.memo;
    }
    if c.search_attributes.is_some() {
        started.search_attributes = c.search_attributes;
    }
    if c.retry_policy.is_some() {
        started.retry_policy = c.retry_policy.map(|p| retry::with_defaults(Some(p)));
    }
    if !c.cron_schedule.is_empty() {
        started.cron_schedule = c.cron_schedule;
    }
}

pub(crate) fn run_timeout_failure() -> Failure {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_api::wkt;

    fn cause(c: &ContinueAsNew) -> Option<WorkflowTaskFailedCause> {
        match check_continue_as_new(c) {
            Err(HistoryError::BadCommand { cause, .. }) => Some(cause),
            _ => None,
        }
    }

    #[test]
    fn continue_as_new_durations_are_checked_and_capped() {
        let bad = wkt::Duration {
            seconds: i64::MAX,
            nanos: 0,
        };
        let command = ContinueAsNew {
            workflow_run_timeout: Some(bad),
            ..Default::default()
        };
        assert_eq!(
            cause(&command),
            Some(WorkflowTaskFailedCause::BadContinueAsNewAttributes)
        );
        let long = time::duration(Duration::from_secs(3600));
        let command = ContinueAsNew {
            workflow_task_timeout: Some(long),
            ..Default::default()
        };
        assert_eq!(cause(&command), None);
        let mut started = WorkflowExecutionStartedEventAttributes::default();
        apply_continue_as_new(&mut started, command);
        assert_eq!(
            started.workflow_task_timeout,
            Some(time::duration(
                chronicle_common::limits::MAX_WORKFLOW_TASK_TIMEOUT
            ))
        );
    }
}
