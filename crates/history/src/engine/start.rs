//! New runs in the engine: a start request's validation and defaults, the first change of
//! a run (started event, first workflow task or backoff, timeouts) and the id policies.

use crate::engine::change::Change;
use crate::engine::context::Context;
use crate::engine::state::{ExecutionInfo, MutableState, ParentInfo};
use crate::engine::timer::Timer;
use crate::engine::{cron, retry};
use crate::{HistoryError, NamespaceRef, Result};
use chronicle_api::enums::v1::{
    ContinueAsNewInitiator, WorkflowExecutionStatus as Status,
    WorkflowIdConflictPolicy as Conflict, WorkflowIdReusePolicy as Reuse,
};
use chronicle_api::history::v1::{
    WorkflowExecutionSignaledEventAttributes, WorkflowExecutionStartedEventAttributes,
};
use chronicle_api::workflowservice::{
    StartWorkflowExecutionRequest, StartWorkflowExecutionResponse,
};
use chronicle_common::{ExecutionKey, limits, time};
use chronicle_persistence::{CurrentRun, CurrentRunWrite};
use std::time::{Duration, SystemTime};

/// A run about to be created: its started event and how long before its first workflow task.
pub(crate) struct NewRun {
    pub namespace: NamespaceRef,
    pub workflow_id: String,
    pub request_id: String,
    pub started: WorkflowExecutionStartedEventAttributes,
    pub backoff: Option<Duration>,
    /// Signal-with-start: recorded right after the started event, before the first task.
    pub signal: Option<WorkflowExecutionSignaledEventAttributes>,
    /// The run's summary and details, on its started event and in describe.
    pub user_metadata: Option<chronicle_api::sdk::v1::UserMetadata>,
    /// The starting worker asked to run the first workflow task itself (eager start).
    pub eager: bool,
}

/// What the current run of a workflow id means for a new start.
pub(crate) enum Decision {
    Create {
        previous: Option<String>,
    },
    /// Replace the running run: terminate it in the same write.
    TerminateAndCreate {
        previous: String,
    },
    Existing {
        run_id: String,
        started: bool,
    },
}

pub(crate) fn already_started(current: &CurrentRun) -> HistoryError {
    HistoryError::AlreadyStarted {
        start_request_id: current.start_request_id.clone(),
        run_id: current.run_id.clone(),
    }
}

// TerminateIfRunning is deprecated in favour of the conflict policy, yet clients still send it.
#[allow(deprecated)]
pub(crate) fn decide(
    current: Option<CurrentRun>,
    request_id: &str,
    reuse: i32,
    conflict: i32,
) -> Result<Decision> {
    let Some(current) = current else {
        return Ok(Decision::Create { previous: None });
    };
    if !request_id.is_empty() && current.start_request_id == request_id {
        return Ok(Decision::Existing {
            run_id: current.run_id,
            started: true,
        });
    }
    if current.running {
        let terminate = conflict == Conflict::TerminateExisting as i32
            || reuse == Reuse::TerminateIfRunning as i32;
        return if conflict == Conflict::UseExisting as i32 {
            Ok(Decision::Existing {
                run_id: current.run_id,
                started: false,
            })
        } else if terminate {
            Ok(Decision::TerminateAndCreate {
                previous: current.run_id,
            })
        } else {
            Err(already_started(&current))
        };
    }
    let failed = [
        Status::Failed,
        Status::Canceled,
        Status::Terminated,
        Status::TimedOut,
    ]
    .iter()
    .any(|s| *s as i32 == current.status);
    let allowed = match Reuse::try_from(reuse).unwrap_or(Reuse::AllowDuplicate) {
        Reuse::RejectDuplicate => false,
        Reuse::AllowDuplicateFailedOnly => failed,
        _ => true,
    };
    if allowed {
        Ok(Decision::Create {
            previous: Some(current.run_id),
        })
    } else {
        Err(already_started(&current))
    }
}

pub(crate) fn positive(
    d: &Option<chronicle_api::wkt::Duration>,
    field: &'static str,
) -> Result<Option<Duration>> {
    time::optional_duration(d.as_ref(), field)
        .map_err(|e| HistoryError::InvalidArgument(e.to_string()))
}

/// Temporal's timeout rules: the run timeout defaults to and is capped by the execution
/// timeout, the task timeout defaults to 10 s and is capped by the run timeout and 2 minutes.
pub(crate) fn normalized_timeouts(
    execution: Option<Duration>,
    run: Option<Duration>,
    task: Option<Duration>,
) -> (Option<Duration>, Option<Duration>, Duration) {
    let run = match (run, execution) {
        (Some(r), Some(e)) => Some(r.min(e)),
        (r, e) => r.or(e),
    };
    let mut task = task
        .unwrap_or(limits::DEFAULT_WORKFLOW_TASK_TIMEOUT)
        .min(limits::MAX_WORKFLOW_TASK_TIMEOUT);
    if let Some(run) = run {
        task = task.min(run);
    }
    (execution, run, task)
}

