//! What a schedule is and decides, as data and synchronous functions: which of its times
//! are due, which buffered starts begin now under their overlap policy, and what a start or
//! a close of one of its workflows changes. The actor (`actor.rs`) reads the clock, calls
//! these, performs the starts, cancels and terminations they ask for, and stores the result.

use chronicle_api::common::v1::{Memo, Payloads, SearchAttributes, WorkflowExecution};
use chronicle_api::enums::v1::{ScheduleOverlapPolicy, WorkflowExecutionStatus};
use chronicle_api::failure::v1::Failure;
use chronicle_api::schedule::v1::{
    Schedule, ScheduleActionResult, ScheduleInfo, SchedulePolicies, ScheduleState,
};
use chronicle_api::wkt::Timestamp;
use chronicle_common::time;
use chronicle_schedule_spec::Spec;
use std::time::{Duration, SystemTime};

/// Temporal's limits: buffered starts past this many are dropped (and counted), describe
/// shows this many recent actions and future times.
pub(crate) const MAX_BUFFER: usize = 1000;
const RECENT_ACTIONS: usize = 10;
const FUTURE_ACTIONS: usize = 10;
/// The catch-up window when the policies set none, and the least one may set.
const DEFAULT_CATCHUP: Duration = Duration::from_secs(365 * 24 * 3600);
const MIN_CATCHUP: Duration = Duration::from_secs(10);
/// Times taken in one step: a schedule far behind catches up over several steps, so one
/// wake never holds its actor for long.
const TIMES_PER_STEP: usize = 1000;

/// What is stored of a schedule.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ScheduleJob {
    /// The namespace's name: the schedule's workflow calls name it.
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub schedule_id: String,
    /// As created or last updated, its spec in canonical form.
    #[prost(message, optional, tag = "3")]
    pub schedule: Option<Schedule>,
    #[prost(message, optional, tag = "4")]
    pub info: Option<ScheduleInfo>,
    #[prost(message, optional, tag = "5")]
    pub memo: Option<Memo>,
    #[prost(message, optional, tag = "6")]
    pub search_attributes: Option<SearchAttributes>,
    /// The spec's times up to here are taken (buffered, skipped or missed).
    #[prost(message, optional, tag = "7")]
    pub processed_until: Option<Timestamp>,
    #[prost(message, repeated, tag = "8")]
    pub buffer: Vec<BufferedStart>,
    /// Changes with every update, so an update based on an older describe is refused.
    #[prost(int64, tag = "9")]
    pub conflict_token: i64,
    /// Handed to the next run: the last completed run's result, the last failed run's failure.
    #[prost(message, optional, tag = "10")]
    pub last_completion_result: Option<Payloads>,
    #[prost(message, optional, tag = "11")]
    pub last_failure: Option<Failure>,
    #[prost(string, tag = "12")]
    pub namespace_id: String,
}

/// A start waiting to happen: due, triggered or backfilled.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BufferedStart {
    #[prost(message, optional, tag = "1")]
    pub nominal: Option<Timestamp>,
    #[prost(message, optional, tag = "2")]
    pub actual: Option<Timestamp>,
    /// ScheduleOverlapPolicy; unspecified is the schedule's own.
    #[prost(int32, tag = "3")]
    pub overlap_policy: i32,
    /// Triggered or backfilled: taken even while paused or out of actions.
    #[prost(bool, tag = "4")]
    pub manual: bool,
}

/// What processing the buffer asks the actor to do.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct BufferAction {
    /// Starts to make now, in order.
    pub starts: Vec<BufferedStart>,
    /// Cancel (or terminate, which wins) the running workflows: a buffered start waits for them.
    pub cancel_running: bool,
    pub terminate_running: bool,
}

/// How a workflow the schedule started ended.
#[derive(Debug)]
pub(crate) struct Closed {
    pub execution: WorkflowExecution,
    pub status: WorkflowExecutionStatus,
    pub result: Option<Payloads>,
    pub failure: Option<Failure>,
}

/// A schedule's catch-up window: a year when unset, never under ten seconds.
pub(crate) fn catchup_window(set: Option<&chronicle_api::wkt::Duration>) -> Duration {
    time::stored_duration(set)
        .filter(|d| !d.is_zero())
        .map_or(DEFAULT_CATCHUP, |d| d.max(MIN_CATCHUP))
}

fn ts(t: SystemTime) -> Option<Timestamp> {
    Some(time::timestamp(t))
}

fn at(t: Option<&Timestamp>) -> SystemTime {
    t.map_or(SystemTime::UNIX_EPOCH, time::from_timestamp)
}

