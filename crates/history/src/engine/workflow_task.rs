//! Workflow tasks in the engine: starting one, its completion with commands, its failure
//! and timeout. Attempts after the first are transient: their scheduled and started events
//! exist only in the poll response until one completes.

use crate::engine::change::Change;
use crate::engine::commands::{Commands, Inputs};
use crate::engine::state::{ActivityInfo, MutableState, WorkflowTaskInfo};
use crate::engine::timer::{Attempt, Timer};
use crate::{HistoryError, Result};
use chronicle_api::common::v1::WorkerVersionStamp;
use chronicle_api::enums::v1::{TimeoutType, WorkflowTaskFailedCause};
use chronicle_api::failure::v1::Failure;
use chronicle_api::history::v1::{
    HistoryEvent, WorkflowTaskCompletedEventAttributes, WorkflowTaskFailedEventAttributes,
    WorkflowTaskScheduledEventAttributes, WorkflowTaskStartedEventAttributes,
    WorkflowTaskTimedOutEventAttributes,
};
use chronicle_api::workflowservice::RespondWorkflowTaskCompletedRequest;
use chronicle_common::time;
use chronicle_common::token::TaskToken;
use std::time::Duration;

/// Past which a started workflow task suggests continue-as-new (`limits.suggest_*`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SuggestAt {
    pub events: u64,
    pub bytes: u64,
}

impl SuggestAt {
    pub fn of(limits: &chronicle_common::config::Limits) -> Self {
        Self {
            events: limits.suggest_continue_as_new_events,
            bytes: limits.suggest_continue_as_new_bytes,
        }
    }

    fn reached(self, next_event_id: i64, size: i64) -> bool {
        let past = |value: i64, limit: u64| u64::try_from(value).is_ok_and(|v| v > limit);
        past(next_event_id, self.events) || past(size, self.bytes)
    }
}

/// The build of the worker completing a task, as the reference records it: the version stamp
/// if the worker sent one, else the build id of its deployment options, else its binary
/// checksum (where the SDKs put their build id when versioning is off).
fn worker_stamp(r: &RespondWorkflowTaskCompletedRequest) -> Option<WorkerVersionStamp> {
    // Deprecated in the API for worker deployments, but what SDKs send and read back as the
    // current build id.
    #[allow(deprecated)]
    let (stamp, checksum) = (r.worker_version_stamp.clone(), &r.binary_checksum);
    let deployed = r.deployment_options.as_ref().map(|o| o.build_id.as_str());
    let build_id = deployed
        .filter(|b| !b.is_empty())
        .or((!checksum.is_empty()).then_some(checksum.as_str()));
    stamp.or_else(|| {
        build_id.map(|b| WorkerVersionStamp {
            build_id: b.to_owned(),
            use_versioning: false,
        })
    })
}

/// A completed workflow task's result beyond its own events.
pub(crate) struct Completed {
    /// The chain's next run, to commit with this one (retry, cron, continue-as-new).
    pub successor: Option<Change>,
    /// The next workflow task, started already: a workflow-task heartbeat's worker gets it in
    /// the response.
    pub inline: Option<WorkflowTaskInfo>,
    /// Activities started for the worker that asked to run them (eager execution).
    pub eager_activities: Vec<ActivityInfo>,
}

impl Change {
    /// The worker completed the started workflow task `wft` with `commands`: the task's
    /// completion, each command's events and effects, and the next workflow task if the run
    /// needs one. A bad command fails the whole completion (the caller rejects it).
    pub fn complete_workflow_task(
        &mut self,
        wft: &WorkflowTaskInfo,
        commands: Commands,
        r: RespondWorkflowTaskCompletedRequest,
        inputs: &Inputs,
    ) -> Result<Completed> {
        if commands.closes_run() && self.state.has_buffered() {
            // New events arrived while the worker decided to close: it must see them first.
            self.end_started_workflow_task(wft, unhandled_command(&r.identity));
            return Ok(Completed {
                successor: None,
                inline: None,
                eager_activities: Vec::new(),
            });
        }
        self.materialize(wft);
        let stamp = worker_stamp(&r);
        #[allow(deprecated)]
        let completed = WorkflowTaskCompletedEventAttributes {
            scheduled_event_id: wft.scheduled_event_id,
            started_event_id: wft.started_event_id,
            identity: r.identity.clone(),
            sdk_metadata: r.sdk_metadata,
            metering_metadata: r.metering_metadata,
            worker_version: stamp.clone(),
            ..Default::default()
        };
        let completed_event_id = self.append(completed);
        if let Some(stamp) = stamp {
            self.state.info_mut().worker_version = Some(stamp);
        }
        self.state.workflow_task = None;
        self.state.last_completed_wft_started_event_id = wft.started_event_id;
        self.set_sticky(r.sticky_attributes);
        let outcome = commands.apply(self, inputs, completed_event_id, &r.identity)?;
        let force = r.force_create_new_workflow_task;
        let mut inline = None;
        let updates_waiting = inputs.updates.waiting_for_worker(self);
        if self.is_running()
            && (self.flush_buffered() > 0
                || outcome.needs_workflow_task
                || force
                || updates_waiting)
        {
            let scheduled = self.schedule_workflow_task(1);
            if force && r.return_new_workflow_task {
                // Workflow task heartbeat: the worker gets the next task in this response.
                let scheduled = scheduled.clone();
                let request_id = self.ctx.request_id();
                let suggest = SuggestAt::of(&inputs.limits);
                inline =
                    Some(self.start_workflow_task(scheduled, &r.identity, &request_id, suggest));
            }
        }
        // A run the commands closed runs no activity.
        let eager_activities = if self.is_running() {
            let request_id = self.ctx.request_id();
            outcome
                .eager_activities
                .iter()
                .filter_map(|id| self.start_activity(*id, &r.identity, &request_id))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Completed {
            successor: outcome.successor,
            inline,
            eager_activities,
        })
    }

