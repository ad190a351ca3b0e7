//! Activities: scheduling from a command, handing an attempt to a poller, and the worker's
//! heartbeats and results. How an attempt ends (retry or final event) is in `activity_end`.

use crate::activity_end::AttemptEnd;
use crate::engine::timer::{Attempt, Timer};
use crate::state::ActivityInfo;
use crate::txn::Txn;
use crate::{History, HistoryError, NamespaceRef, Result, retry};
use chronicle_api::command::v1::ScheduleActivityTaskCommandAttributes;
use chronicle_api::common::v1::{ActivityType, Payloads, WorkflowExecution, WorkflowType};
use chronicle_api::enums::v1::{TimeoutType, WorkflowTaskFailedCause};
use chronicle_api::failure::v1::Failure;
use chronicle_api::history::v1::{ActivityTaskScheduledEventAttributes, history_event::Attributes};
use chronicle_api::workflowservice::{PollActivityTaskQueueRequest, PollActivityTaskQueueResponse};
use chronicle_common::token::{TOKEN_VERSION, TaskToken};
use chronicle_common::{DispatchTask, ExecutionKey, QueueKind, limits, time};
use std::time::Duration;
use tokio::time::Instant;

/// Which activity attempt a worker's call is about.
#[derive(Clone, Debug)]
pub enum ActivityTarget {
    /// The token from the poll: names one attempt exactly.
    Token(TaskToken),
    /// The *ById calls: the activity's current attempt. An empty run id means the current run.
    Id {
        workflow_id: String,
        run_id: String,
        activity_id: String,
    },
}

impl ActivityTarget {
    /// The run the call names; an empty run id stands for the current run.
    fn execution(&self) -> WorkflowExecution {
        match self {
            Self::Token(t) => WorkflowExecution {
                workflow_id: t.workflow_id.clone(),
                run_id: t.run_id.clone(),
            },
            Self::Id {
                workflow_id,
                run_id,
                ..
            } => WorkflowExecution {
                workflow_id: workflow_id.clone(),
                run_id: run_id.clone(),
            },
        }
    }
}

/// How a worker reports the end of an activity attempt.
#[derive(Clone, Debug)]
pub enum ActivityResponse {
    Completed(Option<Payloads>),
    Failed {
        failure: Option<Box<Failure>>,
        last_heartbeat_details: Option<Payloads>,
    },
    Canceled(Option<Payloads>),
}

/// Timeouts of an activity after Temporal's defaulting and capping rules.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ActivityTimeouts {
    schedule_to_close: Option<Duration>,
    schedule_to_start: Option<Duration>,
    pub(crate) start_to_close: Duration,
    heartbeat: Option<Duration>,
}

fn bad_schedule(message: impl Into<String>) -> HistoryError {
    HistoryError::BadCommand {
        cause: WorkflowTaskFailedCause::BadScheduleActivityAttributes,
        message: message.into(),
    }
}

/// Every timeout is capped by the run timeout; schedule-to-close caps the others and
/// defaults schedule-to-start; without it start-to-close is required.
pub(crate) fn activity_timeouts(
    a: &ScheduleActivityTaskCommandAttributes,
    run_timeout: Option<Duration>,
) -> Result<ActivityTimeouts> {
    let get = |d: &Option<chronicle_api::wkt::Duration>, field| {
        time::optional_duration(d.as_ref(), field).map_err(|e| bad_schedule(e.to_string()))
    };
    let cap = |d: Option<Duration>| match (d, run_timeout) {
        (Some(d), Some(run)) => Some(d.min(run)),
        (d, _) => d,
    };
    let mut schedule_to_close = cap(get(&a.schedule_to_close_timeout, "ScheduleToCloseTimeout")?);
    let mut schedule_to_start = cap(get(&a.schedule_to_start_timeout, "ScheduleToStartTimeout")?);
    let mut start_to_close = cap(get(&a.start_to_close_timeout, "StartToCloseTimeout")?);
    let heartbeat = cap(get(&a.heartbeat_timeout, "HeartbeatTimeout")?);
    match (schedule_to_close, start_to_close) {
        (Some(overall), _) => {
            schedule_to_start = Some(schedule_to_start.map_or(overall, |d| d.min(overall)));
            start_to_close = Some(start_to_close.map_or(overall, |d| d.min(overall)));
        }
        (None, Some(_)) => {
            schedule_to_close = run_timeout;
            schedule_to_start = schedule_to_start.or(schedule_to_close);
        }
        (None, None) => {
            return Err(bad_schedule(
                "A valid StartToClose or ScheduleToCloseTimeout is not set on ScheduleActivityTaskCommand.",
            ));
        }
    }
    let start_to_close = start_to_close.expect("set above");
    Ok(ActivityTimeouts {
        schedule_to_close,
        schedule_to_start,
        start_to_close,
        heartbeat: heartbeat.map(|h| h.min(start_to_close)),
    })
}

