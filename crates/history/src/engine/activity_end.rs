//! How an activity attempt ends, in the engine: a retry after the policy's backoff, or the
//! final events; and the timers that end attempts.

use crate::engine::change::Change;
use crate::engine::events::BUFFERED_EVENT_ID;
use crate::engine::retry;
use crate::engine::state::ActivityInfo;
use crate::engine::timer::{Attempt, Timer};
use crate::{HistoryError, Result};
use chronicle_api::common::v1::Payloads;
use chronicle_api::enums::v1::{RetryState, TimeoutType};
use chronicle_api::failure::v1::{Failure, TimeoutFailureInfo, failure::FailureInfo};
use chronicle_api::history::v1::{
    ActivityTaskCanceledEventAttributes, ActivityTaskCompletedEventAttributes,
    ActivityTaskFailedEventAttributes, ActivityTaskStartedEventAttributes,
    ActivityTaskTimedOutEventAttributes, history_event::Attributes,
};
use chronicle_common::time;
use std::time::Duration;

pub(crate) enum AttemptEnd {
    Completed {
        result: Option<Payloads>,
        identity: String,
    },
    Failed {
        failure: Box<Failure>,
        identity: String,
    },
    Canceled {
        details: Option<Payloads>,
        identity: String,
    },
    TimedOut(TimeoutType),
}

pub(crate) fn timeout_name(kind: TimeoutType) -> &'static str {
    match kind {
        TimeoutType::ScheduleToStart => "ScheduleToStart",
        TimeoutType::ScheduleToClose => "ScheduleToClose",
        TimeoutType::Heartbeat => "Heartbeat",
        _ => "StartToClose",
    }
}

pub(crate) fn timeout_failure(kind: TimeoutType, message: String, ai: &ActivityInfo) -> Failure {
    Failure {
        message,
        source: "Server".into(),
        cause: ai.last_failure.clone().map(Box::new),
        failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
            timeout_type: kind as i32,
            last_heartbeat_details: ai.heartbeat_details.clone(),
        })),
        ..Default::default()
    }
}

impl Change {
    /// Ends the attempt `ai` as `end` says; a final end schedules the workflow task that
    /// delivers it.
    pub fn end_activity_attempt(&mut self, ai: &ActivityInfo, end: AttemptEnd) {
        if self.end_attempt(ai, end) {
            self.schedule_workflow_task_if_needed();
        }
    }

    /// The worker reports how the attempt `ai` ended (`RespondActivityTask*`); a failure's
    /// heartbeat details are kept for the next attempt.
    pub fn respond_activity(
        &mut self,
        ai: &ActivityInfo,
        response: crate::engine::activity::ActivityResponse,
        identity: String,
    ) {
        use crate::engine::activity::ActivityResponse as R;
        let end = match response {
            R::Completed(result) => AttemptEnd::Completed { result, identity },
            R::Canceled(details) => AttemptEnd::Canceled { details, identity },
            R::Failed {
                failure,
                last_heartbeat_details,
            } => {
                if last_heartbeat_details.is_some() {
                    self.record_heartbeat(ai.scheduled_event_id, last_heartbeat_details);
                }
                AttemptEnd::Failed {
                    failure: failure.unwrap_or_default(),
                    identity,
                }
            }
        };
        self.end_activity_attempt(ai, end);
    }

    /// The workflow canceled an activity no worker has started: it ends at once, and the
    /// completing workflow task decides when the workflow hears of it.
    pub fn cancel_unstarted_activity(&mut self, ai: &ActivityInfo) {
        let (scheduled_event_id, requested) = (ai.scheduled_event_id, ai.cancel_requested_event_id);
        self.finish_activity(ai, false, "", |started_event_id| {
            ActivityTaskCanceledEventAttributes {
                latest_cancel_requested_event_id: requested,
                scheduled_event_id,
                started_event_id,
                ..Default::default()
            }
            .into()
        });
    }