    /// The started workflow task a token names, or `TaskNotFound`.
    pub fn started_workflow_task(&self, token: &TaskToken) -> Result<WorkflowTaskInfo> {
        self.state
            .workflow_task
            .clone()
            .filter(|w| {
                w.is_started()
                    && w.scheduled_event_id == token.scheduled_event_id
                    && w.started_event_id == token.started_event_id
                    && w.attempt == token.attempt
            })
            .ok_or_else(|| HistoryError::TaskNotFound("Workflow task not found.".into()))
    }

    /// Starts the scheduled workflow task `wft` (the run's, as scheduled) on a worker and
    /// arms its start-to-close timeout.
    pub(crate) fn start_workflow_task(
        &mut self,
        mut wft: WorkflowTaskInfo,
        identity: &str,
        request_id: &str,
        suggest: SuggestAt,
    ) -> WorkflowTaskInfo {
        let size = self.state.history_size_bytes;
        let started = WorkflowTaskStartedEventAttributes {
            scheduled_event_id: wft.scheduled_event_id,
            identity: identity.to_owned(),
            request_id: request_id.to_owned(),
            suggest_continue_as_new: suggest.reached(self.state.next_event_id, size),
            history_size_bytes: size,
            ..Default::default()
        };
        wft.started_event_id = if wft.is_transient() {
            wft.scheduled_event_id + 1
        } else {
            self.append(started)
        };
        wft.started_time = Some(time::timestamp(self.now));
        wft.identity = identity.to_owned();
        wft.request_id = request_id.to_owned();
        self.finish_dispatch(wft.task_id);
        let timeout = time::optional_duration(wft.timeout.as_ref(), "timeout")
            .ok()
            .flatten()
            .unwrap_or(chronicle_common::limits::DEFAULT_WORKFLOW_TASK_TIMEOUT);
        self.add_timer(timeout, Timer::WorkflowTaskTimeout(wft.current_attempt()));
        self.state.workflow_task = Some(wft.clone());
        wft
    }

    /// A transient task that ends (completes, or fails with new events behind it) is written
    /// to history after all, so the events that follow reference real ids.
    fn materialize(&mut self, wft: &WorkflowTaskInfo) {
        if wft.is_transient() {
            let (scheduled, started) = self.state.workflow_task_events(wft);
            self.append(scheduled);
            self.append(started);
        }
    }

    /// Ends the started workflow task as failed or timed out and schedules the next attempt.
    /// New events that arrived meanwhile make the next task an ordinary first attempt.
    pub(crate) fn end_started_workflow_task(
        &mut self,
        wft: &WorkflowTaskInfo,
        ending: WorkflowTaskEnding,
    ) {
        if !wft.is_transient() {
            match ending {
                WorkflowTaskEnding::Failed {
                    cause,
                    failure,
                    identity,
                } => {
                    self.append(WorkflowTaskFailedEventAttributes {
                        scheduled_event_id: wft.scheduled_event_id,
                        started_event_id: wft.started_event_id,
                        cause: cause as i32,
                        failure: failure.map(|f| *f),
                        identity,
                        ..Default::default()
                    });
                }
                WorkflowTaskEnding::TimedOut => {
                    self.append(WorkflowTaskTimedOutEventAttributes {
                        scheduled_event_id: wft.scheduled_event_id,
                        started_event_id: wft.started_event_id,
                        timeout_type: TimeoutType::StartToClose as i32,
                    });
                }
            }
        }
        self.state.workflow_task = None;
        // The worker may have lost the workflow: the next attempt carries the full history.
        self.set_sticky(None);
        let attempt = if self.flush_buffered() > 0 {
            1
        } else {
            wft.attempt + 1
        };
        self.schedule_workflow_task(attempt);
    }

