//! What a durable timer is for. The engine arms `Timer`s; the service stores them as
//! `TimerTask` rows (a stable protobuf layout, so timers written by earlier versions still
//! fire) and hands each due one back to the engine's handler for its kind.

use chronicle_api::enums::v1::TimeoutType;
use chronicle_common::ExecutionKey;

/// One attempt of an activity or workflow task: a timer armed for it applies only while that
/// attempt is the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub scheduled_event_id: i64,
    pub attempt: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A workflow's own timer, named by its TimerStarted event.
    User {
        started_event_id: i64,
    },
    /// Schedule-to-start, start-to-close of one attempt.
    ActivityTimeout {
        attempt: Attempt,
        timeout: TimeoutType,
    },
    /// Schedule-to-close: one deadline across every attempt of the activity.
    ActivityScheduleToClose {
        scheduled_event_id: i64,
    },
    /// The retry backoff of an activity ended: its next attempt is dispatched.
    ActivityRetry(Attempt),
    /// Re-checks an attempt's heartbeat deadline, which heartbeats keep pushing out.
    ActivityHeartbeat(Attempt),
    WorkflowTaskTimeout(Attempt),
    /// A workflow task on a sticky queue nobody picked up in time.
    StickyScheduleToStart(Attempt),
    WorkflowRunTimeout,
    WorkflowExecutionTimeout,
    /// The first workflow task of a run that starts after a delay (retry or cron backoff).
    WorkflowBackoff,
    // Work on other workflows after a commit (the outbox), due at once.
    StartChild {
        initiated_event_id: i64,
    },
    /// On a child's last run: tell the parent how the child's chain ended.
    RecordChildClosed,
    ParentClosePolicy {
        initiated_event_id: i64,
    },
    /// A signal or cancel request to another workflow.
    ExternalRequest {
        initiated_event_id: i64,
    },
    /// The namespace's retention after the run closed: the run is deleted.
    DeleteRun,
}

/// A timer as it is stored: its run, its kind and the kind's payload in fixed fields.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct TimerTask {
    #[prost(int32, tag = "1")]
    kind: i32,
    #[prost(string, tag = "2")]
    pub namespace_id: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub run_id: String,
    /// The event the timer belongs to: timer started, activity or workflow task scheduled,
    /// child or external request initiated.
    #[prost(int64, tag = "5")]
    event_id: i64,
    #[prost(int32, tag = "6")]
    attempt: i32,
    /// The activity timeout type.
    #[prost(int32, tag = "7")]
    timeout_type: i32,
    /// How many times its handler failed in a way retrying at once would not cure.
    #[prost(int32, tag = "8")]
    pub parked: i32,
}

/// Stored kind numbers: part of the on-disk format, never reused.
mod kind {
    pub const USER: i32 = 1;
    pub const ACTIVITY_TIMEOUT: i32 = 2;
    pub const ACTIVITY_RETRY: i32 = 3;
    pub const WORKFLOW_TASK_TIMEOUT: i32 = 4;
    pub const WORKFLOW_RUN_TIMEOUT: i32 = 5;
    pub const WORKFLOW_EXECUTION_TIMEOUT: i32 = 6;
    pub const WORKFLOW_BACKOFF: i32 = 7;
    pub const ACTIVITY_HEARTBEAT: i32 = 8;
    pub const START_CHILD: i32 = 9;
    pub const RECORD_CHILD_CLOSED: i32 = 10;
    pub const PARENT_CLOSE_POLICY: i32 = 11;
    pub const EXTERNAL_REQUEST: i32 = 12;
    pub const STICKY_SCHEDULE_TO_START: i32 = 13;
    pub const DELETE_RUN: i32 = 14;
}

impl TimerTask {
    pub fn new(key: &ExecutionKey, timer: Timer) -> Self {
        let (kind, event_id, attempt, timeout_type) = match timer {
            Timer::User { started_event_id } => (kind::USER, started_event_id, 0, 0),
            Timer::ActivityTimeout { attempt, timeout } => (
                kind::ACTIVITY_TIMEOUT,
                attempt.scheduled_event_id,
                attempt.attempt,
                timeout as i32,
            ),
            Timer::ActivityScheduleToClose { scheduled_event_id } => (
                kind::ACTIVITY_TIMEOUT,
                scheduled_event_id,
                0,
                TimeoutType::ScheduleToClose as i32,
            ),
            Timer::ActivityRetry(a) => (kind::ACTIVITY_RETRY, a.scheduled_event_id, a.attempt, 0),
            Timer::ActivityHeartbeat(a) => {
                (kind::ACTIVITY_HEARTBEAT, a.scheduled_event_id, a.attempt, 0)
            }
            Timer::WorkflowTaskTimeout(a) => (
                kind::WORKFLOW_TASK_TIMEOUT,
                a.scheduled_event_id,
                a.attempt,
                0,
            ),
            Timer::StickyScheduleToStart(a) => (
                kind::STICKY_SCHEDULE_TO_START,
                a.scheduled_event_id,
                a.attempt,
                0,
            ),
            Timer::WorkflowRunTimeout => (kind::WORKFLOW_RUN_TIMEOUT, 0, 0, 0),
            Timer::WorkflowExecutionTimeout => (kind::WORKFLOW_EXECUTION_TIMEOUT, 0, 0, 0),
            Timer::WorkflowBackoff => (kind::WORKFLOW_BACKOFF, 0, 0, 0),
            Timer::StartChild { initiated_event_id } => {
                (kind::START_CHILD, initiated_event_id, 0, 0)
            }
            Timer::RecordChildClosed => (kind::RECORD_CHILD_CLOSED, 0, 0, 0),
            Timer::ParentClosePolicy { initiated_event_id } => {
                (kind::PARENT_CLOSE_POLICY, initiated_event_id, 0, 0)
            }
            Timer::ExternalRequest { initiated_event_id } => {
                (kind::EXTERNAL_REQUEST, initiated_event_id, 0, 0)
            }
            Timer::DeleteRun => (kind::DELETE_RUN, 0, 0, 0),
        };
        Self {
            kind,
            namespace_id: key.namespace_id.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            event_id,
            attempt,
            timeout_type,
            parked: 0,
        }
    }

