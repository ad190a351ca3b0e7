//! What each scenario's workflow does, as a pure function of its history: the worker folds
//! the events it has seen into a `RunState` and `Plan::decide` says what to send back.

use crate::rpc;
use chronicle_api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
    StartTimerCommandAttributes, command::Attributes,
};
use chronicle_api::common::v1::ActivityType;
use chronicle_api::enums::v1::{CommandType, EventType};
use chronicle_api::history::v1::HistoryEvent;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const WORKFLOW_TYPE: &str = "bench-workflow";
pub const ACTIVITY_TYPE: &str = "bench-activity";
pub const SIGNAL_NAME: &str = "bench-signal";
const TIMER_ID: &str = "bench-timer";
/// Generous: our activities complete at once, and a timeout would only retry them.
const ACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Scenario {
    /// The first workflow task completes the workflow.
    Empty,
    /// One activity per workflow.
    Activity,
    /// Sequential activities per workflow (--chain-steps, 10 by default).
    Chain,
    /// One timer per workflow (--timer-ms, 1 s by default).
    Timer,
    /// Workflows that wait for --signals signals each, sent by the client one after another.
    Signal,
    /// One workflow with --long-steps sequential activities (2,000 by default): per-step
    /// latency and history bytes per workflow task as the history grows.
    Long,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Empty,
        Scenario::Activity,
        Scenario::Chain,
        Scenario::Timer,
        Scenario::Signal,
        Scenario::Long,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Empty => "empty",
            Scenario::Activity => "activity",
            Scenario::Chain => "chain",
            Scenario::Timer => "timer",
            Scenario::Signal => "signal",
            Scenario::Long => "long",
        }
    }
}

/// The shape of one workflow: activities in sequence, then an optional timer, then waiting
/// for signals, then completion. Every scenario is a special case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub activities: u32,
    pub timer: Option<Duration>,
    pub signals: u32,
}

/// What a workflow's events so far say. Folded event by event, so a sticky task (only the
/// new events) continues the state the last task left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunState {
    pub last_event_id: i64,
    pub activities_scheduled: u32,
    /// Activities that ended in any way (completed, failed, timed out, canceled).
    pub activities_closed: u32,
    pub activities_completed: u32,
    pub timer_started_at: Option<SystemTime>,
    pub timer_fired_at: Option<SystemTime>,
    pub signals: u32,
}

impl RunState {
    pub fn apply(&mut self, event: &HistoryEvent) {
        self.last_event_id = event.event_id;
        let at = || event.event_time.as_ref().map(system_time);
        match EventType::try_from(event.event_type) {
            Ok(EventType::ActivityTaskScheduled) => self.activities_scheduled += 1,
            Ok(EventType::ActivityTaskCompleted) => {
                self.activities_completed += 1;
                self.activities_closed += 1;
            }
            Ok(
                EventType::ActivityTaskFailed
                | EventType::ActivityTaskTimedOut
                | EventType::ActivityTaskCanceled,
            ) => self.activities_closed += 1,
            Ok(EventType::TimerStarted) => self.timer_started_at = at(),
            Ok(EventType::TimerFired) => self.timer_fired_at = at(),
            Ok(EventType::WorkflowExecutionSignaled) => self.signals += 1,
            _ => {}
        }
    }

    /// The state after `events`, continuing `cached` when the events are the next batch of
    /// the same history (a sticky task). A full history (from event 1) starts afresh. None
    /// when the batch does not follow on from what is cached: the worker must read the full
    /// history, as an SDK does after evicting a workflow from its cache.
    pub fn resume(cached: Option<RunState>, events: &[HistoryEvent]) -> Option<RunState> {
        let mut state = match (events.first(), cached) {
            (None, cached) => return cached,
            (Some(first), _) if first.event_id == 1 => RunState::default(),
            (Some(first), Some(cached)) if first.event_id == cached.last_event_id + 1 => cached,
            _ => return None,
        };
        events.iter().for_each(|e| state.apply(e));
        Some(state)
    }

    /// How much later than asked the timer fired, by the server's own event times.
    pub fn timer_delay(&self, asked: Duration) -> Option<Duration> {
        let fired = self
            .timer_fired_at?
            .duration_since(self.timer_started_at?)
            .ok()?;
        Some(fired.saturating_sub(asked))
    }
}