/// A timeout as events and poll responses carry it: zero means none, but it is always set
/// (SDKs such as TypeScript's require the field).
fn unlimited(timeout: Option<Duration>) -> Option<chronicle_api::wkt::Duration> {
    Some(time::duration(timeout.unwrap_or_default()))
}

fn check_id(value: &str, what: &str) -> Result<()> {
    if value.is_empty() {
        Err(bad_schedule(format!(
            "{what} is not set on ScheduleActivityTaskCommand."
        )))
    } else if value.len() > limits::MAX_ID_LENGTH {
        Err(bad_schedule(format!(
            "{what} exceeds length limit of {}.",
            limits::MAX_ID_LENGTH
        )))
    } else {
        Ok(())
    }
}

impl Txn {
    /// The ScheduleActivityTask command: event, state, first dispatch and its timeout timers.
    pub fn schedule_activity(
        &mut self,
        a: ScheduleActivityTaskCommandAttributes,
        completed_event_id: i64,
    ) -> Result<()> {
        check_id(&a.activity_id, "ActivityId")?;
        let activity_type = a.activity_type.clone().map(|t| t.name).unwrap_or_default();
        check_id(&activity_type, "ActivityType")?;
        if self.state.activity_by_id(&a.activity_id).is_some() {
            return Err(HistoryError::BadCommand {
                cause: WorkflowTaskFailedCause::ScheduleActivityDuplicateId,
                message: format!(
                    "Activity ID {} is already in use by a pending activity.",
                    a.activity_id
                ),
            });
        }
        let task_queue = match a.task_queue.as_ref().map(|q| q.name.as_str()) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => self.info().task_queue.clone(),
        };
        check_id(&task_queue, "TaskQueue")?;
        let run_timeout = time::stored_duration(self.info().run_timeout.as_ref());
        let timeouts = activity_timeouts(&a, run_timeout)?;
        if let Some(policy) = &a.retry_policy {
            retry::validate(policy).map_err(bad_schedule)?;
        }
        let retry_policy = retry::with_defaults(a.retry_policy);
        let scheduled_event_id = self.append(ActivityTaskScheduledEventAttributes {
            activity_id: a.activity_id.clone(),
            activity_type: a.activity_type,
            task_queue: Some(crate::events::normal_queue(&task_queue)),
            header: a.header,
            input: a.input,
            schedule_to_close_timeout: unlimited(timeouts.schedule_to_close),
            schedule_to_start_timeout: unlimited(timeouts.schedule_to_start),
            start_to_close_timeout: Some(time::duration(timeouts.start_to_close)),
            heartbeat_timeout: unlimited(timeouts.heartbeat),
            workflow_task_completed_event_id: completed_event_id,
            retry_policy: Some(retry_policy.clone()),
            priority: a.priority,
            ..Default::default()
        });
        let now = Some(time::timestamp(self.now));
        let info = ActivityInfo {
            scheduled_event_id,
            activity_id: a.activity_id,
            activity_type,
            task_queue,
            schedule_to_close_timeout: unlimited(timeouts.schedule_to_close),
            schedule_to_start_timeout: unlimited(timeouts.schedule_to_start),
            start_to_close_timeout: Some(time::duration(timeouts.start_to_close)),
            heartbeat_timeout: unlimited(timeouts.heartbeat),
            retry_policy: Some(retry_policy),
            attempt: 1,
            scheduled_time: now,
            current_attempt_scheduled_time: now,
            ..Default::default()
        };
        self.state.activities.insert(scheduled_event_id, info);
        self.dispatch_activity(scheduled_event_id);
        if let Some(overall) = timeouts.schedule_to_close {
            // Attempt 0: this deadline holds across every attempt. Added after the
            // schedule-to-start timer so that, due at the same instant, that one fires first
            // and a never-started activity reports ScheduleToStart, as Temporal does.
            self.add_timer(
                overall,
                Timer::ActivityScheduleToClose { scheduled_event_id },
            );
        }
        Ok(())
    }

    /// Puts the activity's current attempt on its task queue, with its schedule-to-start timer.
    pub fn dispatch_activity(&mut self, scheduled_event_id: i64) {
        let Some(ai) = self.state.activities.get(&scheduled_event_id).cloned() else {
            return;
        };
        let task_id = self.dispatch(
            QueueKind::Activity,
            &ai.task_queue,
            scheduled_event_id,
            ai.attempt,
        );
        if let Some(wait) = time::stored_duration(ai.schedule_to_start_timeout.as_ref()) {
            let timer = Timer::ActivityTimeout {
                attempt: ai.current_attempt(),
                timeout: TimeoutType::ScheduleToStart,
            };
            self.add_timer(wait, timer);
        }
        if let Some(ai) = self.state.activities.get_mut(&scheduled_event_id) {
            ai.task_id = task_id;
        }
    }

    /// Marks the attempt started and arms its start-to-close and heartbeat timers.
    fn start_activity(
        &mut self,
        scheduled_event_id: i64,
        identity: &str,
        request_id: &str,
    ) -> ActivityInfo {
        let now = self.now;
        let ai = self
            .state
            .activities
            .get_mut(&scheduled_event_id)
            .expect("activity present");
        ai.started_time = Some(time::timestamp(now));
        ai.started_identity = identity.to_owned();
        ai.started_request_id = request_id.to_owned();
        ai.last_heartbeat_time = None;
        let ai = ai.clone();
        self.finish_dispatch(ai.task_id);
        let limit = time::stored_duration(ai.start_to_close_timeout.as_ref());
        if let Some(limit) = limit {
            let timer = Timer::ActivityTimeout {
                attempt: ai.current_attempt(),
                timeout: TimeoutType::StartToClose,
            };
            self.add_timer(limit, timer);
        }
        if let Some(heartbeat) = time::stored_duration(ai.heartbeat_timeout.as_ref()) {
            self.add_timer(heartbeat, Timer::ActivityHeartbeat(ai.current_attempt()));
        }
        ai
    }

    /// The activity a worker's call names, if that attempt is still the one running.
    pub fn target_activity(&self, target: &ActivityTarget) -> Result<ActivityInfo> {
        let found = match target {
            ActivityTarget::Token(token) => self
                .state
                .activities
                .get(&token.scheduled_event_id)
                .filter(|a| a.attempt == token.attempt && a.is_started()),
            ActivityTarget::Id { activity_id, .. } => self.state.activity_by_id(activity_id),
        };
        found
            .cloned()
            .ok_or_else(|| HistoryError::TaskNotFound("Activity task not found.".into()))
    }
}