impl ScheduleJob {
    pub fn schedule(&self) -> &Schedule {
        static EMPTY: Schedule = Schedule {
            spec: None,
            action: None,
            policies: None,
            state: None,
        };
        self.schedule.as_ref().unwrap_or(&EMPTY)
    }

    pub fn state(&self) -> &ScheduleState {
        static EMPTY: ScheduleState = ScheduleState {
            notes: String::new(),
            paused: false,
            limited_actions: false,
            remaining_actions: 0,
        };
        self.schedule().state.as_ref().unwrap_or(&EMPTY)
    }

    fn state_mut(&mut self) -> &mut ScheduleState {
        self.schedule
            .get_or_insert_with(Default::default)
            .state
            .get_or_insert_with(Default::default)
    }

    fn policies(&self) -> SchedulePolicies {
        self.schedule().policies.unwrap_or_default()
    }

    pub fn info_mut(&mut self) -> &mut ScheduleInfo {
        self.info.get_or_insert_with(Default::default)
    }

    pub fn running(&self) -> &[WorkflowExecution] {
        self.info.as_ref().map_or(&[], |i| &i.running_workflows)
    }

    /// The seed that makes this schedule's jitter its own and the same on every node.
    pub fn jitter_seed(&self) -> String {
        format!("{}-{}", self.namespace_id, self.schedule_id)
    }

    fn catchup_window(&self) -> Duration {
        catchup_window(self.policies().catchup_window.as_ref())
    }

    /// The overlap policy a start follows: its own, else the schedule's, else SKIP.
    fn overlap(&self, start: &BufferedStart) -> ScheduleOverlapPolicy {
        let own = ScheduleOverlapPolicy::try_from(start.overlap_policy)
            .unwrap_or(ScheduleOverlapPolicy::Unspecified);
        let schedule = ScheduleOverlapPolicy::try_from(self.policies().overlap_policy)
            .unwrap_or(ScheduleOverlapPolicy::Unspecified);
        [own, schedule]
            .into_iter()
            .find(|p| *p != ScheduleOverlapPolicy::Unspecified)
            .unwrap_or(ScheduleOverlapPolicy::Skip)
    }

    /// Adds a start to the buffer, or counts it dropped when the buffer is full.
    pub fn buffer_start(&mut self, start: BufferedStart) {
        if self.buffer.len() >= MAX_BUFFER {
            self.info_mut().buffer_dropped += 1;
            return;
        }
        self.buffer.push(start);
    }

    /// Takes the spec's times after `processed_until` up to `now`: each is buffered, or
    /// counted missed when it is older than the catch-up window. Answers whether times are
    /// left to take (a schedule far behind takes them over several steps).
    pub fn take_due(&mut self, spec: &Spec, now: SystemTime) -> bool {
        let window = self.catchup_window();
        let seed = self.jitter_seed();
        let mut after = at(self.processed_until.as_ref());
        for _ in 0..TIMES_PER_STEP {
            let Some(next) = spec.next(&seed, after.into()) else {
                break;
            };
            let actual = SystemTime::from(next.actual);
            if actual > now {
                break;
            }
            after = actual;
            if now.duration_since(actual).unwrap_or_default() > window {
                self.info_mut().missed_catchup_window += 1;
                continue;
            }
            self.buffer_start(BufferedStart {
                nominal: ts(next.nominal.into()),
                actual: ts(actual),
                overlap_policy: ScheduleOverlapPolicy::Unspecified as i32,
                manual: false,
            });
        }
        let more = spec
            .next(&seed, after.into())
            .is_some_and(|n| SystemTime::from(n.actual) <= now);
        self.processed_until = ts(if more { after } else { now });
        more
    }

    /// Buffers each of the spec's times in `[start, end]`, taken even while paused.
    pub fn backfill(
        &mut self,
        spec: &Spec,
        start: SystemTime,
        end: SystemTime,
        overlap_policy: i32,
    ) {
        let seed = self.jitter_seed();
        // The start is inclusive, as Temporal's backfills are.
        let mut after = start.checked_sub(Duration::from_millis(1)).unwrap_or(start);
        while let Some(next) = spec.next(&seed, after.into()) {
            let actual = SystemTime::from(next.actual);
            if actual > end || self.buffer.len() >= MAX_BUFFER {
                break;
            }
            after = actual;
            self.buffer_start(BufferedStart {
                nominal: ts(next.nominal.into()),
                actual: ts(actual),
                overlap_policy,
                manual: true,
            });
        }
    }

    /// Whether a start may be taken now; a scheduled one uses up one of a limited
    /// schedule's actions.
    fn may_take(&mut self, start: &BufferedStart) -> bool {
        if start.manual {
            return true;
        }
        let state = self.state_mut();
        if state.paused {
            return false;
        }
        if !state.limited_actions {
            return true;
        }
        if state.remaining_actions > 0 {
            state.remaining_actions -= 1;
            return true;
        }
        false
    }

