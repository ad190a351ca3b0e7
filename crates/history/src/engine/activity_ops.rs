//! Operators acting on a run's activities (PauseActivity, UnpauseActivity, ResetActivity),
//! as Temporal does: nothing is written to history; a paused activity gets no new attempt
//! until it is unpaused, and a running attempt learns of a pause or reset from its heartbeats.

use crate::engine::change::Change;
use crate::engine::events::normal_queue;
use crate::engine::retry;
use crate::engine::state::{ActivityInfo, ActivityPause};
use crate::{HistoryError, Result};
use chronicle_api::activity::v1::ActivityOptions;
use chronicle_common::time;

/// Temporal's answer when no pending activity matches.
pub(crate) const NO_SUCH_ACTIVITY: &str =
    "Can't find pending activity with such ID. Invalid activityID or activity already completed";

/// Which of a run's pending activities an operator's request names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Selection {
    Id(String),
    Type(String),
    All,
}

/// What a reset keeps.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ResetOptions {
    pub keep_paused: bool,
    pub reset_heartbeat: bool,
}

/// The options an activity runs with, as describe and UpdateActivityOptions show them.
pub(crate) fn options_of(ai: &ActivityInfo) -> ActivityOptions {
    ActivityOptions {
        task_queue: Some(normal_queue(&ai.task_queue)),
        schedule_to_close_timeout: ai.schedule_to_close_timeout,
        schedule_to_start_timeout: ai.schedule_to_start_timeout,
        start_to_close_timeout: ai.start_to_close_timeout,
        heartbeat_timeout: ai.heartbeat_timeout,
        retry_policy: ai.retry_policy.clone(),
        priority: ai.priority.clone(),
        start_delay: None,
    }
}

/// A field mask path in the protobuf form (`retry_policy.maximum_attempts`), whichever form
/// the client wrote (JSON clients write `retryPolicy.maximumAttempts`).
fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Sets the fields `paths` name from `new`, as UpdateActivityOptions' mask says.
fn apply_mask(ai: &mut ActivityInfo, new: &ActivityOptions, paths: &[String]) -> Result<()> {
    let new_policy = new.retry_policy.clone().unwrap_or_default();
    for path in paths {
        let policy = ai.retry_policy.get_or_insert_with(Default::default);
        match snake_case(path).as_str() {
            "task_queue" | "task_queue.name" => {
                let name = new.task_queue.as_ref().map_or("", |q| q.name.as_str());
                if name.is_empty() {
                    return Err(HistoryError::InvalidArgument(
                        "TaskQueue is not set.".into(),
                    ));
                }
                name.clone_into(&mut ai.task_queue);
            }
            "schedule_to_close_timeout" => {
                ai.schedule_to_close_timeout = new.schedule_to_close_timeout
            }
            "schedule_to_start_timeout" => {
                ai.schedule_to_start_timeout = new.schedule_to_start_timeout
            }
            "start_to_close_timeout" => ai.start_to_close_timeout = new.start_to_close_timeout,
            "heartbeat_timeout" => ai.heartbeat_timeout = new.heartbeat_timeout,
            "retry_policy" => *policy = new_policy.clone(),
            "retry_policy.initial_interval" => {
                policy.initial_interval = new_policy.initial_interval
            }
            "retry_policy.backoff_coefficient" => {
                policy.backoff_coefficient = new_policy.backoff_coefficient;
            }
            "retry_policy.maximum_interval" => {
                policy.maximum_interval = new_policy.maximum_interval
            }
            "retry_policy.maximum_attempts" => {
                policy.maximum_attempts = new_policy.maximum_attempts
            }
            "retry_policy.non_retryable_error_types" => {
                policy
                    .non_retryable_error_types
                    .clone_from(&new_policy.non_retryable_error_types);
            }
            "priority" => ai.priority.clone_from(&new.priority),
            other => {
                return Err(HistoryError::InvalidArgument(format!(
                    "UpdateMask names a field that cannot be updated: {other}"
                )));
            }
        }
    }
    let policy = ai.retry_policy.take();
    if let Some(policy) = &policy {
        retry::validate(policy).map_err(HistoryError::InvalidArgument)?;
    }
    ai.retry_policy = Some(retry::with_defaults(policy));
    // As at scheduling: no heartbeat timeout past the start-to-close timeout.
    let limit = time::stored_duration(ai.start_to_close_timeout.as_ref());
    let heartbeat = time::stored_duration(ai.heartbeat_timeout.as_ref());
    if let (Some(limit), Some(heartbeat)) = (limit, heartbeat)
        && heartbeat > limit
    {
        ai.heartbeat_timeout = Some(time::duration(limit));
    }
    Ok(())
}