impl History {
    /// Long-polls an activity task queue; an empty response means the deadline passed.
    pub async fn poll_activity_task(
        &self,
        namespace: &NamespaceRef,
        r: PollActivityTaskQueueRequest,
        deadline: Instant,
    ) -> Result<PollActivityTaskQueueResponse> {
        let queue = r.task_queue.map(|q| q.name).unwrap_or_default();
        let request_id = uuid::Uuid::new_v4().to_string();
        let started = self
            .poll_queue(
                namespace,
                &queue,
                QueueKind::Activity,
                &r.identity,
                deadline,
                |task| self.record_activity_started(namespace, task, &r.identity, &request_id),
            )
            .await?;
        Ok(started.unwrap_or_default())
    }

    async fn record_activity_started(
        &self,
        namespace: &NamespaceRef,
        task: DispatchTask,
        identity: &str,
        request_id: &str,
    ) -> Result<PollActivityTaskQueueResponse> {
        let key = ExecutionKey::new(&task.namespace_id, &task.workflow_id, &task.run_id);
        let (ai, workflow_type) = self
            .update(&key, |txn| {
                let waiting = txn.state.activities.get(&task.scheduled_event_id);
                if !waiting.is_some_and(|a| {
                    a.task_id == task.task_id && a.attempt == task.attempt && !a.is_started()
                }) {
                    return Err(HistoryError::StaleTask);
                }
                let ai = txn.start_activity(task.scheduled_event_id, identity, request_id);
                Ok((ai, txn.info().workflow_type.clone()))
            })
            .await?;
        let scheduled = self
            .activity_scheduled_event(&key, ai.scheduled_event_id)
            .await?;
        let token = TaskToken {
            namespace_id: key.namespace_id.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            scheduled_event_id: ai.scheduled_event_id,
            started_event_id: 0,
            attempt: ai.attempt,
            activity_id: ai.activity_id.clone(),
            version: TOKEN_VERSION,
            query_id: String::new(),
        };
        Ok(PollActivityTaskQueueResponse {
            task_token: token.to_bytes(),
            workflow_namespace: namespace.name.clone(),
            workflow_type: Some(WorkflowType {
                name: workflow_type,
            }),
            workflow_execution: Some(key.execution()),
            activity_type: Some(ActivityType {
                name: ai.activity_type,
            }),
            activity_id: ai.activity_id,
            header: scheduled.header,
            input: scheduled.input,
            heartbeat_details: ai.heartbeat_details,
            scheduled_time: ai.scheduled_time,
            current_attempt_scheduled_time: ai.current_attempt_scheduled_time,
            started_time: ai.started_time,
            attempt: ai.attempt,
            schedule_to_close_timeout: ai.schedule_to_close_timeout,
            start_to_close_timeout: ai.start_to_close_timeout,
            heartbeat_timeout: ai.heartbeat_timeout,
            retry_policy: ai.retry_policy,
            priority: scheduled.priority,
            ..Default::default()
        })
    }

