//! What a schedule asks of workflows: the start of one action, named by its nominal time so
//! that a start repeated after a crash is the same start, and the checks on what a schedule
//! may start.

use super::state::{BufferedStart, ScheduleJob};
use crate::{Result, WorkerError};
use chronicle_api::common::v1::SearchAttributes;
use chronicle_api::schedule::v1::Schedule;
use chronicle_api::schedule::v1::schedule_action::Action;
use chronicle_api::workflowservice::StartWorkflowExecutionRequest;
use chronicle_common::payload::json_string;
use chronicle_common::time;
use std::time::SystemTime;

const MAX_ID_LENGTH: usize = 1000;

pub(crate) fn check_id(schedule_id: &str) -> Result<()> {
    if schedule_id.is_empty() {
        return Err(WorkerError::InvalidArgument(
            "ScheduleId is not set on request.".into(),
        ));
    }
    if schedule_id.len() > MAX_ID_LENGTH {
        return Err(WorkerError::InvalidArgument(
            "ScheduleId length exceeds limit.".into(),
        ));
    }
    Ok(())
}

/// A schedule must say what to start, and where.
pub(crate) fn check_action(schedule: &Schedule) -> Result<()> {
    let start = match schedule.action.as_ref().and_then(|a| a.action.as_ref()) {
        Some(Action::StartWorkflow(start)) => start,
        None => {
            return Err(WorkerError::InvalidArgument(
                "Schedule action is not set.".into(),
            ));
        }
    };
    let missing = if start.workflow_id.is_empty() {
        Some("WorkflowId is not set on request.")
    } else if start
        .workflow_type
        .as_ref()
        .is_none_or(|t| t.name.is_empty())
    {
        Some("WorkflowType is not set on request.")
    } else if start.task_queue.as_ref().is_none_or(|q| q.name.is_empty()) {
        Some("TaskQueue is not set on request.")
    } else {
        None
    };
    missing.map_or(Ok(()), |m| Err(WorkerError::InvalidArgument(m.into())))
}

/// RFC 3339 in UTC to the second, as Temporal names scheduled runs.
fn rfc3339_seconds(t: SystemTime) -> String {
    let secs = time::unix_nanos(t).div_euclid(1_000_000_000);
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn nominal(start: &BufferedStart) -> SystemTime {
    start
        .nominal
        .as_ref()
        .map_or(SystemTime::UNIX_EPOCH, time::from_timestamp)
}

/// The identity a schedule's calls carry, as Temporal's scheduler names itself.
pub(crate) fn identity(job: &ScheduleJob) -> String {
    format!("temporal-scheduler-{}-{}", job.namespace, job.schedule_id)
}

/// The same for every attempt at one action of one schedule.
pub(crate) fn request_id_of(job: &ScheduleJob, what: &str) -> String {
    format!("sched-{}-{}-{what}", job.namespace_id, job.schedule_id)
}

/// The start of one action: the schedule's workflow under an id made from the nominal
/// time, with the schedule's marks and what the last run left for the next.
pub(crate) fn start_request(
    job: &ScheduleJob,
    start: &BufferedStart,
) -> StartWorkflowExecutionRequest {
    let action = match job
        .schedule()
        .action
        .as_ref()
        .and_then(|a| a.action.as_ref())
    {
        Some(Action::StartWorkflow(action)) => action.clone(),
        None => Default::default(),
    };
    let at = nominal(start);
    let keep_id = job
        .schedule()
        .policies
        .as_ref()
        .is_some_and(|p| p.keep_original_workflow_id);
    let workflow_id = if keep_id {
        action.workflow_id.clone()
    } else {
        format!("{}-{}", action.workflow_id, rfc3339_seconds(at))
    };
    let actual = start.actual.as_ref().map_or(at, time::from_timestamp);
    let request_id = request_id_of(
        job,
        &format!("{}-{}", time::unix_nanos(at), time::unix_nanos(actual)),
    );
    let mut search_attributes = action.search_attributes.unwrap_or_default();
    marks(&mut search_attributes, &job.schedule_id, at);
    StartWorkflowExecutionRequest {
        namespace: job.namespace.clone(),
        workflow_id,
        workflow_type: action.workflow_type,
        task_queue: action.task_queue,
        input: action.input,
        workflow_execution_timeout: action.workflow_execution_timeout,
        workflow_run_timeout: action.workflow_run_timeout,
        workflow_task_timeout: action.workflow_task_timeout,
        identity: identity(job),
        request_id,
        workflow_id_reuse_policy: action.workflow_id_reuse_policy,
        retry_policy: action.retry_policy,
        cron_schedule: action.cron_schedule,
        memo: action.memo,
        search_attributes: Some(search_attributes),
        header: action.header,
        user_metadata: action.user_metadata,
        versioning_override: action.versioning_override,
        priority: action.priority,
        last_completion_result: job.last_completion_result.clone(),
        continued_failure: job.last_failure.clone(),
        ..Default::default()
    }
}

/// The search attributes Temporal puts on every scheduled run: who scheduled it, and for when.
fn marks(attributes: &mut SearchAttributes, schedule_id: &str, nominal: SystemTime) {
    let fields = &mut attributes.indexed_fields;
    fields.insert("TemporalScheduledById".into(), json_string(schedule_id));
    fields.insert(
        "TemporalScheduledStartTime".into(),
        json_string(&rfc3339_seconds(nominal)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn scheduled_runs_are_named_by_their_nominal_time_to_the_second() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        assert_eq!(rfc3339_seconds(t), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_schedule_without_an_action_or_its_task_queue_is_refused() {
        let e = check_action(&Schedule::default()).unwrap_err();
        assert_eq!(e.to_string(), "Schedule action is not set.");
        assert!(check_id("").is_err());
        assert!(check_id("s").is_ok());
    }
}