    /// Returns whether the activity is finished (false: another attempt follows).
    fn end_attempt(&mut self, ai: &ActivityInfo, end: AttemptEnd) -> bool {
        let (scheduled_event_id, requested) = (ai.scheduled_event_id, ai.cancel_requested_event_id);
        match end {
            AttemptEnd::Completed { result, identity } => {
                self.finish_activity(ai, true, &identity, |started_event_id| {
                    ActivityTaskCompletedEventAttributes {
                        result,
                        scheduled_event_id,
                        started_event_id,
                        identity: identity.clone(),
                        ..Default::default()
                    }
                    .into()
                });
            }
            AttemptEnd::Canceled { details, identity } => {
                self.finish_activity(ai, true, &identity, |started_event_id| {
                    ActivityTaskCanceledEventAttributes {
                        details,
                        latest_cancel_requested_event_id: requested,
                        scheduled_event_id,
                        started_event_id,
                        identity: identity.clone(),
                        ..Default::default()
                    }
                    .into()
                });
            }
            AttemptEnd::Failed { failure, identity } => match self.activity_backoff(ai, &failure) {
                Ok(backoff) => {
                    self.retry_activity(ai, *failure, backoff, &identity);
                    return false;
                }
                Err(retry_state) => self.finish_activity(ai, true, &identity, |started_event_id| {
                    ActivityTaskFailedEventAttributes {
                        failure: Some(*failure),
                        scheduled_event_id,
                        started_event_id,
                        identity: identity.clone(),
                        retry_state: retry_state as i32,
                        ..Default::default()
                    }
                    .into()
                }),
            },
            AttemptEnd::TimedOut(kind) => return self.time_out_activity(ai, kind),
        }
        true
    }

    fn time_out_activity(&mut self, ai: &ActivityInfo, kind: TimeoutType) -> bool {
        let mut failure =
            timeout_failure(kind, format!("activity {} timeout", timeout_name(kind)), ai);
        let retry_state = match kind {
            TimeoutType::StartToClose | TimeoutType::Heartbeat => {
                match self.activity_backoff(ai, &failure) {
                    Ok(backoff) => {
                        self.retry_activity(ai, failure, backoff, &ai.started_identity);
                        return false;
                    }
                    Err(RetryState::Timeout) => {
                        // The next attempt could not finish before schedule-to-close: Temporal
                        // reports the activity as timed out by that deadline.
                        let message = "Not enough time to schedule next retry before activity ScheduleToClose timeout, giving up retrying";
                        failure = timeout_failure(TimeoutType::ScheduleToClose, message.into(), ai);
                        RetryState::Timeout
                    }
                    Err(other) => other,
                }
            }
            _ => RetryState::Timeout,
        };
        let scheduled_event_id = ai.scheduled_event_id;
        let identity = ai.started_identity.clone();
        self.finish_activity(ai, ai.is_started(), &identity, |started_event_id| {
            ActivityTaskTimedOutEventAttributes {
                failure: Some(failure),
                scheduled_event_id,
                started_event_id,
                retry_state: retry_state as i32,
            }
            .into()
        });
        true
    }

    /// The wait before the next attempt, or why there is none.
    fn activity_backoff(
        &self,
        ai: &ActivityInfo,
        failure: &Failure,
    ) -> std::result::Result<Duration, RetryState> {
        if ai.cancel_requested {
            return Err(RetryState::CancelRequested);
        }
        let expiration = match (
            &ai.scheduled_time,
            time::stored_duration(ai.schedule_to_close_timeout.as_ref()),
        ) {
            (Some(scheduled), Some(overall)) => {
                Some(time::after(time::from_timestamp(scheduled), overall))
            }
            _ => None,
        };
        retry::next_backoff(
            ai.retry_policy.as_ref(),
            ai.attempt,
            Some(failure),
            self.now,
            expiration,
        )
    }

    fn retry_activity(
        &mut self,
        ai: &ActivityInfo,
        failure: Failure,
        backoff: Duration,
        identity: &str,
    ) {
        let next_attempt_at = time::timestamp(time::after(self.now, backoff));
        let Some(state) = self.state.activities.get_mut(&ai.scheduled_event_id) else {
            return;
        };
        // Reset while it ran: this was the first attempt, whatever it counted.
        if std::mem::take(&mut state.reset_requested) {
            state.attempt = 1;
        }
        state.attempt += 1;
        // The ended attempt's task is done; the next one gets its own when dispatched.
        state.task_id = 0;
        state.started_time = None;
        state.started_identity.clear();
        state.started_request_id.clear();
        state.last_failure = Some(failure);
        state.last_worker_identity = identity.to_owned();
        state.current_attempt_scheduled_time = Some(next_attempt_at);
        let attempt = state.attempt;
        if state.paused.is_some() {
            // Paused: the next attempt waits for UnpauseActivity.
        } else if backoff.is_zero() {
            self.dispatch_activity(ai.scheduled_event_id);
        } else {
            let attempt = Attempt {
                scheduled_event_id: ai.scheduled_event_id,
                attempt,
            };
            self.add_timer(backoff, Timer::ActivityRetry(attempt));
        }
    }