impl NewRun {
    /// `now` is when the request arrived: a cron workflow's first run waits from then.
    pub fn from_request(
        namespace: &NamespaceRef,
        r: StartWorkflowExecutionRequest,
        now: SystemTime,
    ) -> Result<Self> {
        let (execution, run, task) = normalized_timeouts(
            positive(
                &r.workflow_execution_timeout,
                "WorkflowExecutionTimeoutSeconds",
            )?,
            positive(&r.workflow_run_timeout, "WorkflowRunTimeoutSeconds")?,
            positive(&r.workflow_task_timeout, "WorkflowTaskTimeoutSeconds")?,
        );
        #[allow(deprecated)]
        if r.workflow_id_reuse_policy == Reuse::TerminateIfRunning as i32
            && r.workflow_id_conflict_policy != Conflict::Unspecified as i32
        {
            return Err(HistoryError::InvalidArgument(
                "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING cannot be used together with a WorkflowIDConflictPolicy.".into(),
            ));
        }
        let mut backoff = positive(&r.workflow_start_delay, "WorkflowStartDelaySeconds")?;
        if let Some(policy) = &r.retry_policy {
            retry::validate(policy).map_err(HistoryError::InvalidArgument)?;
        }
        let cron = !r.cron_schedule.is_empty();
        if cron {
            // A cron workflow's first run waits for the first scheduled time.
            let schedule =
                cron::Schedule::parse(&r.cron_schedule).map_err(HistoryError::InvalidArgument)?;
            let delay = backoff.unwrap_or_default();
            let start = time::after(now, delay);
            backoff = Some(delay.saturating_add(schedule.backoff(start, start)));
        }
        let started = WorkflowExecutionStartedEventAttributes {
            workflow_type: r.workflow_type,
            task_queue: r.task_queue.map(crate::engine::events::as_normal),
            input: r.input,
            workflow_execution_timeout: execution.map(time::duration),
            workflow_run_timeout: run.map(time::duration),
            workflow_task_timeout: Some(time::duration(task)),
            identity: r.identity,
            retry_policy: r.retry_policy.map(|p| retry::with_defaults(Some(p))),
            attempt: 1,
            workflow_execution_expiration_time: execution.map(|e| {
                time::timestamp(time::after(
                    time::after(now, backoff.unwrap_or_default()),
                    e,
                ))
            }),
            cron_schedule: r.cron_schedule,
            first_workflow_task_backoff: backoff.map(time::duration),
            memo: r.memo,
            search_attributes: r.search_attributes,
            header: r.header,
            workflow_id: r.workflow_id.clone(),
            continued_failure: r.continued_failure,
            last_completion_result: r.last_completion_result,
            priority: r.priority,
            // A cron workflow's runs, the first included, are started by its schedule.
            initiator: if cron {
                ContinueAsNewInitiator::CronSchedule as i32
            } else {
                0
            },
            ..Default::default()
        };
        Ok(Self {
            namespace: namespace.clone(),
            workflow_id: r.workflow_id,
            request_id: r.request_id,
            started,
            backoff,
            signal: None,
            user_metadata: r.user_metadata,
            eager: r.request_eager_execution,
        })
    }

    /// The run's first transaction: started event, then its first workflow task (or the
    /// backoff timer that will schedule it) and its timeout timers.
    pub fn into_change(mut self, ctx: Context, previous_run_id: Option<String>) -> Change {
        let run_id = ctx.run_id();
        if self.started.first_execution_run_id.is_empty() {
            self.started.first_execution_run_id = run_id.clone();
        }
        self.started.original_execution_run_id = run_id.clone();
        let key = ExecutionKey::new(&self.namespace.id, &self.workflow_id, &run_id);
        let s = &self.started;
        let now = ctx.now;
        let execution_time = time::after(now, self.backoff.unwrap_or_default());
        let info = ExecutionInfo {
            namespace_id: self.namespace.id.clone(),
            namespace_name: self.namespace.name.clone(),
            workflow_id: self.workflow_id.clone(),
            run_id: run_id.clone(),
            first_execution_run_id: s.first_execution_run_id.clone(),
            workflow_type: s
                .workflow_type
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            task_queue: s
                .task_queue
                .as_ref()
                .map(|q| q.name.clone())
                .unwrap_or_default(),
            workflow_task_timeout: s.workflow_task_timeout,
            run_timeout: s.workflow_run_timeout,
            execution_timeout: s.workflow_execution_timeout,
            start_time: Some(time::timestamp(now)),
            execution_time: Some(time::timestamp(execution_time)),
            status: Status::Running as i32,
            execution_expiration_time: s.workflow_execution_expiration_time,
            retry_policy: s.retry_policy.clone(),
            attempt: s.attempt,
            start_request_id: self.request_id.clone(),
            memo: s.memo.clone(),
            search_attributes: s.search_attributes.clone(),
            header: s.header.clone(),
            parent: parent_of(s),
            root: s.root_workflow_execution.clone(),
            user_metadata: self.user_metadata.clone(),
            priority: s.priority.clone(),
            cron_schedule: s.cron_schedule.clone(),
            retention: self.namespace.retention.map(time::duration),
            ..Default::default()
        };
        let state = MutableState {
            info: Some(info),
            next_event_id: 1,
            ..Default::default()
        };
        let mut change = Change::create(ctx, key, state);
        change.now = now;
        change.current = CurrentRunWrite::Claim {
            previous_run_id,
            row: CurrentRun {
                run_id,
                running: true,
                status: Status::Running as i32,
                start_request_id: self.request_id,
            },
        };
        let run_timeout = s.workflow_run_timeout;
        let expiration = s.workflow_execution_expiration_time;
        change.event_metadata = self.user_metadata;
        change.append(self.started);
        if let Some(signal) = self.signal {
            change.apply_signal(signal);
        }
        if let Some(run_timeout) = time::optional_duration(run_timeout.as_ref(), "")
            .ok()
            .flatten()
        {
            let at = time::after(execution_time, run_timeout);
            change.add_timer_at(at, Timer::WorkflowRunTimeout);
        }
        if let Some(expiration) = expiration {
            let at = time::from_timestamp(&expiration);
            change.add_timer_at(at, Timer::WorkflowExecutionTimeout);
        }
        match self.backoff {
            Some(backoff) => change.add_timer(backoff, Timer::WorkflowBackoff),
            None => change.schedule_workflow_task_if_needed(),
        }
        change
    }
}