    /// Fails the workflow task a worker is running (the run is being closed from outside) so
    /// the history stays well formed; a merely scheduled task is withdrawn.
    pub fn fail_in_flight_workflow_task(
        &mut self,
        cause: WorkflowTaskFailedCause,
        failure: Option<Failure>,
        identity: &str,
    ) {
        let Some(wft) = self.state.workflow_task.take() else {
            return;
        };
        if wft.is_started() && !wft.is_transient() {
            self.append(WorkflowTaskFailedEventAttributes {
                scheduled_event_id: wft.scheduled_event_id,
                started_event_id: wft.started_event_id,
                cause: cause as i32,
                failure,
                identity: identity.to_owned(),
                ..Default::default()
            });
        } else if !wft.is_started() {
            self.finish_dispatch(wft.task_id);
        }
    }
}

impl MutableState {
    /// The scheduled and started events of a transient task, as its poller and history
    /// readers see them (they are written only once the task ends).
    pub(crate) fn transient_events(
        &self,
        wft: &WorkflowTaskInfo,
        now: std::time::SystemTime,
    ) -> Vec<HistoryEvent> {
        if !wft.is_transient() {
            return Vec::new();
        }
        let (scheduled, started) = self.workflow_task_events(wft);
        let at = |t: &Option<chronicle_api::wkt::Timestamp>| {
            t.as_ref().map(time::from_timestamp).unwrap_or(now)
        };
        let mut scheduled = crate::engine::events::event(scheduled, at(&wft.scheduled_time));
        scheduled.event_id = wft.scheduled_event_id;
        let mut started = crate::engine::events::event(started, at(&wft.started_time));
        started.event_id = wft.started_event_id;
        vec![scheduled, started]
    }

    fn workflow_task_events(
        &self,
        wft: &WorkflowTaskInfo,
    ) -> (
        WorkflowTaskScheduledEventAttributes,
        WorkflowTaskStartedEventAttributes,
    ) {
        (
            WorkflowTaskScheduledEventAttributes {
                task_queue: Some(self.task_queue_named(&wft.task_queue)),
                start_to_close_timeout: wft.timeout,
                attempt: wft.attempt,
            },
            WorkflowTaskStartedEventAttributes {
                scheduled_event_id: wft.scheduled_event_id,
                identity: wft.identity.clone(),
                request_id: wft.request_id.clone(),
                history_size_bytes: self.history_size_bytes,
                ..Default::default()
            },
        )
    }
}

pub(crate) enum WorkflowTaskEnding {
    Failed {
        cause: WorkflowTaskFailedCause,
        failure: Option<Box<Failure>>,
        identity: String,
    },
    TimedOut,
}

impl Change {
    /// The started workflow task's start-to-close timeout fired.
    pub fn time_out_workflow_task(&mut self, attempt: Attempt) -> Result<()> {
        let wft = self.state.workflow_task.clone();
        let wft = wft.filter(|w| w.is_started() && w.is_attempt(attempt));
        let wft = wft.ok_or(HistoryError::StaleTask)?;
        self.end_started_workflow_task(&wft, WorkflowTaskEnding::TimedOut);
        Ok(())
    }

    /// The first workflow task of a run that started after a delay or retry backoff.
    pub fn end_backoff(&mut self) -> Result<()> {
        if self.state.workflow_task.is_some() {
            return Err(HistoryError::StaleTask);
        }
        self.schedule_workflow_task_if_needed();
        Ok(())
    }
}

/// A workflow task's start-to-close timeout on its `attempt`. A task that keeps failing gets
/// more time from its fourth attempt on (5 s, doubling, at most `max` more), so a workflow the
/// worker cannot progress is retried slowly, as Temporal does (without its jitter).
pub(crate) fn attempt_timeout(base: Duration, attempt: i32, max: Duration) -> Duration {
    const FIRST_SLOWED: i32 = 4;
    const FIRST_EXTRA: Duration = Duration::from_secs(5);
    if attempt < FIRST_SLOWED {
        return base;
    }
    let doublings = u32::try_from(attempt - FIRST_SLOWED).unwrap_or(u32::MAX);
    let extra = FIRST_EXTRA.saturating_mul(2u32.saturating_pow(doublings));
    base + extra.min(max)
}

pub(crate) fn unhandled_command(identity: &str) -> WorkflowTaskEnding {
    WorkflowTaskEnding::Failed {
        cause: WorkflowTaskFailedCause::UnhandledCommand,
        failure: Some(Box::new(Failure {
            message: "UnhandledCommand: new events arrived while the workflow task ran".into(),
            ..Default::default()
        })),
        identity: identity.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::attempt_timeout;
    use std::time::Duration;

    #[test]
    fn failing_tasks_get_longer_timeouts_from_the_fourth_attempt() {
        let (base, max) = (Duration::from_secs(10), Duration::from_secs(60));
        let secs = |attempt| attempt_timeout(base, attempt, max).as_secs();
        assert_eq!([secs(1), secs(2), secs(3)], [10, 10, 10]);
        assert_eq!([secs(4), secs(5), secs(6), secs(7)], [15, 20, 30, 50]);
        assert_eq!([secs(8), secs(100), secs(i32::MAX)], [70, 70, 70]);
    }
}