    /// Input and header live in the scheduled event only, so state writes stay small.
    async fn activity_scheduled_event(
        &self,
        key: &ExecutionKey,
        event_id: i64,
    ) -> Result<ActivityTaskScheduledEventAttributes> {
        match self.read_event(key, event_id).await?.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => Ok(a),
            _ => Err(HistoryError::Corrupt(format!(
                "event {event_id} of {key} is not an activity's scheduled event"
            ))),
        }
    }

    /// Ends the attempt a worker ran, as the worker reports it.
    pub async fn respond_activity(
        &self,
        namespace_id: &str,
        target: ActivityTarget,
        response: ActivityResponse,
        identity: String,
    ) -> Result<()> {
        self.append_named(namespace_id, &target.execution(), |txn| {
            let ai = txn.target_activity(&target)?;
            let end = match response {
                ActivityResponse::Completed(result) => AttemptEnd::Completed { result, identity },
                ActivityResponse::Canceled(details) => AttemptEnd::Canceled { details, identity },
                ActivityResponse::Failed {
                    failure,
                    last_heartbeat_details,
                } => {
                    if last_heartbeat_details.is_some() {
                        txn.record_heartbeat(ai.scheduled_event_id, last_heartbeat_details);
                    }
                    AttemptEnd::Failed {
                        failure: failure.unwrap_or_default(),
                        identity,
                    }
                }
            };
            txn.end_activity_attempt(&ai, end);
            Ok(())
        })
        .await
    }

    /// Records progress; answers whether the workflow asked for the activity's cancellation.
    pub async fn heartbeat_activity(
        &self,
        namespace_id: &str,
        target: ActivityTarget,
        details: Option<Payloads>,
    ) -> Result<bool> {
        self.append_named(namespace_id, &target.execution(), |txn| {
            let ai = txn.target_activity(&target)?;
            txn.record_heartbeat(ai.scheduled_event_id, details);
            Ok(ai.cancel_requested)
        })
        .await
    }

    /// A retry's backoff is over: dispatch the next attempt.
    pub(crate) async fn fire_activity_retry(
        &self,
        key: &ExecutionKey,
        attempt: Attempt,
    ) -> Result<()> {
        self.append_to(key, |txn| txn.end_activity_backoff(attempt))
            .await
    }
}