pub fn system_time(t: &chronicle_api::wkt::Timestamp) -> SystemTime {
    let nanos = Duration::new(
        t.seconds.max(0) as u64,
        t.nanos.clamp(0, 999_999_999) as u32,
    );
    UNIX_EPOCH + nanos
}

/// The worker's answer to one workflow task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do until something happens (an activity, the timer or a signal).
    Wait,
    /// Schedule the activity with this sequence number (1-based).
    ScheduleActivity(u32),
    StartTimer(Duration),
    Complete,
}

impl Plan {
    pub fn decide(&self, s: &RunState) -> Decision {
        if s.activities_scheduled > s.activities_closed {
            // A task that comes while the activity is still out (e.g. after a workflow task
            // timeout) must not schedule the next one: the steps are sequential.
            return Decision::Wait;
        }
        if s.activities_completed < self.activities {
            return Decision::ScheduleActivity(s.activities_scheduled + 1);
        }
        if let Some(timer) = self.timer {
            if s.timer_started_at.is_none() {
                return Decision::StartTimer(timer);
            }
            if s.timer_fired_at.is_none() {
                return Decision::Wait;
            }
        }
        if s.signals < self.signals {
            return Decision::Wait;
        }
        Decision::Complete
    }
}

impl Decision {
    /// The commands of a RespondWorkflowTaskCompleted; activities go to `task_queue`.
    pub fn commands(self, task_queue: &str) -> Vec<Command> {
        let (command_type, attributes) = match self {
            Decision::Wait => return Vec::new(),
            Decision::ScheduleActivity(seq) => (
                CommandType::ScheduleActivityTask,
                Attributes::ScheduleActivityTaskCommandAttributes(
                    ScheduleActivityTaskCommandAttributes {
                        activity_id: seq.to_string(),
                        activity_type: Some(ActivityType {
                            name: ACTIVITY_TYPE.to_owned(),
                        }),
                        task_queue: Some(rpc::normal_queue(task_queue)),
                        start_to_close_timeout: Some(rpc::duration(ACTIVITY_TIMEOUT)),
                        ..Default::default()
                    },
                ),
            ),
            Decision::StartTimer(after) => (
                CommandType::StartTimer,
                Attributes::StartTimerCommandAttributes(StartTimerCommandAttributes {
                    timer_id: TIMER_ID.to_owned(),
                    start_to_fire_timeout: Some(rpc::duration(after)),
                }),
            ),
            Decision::Complete => (
                CommandType::CompleteWorkflowExecution,
                Attributes::CompleteWorkflowExecutionCommandAttributes(
                    CompleteWorkflowExecutionCommandAttributes { result: None },
                ),
            ),
        };
        vec![Command {
            command_type: command_type as i32,
            attributes: Some(attributes),
            ..Default::default()
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_api::wkt::Timestamp;

    fn event(id: i64, kind: EventType) -> HistoryEvent {
        HistoryEvent {
            event_id: id,
            event_type: kind as i32,
            ..Default::default()
        }
    }

    fn events(kinds: &[EventType]) -> Vec<HistoryEvent> {
        (1..).zip(kinds).map(|(id, &k)| event(id, k)).collect()
    }

    use EventType::*;
    const START: [EventType; 3] = [
        WorkflowExecutionStarted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
    ];
    const ACTIVITY_ROUND: [EventType; 6] = [
        WorkflowTaskCompleted,
        ActivityTaskScheduled,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
    ];

    fn chain(n: u32) -> Plan {
        Plan {
            activities: n,
            timer: None,
            signals: 0,
        }
    }

    #[test]
    fn empty_completes_at_once() {
        let s = RunState::resume(None, &events(&START)).unwrap();
        assert_eq!(chain(0).decide(&s), Decision::Complete);
    }

    #[test]
    fn chain_schedules_one_activity_after_another() {
        let mut kinds = START.to_vec();
        let s = RunState::resume(None, &events(&kinds)).unwrap();
        assert_eq!(chain(2).decide(&s), Decision::ScheduleActivity(1));
        kinds.extend(ACTIVITY_ROUND);
        let s = RunState::resume(None, &events(&kinds)).unwrap();
        assert_eq!(chain(2).decide(&s), Decision::ScheduleActivity(2));
        kinds.extend(ACTIVITY_ROUND);
        let s = RunState::resume(None, &events(&kinds)).unwrap();
        assert_eq!(s.activities_completed, 2);
        assert_eq!(chain(2).decide(&s), Decision::Complete);
    }

    #[test]
    fn pending_activity_means_wait() {
        let mut kinds = START.to_vec();
        kinds.extend([
            WorkflowTaskCompleted,
            ActivityTaskScheduled,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
        ]);
        let s = RunState::resume(None, &events(&kinds)).unwrap();
        assert_eq!(chain(3).decide(&s), Decision::Wait);
    }

    #[test]
    fn failed_activity_is_scheduled_again_under_a_new_id() {
        let mut kinds = START.to_vec();
        kinds.extend([
            WorkflowTaskCompleted,
            ActivityTaskScheduled,
            ActivityTaskTimedOut,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
        ]);
        let s = RunState::resume(None, &events(&kinds)).unwrap();
        assert_eq!(chain(1).decide(&s), Decision::ScheduleActivity(2));
    }

    #[test]
    fn sticky_batch_continues_the_cached_state() {
        let mut kinds = START.to_vec();
        kinds.extend(ACTIVITY_ROUND);
        let all = events(&kinds);
        let first = RunState::resume(None, &all[..3]).unwrap();
        let next = RunState::resume(Some(first.clone()), &all[3..]).unwrap();
        assert_eq!(next, RunState::resume(None, &all).unwrap());
        // a batch that skips events cannot be continued; without a cache neither
        assert_eq!(RunState::resume(Some(first), &all[4..]), None);
        assert_eq!(RunState::resume(None, &all[3..]), None);
    }

    #[test]
    fn timer_then_complete_and_its_delay() {
        let plan = Plan {
            activities: 0,
            timer: Some(Duration::from_secs(1)),
            signals: 0,
        };
        let mut kinds = START.to_vec();
        let s = RunState::resume(None, &events(&kinds)).unwrap();
        assert_eq!(
            plan.decide(&s),
            Decision::StartTimer(Duration::from_secs(1))
        );
        kinds.extend([WorkflowTaskCompleted, TimerStarted]);
        let mut all = events(&kinds);
        all[4].event_time = Some(Timestamp {
            seconds: 100,
            nanos: 0,
        });
        let s = RunState::resume(None, &all).unwrap();
        assert_eq!(plan.decide(&s), Decision::Wait);
        let mut fired = event(6, TimerFired);
        fired.event_time = Some(Timestamp {
            seconds: 101,
            nanos: 25_000_000,
        });
        let s = RunState::resume(Some(s), &[fired]).unwrap();
        assert_eq!(plan.decide(&s), Decision::Complete);
        assert_eq!(
            s.timer_delay(Duration::from_secs(1)),
            Some(Duration::from_millis(25))
        );
    }

    #[test]
    fn signals_are_awaited() {
        let plan = Plan {
            activities: 0,
            timer: None,
            signals: 2,
        };
        let mut kinds = START.to_vec();
        kinds.push(WorkflowExecutionSignaled);
        let s = RunState::resume(None, &events(&kinds)).unwrap();
        assert_eq!(plan.decide(&s), Decision::Wait);
        kinds.push(WorkflowExecutionSignaled);
        let s = RunState::resume(None, &events(&kinds)).unwrap();
        assert_eq!(plan.decide(&s), Decision::Complete);
    }

    #[test]
    fn commands_of_each_decision() {
        assert!(Decision::Wait.commands("q").is_empty());
        let c = &Decision::ScheduleActivity(3).commands("q")[0];
        assert_eq!(c.command_type, CommandType::ScheduleActivityTask as i32);
        match &c.attributes {
            Some(Attributes::ScheduleActivityTaskCommandAttributes(a)) => {
                assert_eq!(a.activity_id, "3");
                assert_eq!(a.task_queue.as_ref().unwrap().name, "q");
            }
            other => panic!("{other:?}"),
        }
        let c = &Decision::Complete.commands("q")[0];
        assert_eq!(
            c.command_type,
            CommandType::CompleteWorkflowExecution as i32
        );
    }
}