    pub fn key(&self) -> ExecutionKey {
        ExecutionKey::new(&self.namespace_id, &self.workflow_id, &self.run_id)
    }

    /// The stored kind number, for logs.
    pub fn kind(&self) -> i32 {
        self.kind
    }

    /// What the timer is for; none for a kind this version does not know.
    pub fn timer(&self) -> Option<Timer> {
        let attempt = Attempt {
            scheduled_event_id: self.event_id,
            attempt: self.attempt,
        };
        let event_id = self.event_id;
        Some(match self.kind {
            kind::USER => Timer::User {
                started_event_id: event_id,
            },
            kind::ACTIVITY_TIMEOUT => {
                match TimeoutType::try_from(self.timeout_type).unwrap_or(TimeoutType::StartToClose)
                {
                    TimeoutType::ScheduleToClose => Timer::ActivityScheduleToClose {
                        scheduled_event_id: event_id,
                    },
                    timeout => Timer::ActivityTimeout { attempt, timeout },
                }
            }
            kind::ACTIVITY_RETRY => Timer::ActivityRetry(attempt),
            kind::ACTIVITY_HEARTBEAT => Timer::ActivityHeartbeat(attempt),
            kind::WORKFLOW_TASK_TIMEOUT => Timer::WorkflowTaskTimeout(attempt),
            kind::STICKY_SCHEDULE_TO_START => Timer::StickyScheduleToStart(attempt),
            kind::WORKFLOW_RUN_TIMEOUT => Timer::WorkflowRunTimeout,
            kind::WORKFLOW_EXECUTION_TIMEOUT => Timer::WorkflowExecutionTimeout,
            kind::WORKFLOW_BACKOFF => Timer::WorkflowBackoff,
            kind::START_CHILD => Timer::StartChild {
                initiated_event_id: event_id,
            },
            kind::RECORD_CHILD_CLOSED => Timer::RecordChildClosed,
            kind::DELETE_RUN => Timer::DeleteRun,
            kind::PARENT_CLOSE_POLICY => Timer::ParentClosePolicy {
                initiated_event_id: event_id,
            },
            kind::EXTERNAL_REQUEST => Timer::ExternalRequest {
                initiated_event_id: event_id,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_timer_survives_being_stored() {
        let key = ExecutionKey::new("ns", "wf", "run");
        let a = Attempt {
            scheduled_event_id: 5,
            attempt: 3,
        };
        let timers = [
            Timer::User {
                started_event_id: 7,
            },
            Timer::ActivityTimeout {
                attempt: a,
                timeout: TimeoutType::ScheduleToStart,
            },
            Timer::ActivityTimeout {
                attempt: a,
                timeout: TimeoutType::StartToClose,
            },
            Timer::ActivityScheduleToClose {
                scheduled_event_id: 5,
            },
            Timer::ActivityRetry(a),
            Timer::ActivityHeartbeat(a),
            Timer::WorkflowTaskTimeout(a),
            Timer::StickyScheduleToStart(a),
            Timer::WorkflowRunTimeout,
            Timer::WorkflowExecutionTimeout,
            Timer::WorkflowBackoff,
            Timer::StartChild {
                initiated_event_id: 9,
            },
            Timer::RecordChildClosed,
            Timer::ParentClosePolicy {
                initiated_event_id: 9,
            },
            Timer::ExternalRequest {
                initiated_event_id: 9,
            },
        ];
        for timer in timers {
            let stored = TimerTask::new(&key, timer).encode_to_vec();
            let task = TimerTask::decode(stored.as_slice()).unwrap();
            assert_eq!(task.timer(), Some(timer));
            assert_eq!(task.key(), key);
        }
    }

    #[test]
    fn a_kind_from_a_newer_version_is_not_guessed() {
        let mut task = TimerTask::new(
            &ExecutionKey::new("ns", "wf", "run"),
            Timer::WorkflowBackoff,
        );
        task.kind = 99;
        assert_eq!(task.timer(), None);
    }
}