pub(crate) fn parent_of(started: &WorkflowExecutionStartedEventAttributes) -> Option<ParentInfo> {
    let parent = started.parent_workflow_execution.as_ref()?;
    Some(ParentInfo {
        namespace_id: started.parent_workflow_namespace_id.clone(),
        namespace: started.parent_workflow_namespace.clone(),
        workflow_id: parent.workflow_id.clone(),
        run_id: parent.run_id.clone(),
        initiated_event_id: started.parent_initiated_event_id,
    })
}

pub(crate) fn response(
    run_id: String,
    first_execution_run_id: String,
    started: bool,
) -> StartWorkflowExecutionResponse {
    StartWorkflowExecutionResponse {
        run_id,
        first_execution_run_id,
        started,
        status: Status::Running as i32,
        ..Default::default()
    }
}

/// The run's expiration as a deadline, if it has one.
pub(crate) fn expiration(info: &ExecutionInfo) -> Option<SystemTime> {
    info.execution_expiration_time
        .as_ref()
        .map(time::from_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_and_task_timeouts_follow_temporal_rules() {
        let s = Duration::from_secs;
        assert_eq!(normalized_timeouts(None, None, None), (None, None, s(10)));
        assert_eq!(
            normalized_timeouts(Some(s(5)), None, None),
            (Some(s(5)), Some(s(5)), s(5))
        );
        assert_eq!(
            normalized_timeouts(Some(s(5)), Some(s(60)), None).1,
            Some(s(5))
        );
        assert_eq!(normalized_timeouts(None, None, Some(s(600))).2, s(120));
    }

    fn running(request: &str) -> Option<CurrentRun> {
        Some(CurrentRun {
            run_id: "r1".into(),
            running: true,
            status: 1,
            start_request_id: request.into(),
        })
    }

    #[test]
    fn a_running_workflow_id_is_not_started_twice() {
        assert!(matches!(
            decide(running("a"), "b", 0, 0),
            Err(HistoryError::AlreadyStarted { .. })
        ));
        assert!(matches!(
            decide(running("a"), "a", 0, 0),
            Ok(Decision::Existing { started: true, .. })
        ));
        assert!(matches!(
            decide(running("a"), "b", 0, Conflict::UseExisting as i32),
            Ok(Decision::Existing { started: false, .. })
        ));
        assert!(matches!(
            decide(running("a"), "b", 0, Conflict::TerminateExisting as i32),
            Ok(Decision::TerminateAndCreate { .. })
        ));
    }

    #[test]
    fn reuse_policy_governs_closed_workflow_ids() {
        let closed = |status: Status| {
            Some(CurrentRun {
                running: false,
                status: status as i32,
                ..running("a").unwrap()
            })
        };
        assert!(matches!(
            decide(closed(Status::Completed), "b", 0, 0),
            Ok(Decision::Create { .. })
        ));
        assert!(
            decide(
                closed(Status::Completed),
                "b",
                Reuse::RejectDuplicate as i32,
                0
            )
            .is_err()
        );
        assert!(
            decide(
                closed(Status::Completed),
                "b",
                Reuse::AllowDuplicateFailedOnly as i32,
                0
            )
            .is_err()
        );
        assert!(matches!(
            decide(
                closed(Status::Failed),
                "b",
                Reuse::AllowDuplicateFailedOnly as i32,
                0
            ),
            Ok(Decision::Create { .. })
        ));
    }
}