impl Change {
    /// Changes the selected activities' options; answers the options of the last one. A
    /// queued attempt moves to its new queue; a running one keeps its timers until it ends.
    pub fn update_activity_options(
        &mut self,
        selection: &Selection,
        new: &ActivityOptions,
        paths: &[String],
    ) -> Result<ActivityOptions> {
        let mut updated = ActivityOptions::default();
        for id in self.selected(selection)? {
            let Some(ai) = self.activity_mut(id) else {
                continue;
            };
            let queue_before = ai.task_queue.clone();
            apply_mask(ai, new, paths)?;
            updated = options_of(ai);
            if ai.task_queue != queue_before {
                self.undispatch(id);
                self.dispatch_if_waiting(id);
            }
        }
        Ok(updated)
    }

    /// The scheduled event ids of the activities selected; NotFound when none is.
    fn selected(&self, selection: &Selection) -> Result<Vec<i64>> {
        let ids: Vec<i64> = self
            .state
            .activities
            .values()
            .filter(|a| match selection {
                Selection::Id(id) => &a.activity_id == id,
                Selection::Type(ty) => &a.activity_type == ty,
                Selection::All => true,
            })
            .map(|a| a.scheduled_event_id)
            .collect();
        if ids.is_empty() {
            return Err(HistoryError::WorkflowNotFound(NO_SUCH_ACTIVITY.into()));
        }
        Ok(ids)
    }

    fn activity_mut(&mut self, scheduled_event_id: i64) -> Option<&mut ActivityInfo> {
        self.state.activities.get_mut(&scheduled_event_id)
    }

    /// Takes a dispatched, not yet started attempt back from its queue: matching drops its
    /// copy as stale when a poller gets it.
    fn undispatch(&mut self, scheduled_event_id: i64) {
        let Some(ai) = self.activity_mut(scheduled_event_id) else {
            return;
        };
        if ai.is_started() || ai.task_id == 0 {
            return;
        }
        let task_id = std::mem::take(&mut ai.task_id);
        self.finish_dispatch(task_id);
    }

    /// Dispatches the current attempt if it waits for nothing (not started, not paused, not
    /// on its queue already).
    fn dispatch_if_waiting(&mut self, scheduled_event_id: i64) {
        let waiting = self
            .state
            .activities
            .get(&scheduled_event_id)
            .is_some_and(|a| !a.is_started() && a.paused.is_none() && a.task_id == 0);
        if waiting {
            self.dispatch_activity(scheduled_event_id);
        }
    }

    pub fn pause_activities(
        &mut self,
        selection: &Selection,
        identity: &str,
        reason: &str,
    ) -> Result<()> {
        let now = self.now;
        for id in self.selected(selection)? {
            let Some(ai) = self.activity_mut(id) else {
                continue;
            };
            if ai.paused.is_some() {
                continue;
            }
            ai.paused = Some(ActivityPause {
                time: Some(time::timestamp(now)),
                identity: identity.to_owned(),
                reason: reason.to_owned(),
            });
            self.undispatch(id);
        }
        Ok(())
    }

    pub fn unpause_activities(&mut self, selection: &Selection) -> Result<()> {
        for id in self.selected(selection)? {
            if let Some(ai) = self.activity_mut(id) {
                ai.paused = None;
            }
            self.dispatch_if_waiting(id);
        }
        Ok(())
    }

    /// Attempts count from the first again: at once for an activity waiting for its next
    /// attempt, after the running attempt for one that runs.
    pub fn reset_activities(&mut self, selection: &Selection, options: ResetOptions) -> Result<()> {
        let now = self.now;
        for id in self.selected(selection)? {
            let Some(ai) = self.activity_mut(id) else {
                continue;
            };
            if options.reset_heartbeat {
                ai.heartbeat_details = None;
            }
            if !options.keep_paused {
                ai.paused = None;
            }
            if ai.is_started() {
                ai.reset_requested = true;
                continue;
            }
            ai.attempt = 1;
            ai.last_failure = None;
            ai.current_attempt_scheduled_time = Some(time::timestamp(now));
            // A queued attempt is queued again as the first; a retry waiting for its backoff
            // goes now.
            self.undispatch(id);
            self.dispatch_if_waiting(id);
        }
        Ok(())
    }
}