    /// Decides which buffered starts begin now, as Temporal's scheduler does: with nothing
    /// running the first starts; while one runs, each start follows its overlap policy.
    pub fn process_buffer(&mut self) -> BufferAction {
        let mut running = !self.running().is_empty();
        let mut action = BufferAction::default();
        let mut kept = Vec::new();
        for start in std::mem::take(&mut self.buffer) {
            let policy = self.overlap(&start);
            if !running {
                if self.may_take(&start) {
                    action.starts.push(start);
                    running = true;
                }
                continue;
            }
            match policy {
                ScheduleOverlapPolicy::AllowAll => {
                    if self.may_take(&start) {
                        action.starts.push(start);
                    }
                }
                ScheduleOverlapPolicy::BufferOne if kept.is_empty() => kept.push(start),
                ScheduleOverlapPolicy::BufferAll => kept.push(start),
                ScheduleOverlapPolicy::CancelOther => {
                    action.cancel_running = true;
                    kept = vec![start];
                }
                ScheduleOverlapPolicy::TerminateOther => {
                    action.terminate_running = true;
                    kept = vec![start];
                }
                ScheduleOverlapPolicy::Skip
                | ScheduleOverlapPolicy::BufferOne
                | ScheduleOverlapPolicy::Unspecified => self.info_mut().overlap_skipped += 1,
            }
        }
        self.buffer = kept;
        action
    }

    /// Records a start the actor made at `now`.
    pub fn started(
        &mut self,
        start: &BufferedStart,
        execution: WorkflowExecution,
        now: SystemTime,
    ) {
        let info = self.info_mut();
        info.action_count += 1;
        info.running_workflows.push(execution.clone());
        // The time it was due (jitter included) and the time it began: a backfill's differ.
        info.recent_actions.push(ScheduleActionResult {
            schedule_time: start.actual,
            actual_time: ts(now),
            start_workflow_result: Some(execution),
            start_workflow_status: WorkflowExecutionStatus::Running as i32,
        });
        let excess = info.recent_actions.len().saturating_sub(RECENT_ACTIONS);
        info.recent_actions.drain(..excess);
    }

    /// Records how a started workflow ended: it no longer runs, its result or failure goes
    /// to the next run, and a failure pauses a schedule that asks for it.
    pub fn closed(&mut self, closed: Closed) {
        let info = self.info_mut();
        info.running_workflows.retain(|e| e != &closed.execution);
        for action in &mut info.recent_actions {
            if action.start_workflow_result.as_ref() == Some(&closed.execution) {
                action.start_workflow_status = closed.status as i32;
            }
        }
        match closed.status {
            WorkflowExecutionStatus::Completed => {
                self.last_completion_result = closed.result;
                self.last_failure = None;
            }
            WorkflowExecutionStatus::Failed | WorkflowExecutionStatus::TimedOut => {
                let id = &closed.execution.workflow_id;
                let notes = match &closed.failure {
                    Some(failure) => {
                        format!("paused due to workflow failure: {id}: {}", failure.message)
                    }
                    None => format!("paused due to workflow timeout: {id}"),
                };
                self.last_failure = closed.failure;
                if self.policies().pause_on_failure {
                    self.set_paused(true, notes);
                }
            }
            _ => {}
        }
    }

    /// The next times the schedule will act, for describe and list.
    pub fn future_action_times(&self, spec: &Spec) -> Vec<Timestamp> {
        let state = self.state();
        let mut n = FUTURE_ACTIONS;
        if state.limited_actions {
            n = n.min(usize::try_from(state.remaining_actions.max(0)).unwrap_or(0));
        }
        let seed = self.jitter_seed();
        let mut after = at(self.processed_until.as_ref());
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some(next) = spec.next(&seed, after.into()) else {
                break;
            };
            after = next.actual.into();
            out.push(time::timestamp(after));
        }
        out
    }

    /// When the actor must next take due times.
    pub fn next_wake(&self, spec: &Spec) -> Option<SystemTime> {
        spec.next(
            &self.jitter_seed(),
            at(self.processed_until.as_ref()).into(),
        )
        .map(|n| n.actual.into())
    }

    /// The conflict token as the API carries it.
    pub fn conflict_token_bytes(&self) -> Vec<u8> {
        self.conflict_token.to_le_bytes().to_vec()
    }

    pub fn set_paused(&mut self, paused: bool, notes: String) {
        let state = self.state_mut();
        state.paused = paused;
        state.notes = notes;
    }

    pub fn touch(&mut self, now: SystemTime) {
        self.info_mut().update_time = ts(now);
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
