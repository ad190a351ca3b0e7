//! Activities in the engine: scheduling from a command, starting an attempt, heartbeats
//! and the timers that watch them.

use crate::engine::change::Change;
use crate::engine::retry;
use crate::engine::state::ActivityInfo;
use crate::engine::timer::{Attempt, Timer};
use crate::{HistoryError, Result};
use chronicle_api::command::v1::ScheduleActivityTaskCommandAttributes;
use chronicle_api::common::v1::{Payloads, WorkflowExecution};
use chronicle_api::enums::v1::{TimeoutType, WorkflowTaskFailedCause};
use chronicle_api::failure::v1::Failure;
use chronicle_api::history::v1::ActivityTaskScheduledEventAttributes;
use chronicle_common::token::TaskToken;
use chronicle_common::{QueueKind, limits, time};
use std::time::Duration;

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
    pub(crate) fn execution(&self) -> WorkflowExecution {
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

pub(crate) fn bad_schedule(message: impl Into<String>) -> HistoryError {
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
    let start_to_close = cap(get(&a.start_to_close_timeout, "StartToCloseTimeout")?);
    let heartbeat = cap(get(&a.heartbeat_timeout, "HeartbeatTimeout")?);
    let start_to_close = match (schedule_to_close, start_to_close) {
        (Some(overall), _) => {
            schedule_to_start = Some(schedule_to_start.map_or(overall, |d| d.min(overall)));
            start_to_close.map_or(overall, |d| d.min(overall))
        }
        (None, Some(start_to_close)) => {
            schedule_to_close = run_timeout;
            schedule_to_start = schedule_to_start.or(schedule_to_close);
            start_to_close
        }
        (None, None) => {
            return Err(bad_schedule(
                "A valid StartToClose or ScheduleToCloseTimeout is not set on ScheduleActivityTaskCommand.",
            ));
        }
    };
    Ok(ActivityTimeouts {
        schedule_to_close,
        schedule_to_start,
        start_to_close,
        heartbeat: heartbeat.map(|h| h.min(start_to_close)),
    })
}

/// A timeout as events and poll responses carry it: zero means none, but it is always set
/// (SDKs such as TypeScript's require the field).
pub(crate) fn unlimited(timeout: Option<Duration>) -> Option<chronicle_api::wkt::Duration> {
    Some(time::duration(timeout.unwrap_or_default()))
}

pub(crate) fn check_id(value: &str, what: &str) -> Result<()> {
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

impl Change {
    /// The ScheduleActivityTask command: event, state, first dispatch and its timeout timers.
    /// Answers the activity's scheduled event id.
    pub fn schedule_activity(
        &mut self,
        a: ScheduleActivityTaskCommandAttributes,
        completed_event_id: i64,
    ) -> Result<i64> {
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
            task_queue: Some(crate::engine::events::normal_queue(&task_queue)),
            header: a.header,
            input: a.input,
            schedule_to_close_timeout: unlimited(timeouts.schedule_to_close),
            schedule_to_start_timeout: unlimited(timeouts.schedule_to_start),
            start_to_close_timeout: Some(time::duration(timeouts.start_to_close)),
            heartbeat_timeout: unlimited(timeouts.heartbeat),
            workflow_task_completed_event_id: completed_event_id,
            retry_policy: Some(retry_policy.clone()),
            priority: a.priority.clone(),
            ..Default::default()
        });
        let priority = a.priority;
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
            priority,
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
        Ok(scheduled_event_id)
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

    /// Marks the attempt started and arms its start-to-close and heartbeat timers; None if
    /// the run has no such activity.
    pub(crate) fn start_activity(
        &mut self,
        scheduled_event_id: i64,
        identity: &str,
        request_id: &str,
    ) -> Option<ActivityInfo> {
        let now = self.now;
        let ai = self.state.activities.get_mut(&scheduled_event_id)?;
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
        Some(ai)
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

impl Change {
    /// A retry's backoff is over: the attempt it waited for is dispatched.
    pub fn end_activity_backoff(&mut self, attempt: Attempt) -> Result<()> {
        let waiting = self.state.activities.get(&attempt.scheduled_event_id);
        // A paused activity waits for its unpause; one dispatched already (unpaused or reset
        // during the backoff) is on its queue.
        let due = |a: &ActivityInfo| {
            a.current_attempt() == attempt
                && !a.is_started()
                && a.paused.is_none()
                && a.task_id == 0
        };
        if !waiting.is_some_and(due) {
            return Err(HistoryError::StaleTask);
        }
        self.dispatch_activity(attempt.scheduled_event_id);
        Ok(())
    }

    pub(crate) fn record_heartbeat(&mut self, scheduled_event_id: i64, details: Option<Payloads>) {
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