    /// Writes the activity's final events and forgets it. The started event is written now,
    /// just before the end event that names it, stamped with when the attempt started.
    fn finish_activity(
        &mut self,
        ai: &ActivityInfo,
        started: bool,
        identity: &str,
        end: impl FnOnce(i64) -> Attributes,
    ) {
        if !ai.is_started() {
            self.finish_dispatch(ai.task_id);
        }
        let now = self.now;
        let started_at = ai.started_time.as_ref().map_or(now, time::from_timestamp);
        let mut events = Vec::with_capacity(2);
        let started_event_id = if !started {
            0
        } else {
            events.push((
                ActivityTaskStartedEventAttributes {
                    scheduled_event_id: ai.scheduled_event_id,
                    identity: if ai.is_started() {
                        ai.started_identity.clone()
                    } else {
                        identity.to_owned()
                    },
                    request_id: ai.started_request_id.clone(),
                    attempt: ai.attempt,
                    last_failure: ai.last_failure.clone(),
                    ..Default::default()
                }
                .into(),
                started_at,
            ));
            if self.state.wft_in_flight() {
                BUFFERED_EVENT_ID
            } else {
                self.state.next_event_id
            }
        };
        events.push((end(started_event_id), now));
        self.state.activities.remove(&ai.scheduled_event_id);
        self.append_external_timed(events);
    }
}

impl Change {
    /// One attempt's schedule-to-start or start-to-close timeout fired.
    pub fn time_out_activity_attempt(
        &mut self,
        attempt: Attempt,
        timeout: TimeoutType,
    ) -> Result<()> {
        let ai = self.timed_activity(attempt.scheduled_event_id)?;
        let applies = ai.current_attempt() == attempt
            && match timeout {
                TimeoutType::ScheduleToStart => !ai.is_started(),
                _ => ai.is_started(),
            };
        if !applies {
            return Err(HistoryError::StaleTask);
        }
        self.end_activity_attempt(&ai, AttemptEnd::TimedOut(timeout));
        Ok(())
    }

    /// The activity's schedule-to-close deadline passed, whichever attempt runs.
    pub fn time_out_activity_overall(&mut self, scheduled_event_id: i64) -> Result<()> {
        let ai = self.timed_activity(scheduled_event_id)?;
        self.end_activity_attempt(&ai, AttemptEnd::TimedOut(TimeoutType::ScheduleToClose));
        Ok(())
    }

    /// Heartbeats only move a deadline in state; this timer checks it and re-arms itself.
    pub fn check_activity_heartbeat(&mut self, attempt: Attempt) -> Result<()> {
        let ai = self.timed_activity(attempt.scheduled_event_id)?;
        if ai.current_attempt() != attempt || !ai.is_started() {
            return Err(HistoryError::StaleTask);
        }
        let last = ai
            .last_heartbeat_time
            .as_ref()
            .or(ai.started_time.as_ref())
            .map(time::from_timestamp);
        let timeout = time::stored_duration(ai.heartbeat_timeout.as_ref());
        let (Some(last), Some(timeout)) = (last, timeout) else {
            return Err(HistoryError::StaleTask);
        };
        if time::after(last, timeout) > self.now {
            let timer = Timer::ActivityHeartbeat(ai.current_attempt());
            self.add_timer_at(time::after(last, timeout), timer);
        } else {
            self.end_activity_attempt(&ai, AttemptEnd::TimedOut(TimeoutType::Heartbeat));
        }
        Ok(())
    }

    fn timed_activity(&self, scheduled_event_id: i64) -> Result<ActivityInfo> {
        self.state
            .activities
            .get(&scheduled_event_id)
            .cloned()
            .ok_or(HistoryError::StaleTask)
    }
}