impl Txn {
    /// A retry's backoff is over: the attempt it waited for is dispatched.
    pub fn end_activity_backoff(&mut self, attempt: Attempt) -> Result<()> {
        let waiting = self.state.activities.get(&attempt.scheduled_event_id);
        if !waiting.is_some_and(|a| a.current_attempt() == attempt && !a.is_started()) {
            return Err(HistoryError::StaleTask);
        }
        self.dispatch_activity(attempt.scheduled_event_id);
        Ok(())
    }

    fn record_heartbeat(&mut self, scheduled_event_id: i64, details: Option<Payloads>) {
        let now = Some(time::timestamp(self.now));
        if let Some(ai) = self.state.activities.get_mut(&scheduled_event_id) {
            ai.last_heartbeat_time = now;
            if details.is_some() {
                ai.heartbeat_details = details;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(s2c: u64, s2s: u64, stc: u64, hb: u64) -> ScheduleActivityTaskCommandAttributes {
        let d = |s| (s > 0).then(|| time::duration(Duration::from_secs(s)));
        ScheduleActivityTaskCommandAttributes {
            schedule_to_close_timeout: d(s2c),
            schedule_to_start_timeout: d(s2s),
            start_to_close_timeout: d(stc),
            heartbeat_timeout: d(hb),
            ..Default::default()
        }
    }

    #[test]
    fn schedule_to_close_caps_and_defaults_the_others() {
        let s = Duration::from_secs;
        let t = activity_timeouts(&command(10, 0, 0, 30), None).unwrap();
        assert_eq!(
            t,
            ActivityTimeouts {
                schedule_to_close: Some(s(10)),
                schedule_to_start: Some(s(10)),
                start_to_close: s(10),
                heartbeat: Some(s(10))
            }
        );
        let t = activity_timeouts(&command(10, 3, 5, 0), None).unwrap();
        assert_eq!((t.schedule_to_start, t.start_to_close), (Some(s(3)), s(5)));
    }

    #[test]
    fn start_to_close_alone_inherits_the_run_timeout() {
        let s = Duration::from_secs;
        let t = activity_timeouts(&command(0, 0, 5, 0), None).unwrap();
        assert_eq!(
            (t.schedule_to_close, t.schedule_to_start, t.start_to_close),
            (None, None, s(5))
        );
        let t = activity_timeouts(&command(0, 0, 50, 0), Some(s(20))).unwrap();
        assert_eq!(
            (t.schedule_to_close, t.schedule_to_start, t.start_to_close),
            (Some(s(20)), Some(s(20)), s(20))
        );
    }

    #[test]
    fn an_activity_needs_some_timeout() {
        assert!(matches!(
            activity_timeouts(&command(0, 5, 0, 0), None),
            Err(HistoryError::BadCommand { .. })
        ));
    }
}
