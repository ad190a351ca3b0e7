//! Mutable state: what history must know about a run without reading its events. Stored as a
//! protobuf message built from the official types, so fields can be added without migrations.

use crate::engine::timer::Attempt;
use chronicle_api::{common::v1 as common, failure::v1::Failure, history::v1::HistoryEvent, wkt};
use std::collections::BTreeMap;

#[derive(Clone, PartialEq, prost::Message)]
pub struct MutableState {
    #[prost(message, optional, tag = "1")]
    pub info: Option<ExecutionInfo>,
    /// Id the next appended event gets.
    #[prost(int64, tag = "2")]
    pub next_event_id: i64,
    #[prost(btree_map = "int64, message", tag = "3")]
    pub activities: BTreeMap<i64, ActivityInfo>,
    #[prost(btree_map = "string, message", tag = "4")]
    pub timers: BTreeMap<String, TimerInfo>,
    #[prost(message, optional, tag = "5")]
    pub workflow_task: Option<WorkflowTaskInfo>,
    /// Buffered events of versions that kept them here rather than as rows (`buffer`): moved
    /// to rows by the next change that reads the buffer.
    #[prost(message, repeated, tag = "6")]
    pub legacy_buffered_events: Vec<HistoryEvent>,
    /// `previous_started_event_id` of the next workflow task.
    #[prost(int64, tag = "7")]
    pub last_completed_wft_started_event_id: i64,
    /// Request ids of recent signals, so a retried signal is applied once.
    #[prost(string, repeated, tag = "8")]
    pub signal_request_ids: Vec<String>,
    #[prost(int64, tag = "9")]
    pub history_size_bytes: i64,
    /// Child workflows started by this run and not yet closed, by initiated event id.
    #[prost(btree_map = "int64, message", tag = "10")]
    pub children: BTreeMap<i64, ChildInfo>,
    /// Signals and cancel requests to other workflows not yet delivered, by initiated event id.
    #[prost(btree_map = "int64, message", tag = "11")]
    pub external_requests: BTreeMap<i64, ExternalRequest>,
    /// Updates the worker accepted, by update id: the events that record them.
    #[prost(btree_map = "string, message", tag = "12")]
    pub updates: BTreeMap<String, UpdateRecord>,
    /// How many events arrived while the workflow task runs, waiting as rows to be appended
    /// once it ends (a started workflow task must be followed directly by its own end).
    #[prost(int64, tag = "13")]
    pub buffered_count: i64,
    /// Sequence number of the next buffered row; rows are read back in this order.
    #[prost(int64, tag = "14")]
    pub next_buffered_seq: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateRecord {
    #[prost(int64, tag = "1")]
    pub accepted_event_id: i64,
    /// Zero until the update completed.
    #[prost(int64, tag = "2")]
    pub completed_event_id: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutionInfo {
    #[prost(string, tag = "1")]
    pub namespace_id: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    #[prost(string, tag = "4")]
    pub first_execution_run_id: String,
    #[prost(string, tag = "5")]
    pub workflow_type: String,
    #[prost(string, tag = "6")]
    pub task_queue: String,
    #[prost(message, optional, tag = "7")]
    pub workflow_task_timeout: Option<wkt::Duration>,
    #[prost(message, optional, tag = "8")]
    pub run_timeout: Option<wkt::Duration>,
    #[prost(message, optional, tag = "9")]
    pub execution_timeout: Option<wkt::Duration>,
    #[prost(message, optional, tag = "10")]
    pub start_time: Option<wkt::Timestamp>,
    /// When the first workflow task may run (start time plus any start delay or retry backoff).
    #[prost(message, optional, tag = "11")]
    pub execution_time: Option<wkt::Timestamp>,
    #[prost(message, optional, tag = "12")]
    pub close_time: Option<wkt::Timestamp>,
    /// `WorkflowExecutionStatus`.
    #[prost(int32, tag = "13")]
    pub status: i32,
    /// Deadline across all runs of a retry chain; none when there is no execution timeout.
    #[prost(message, optional, tag = "14")]
    pub execution_expiration_time: Option<wkt::Timestamp>,
    #[prost(message, optional, tag = "15")]
    pub retry_policy: Option<common::RetryPolicy>,
    #[prost(int32, tag = "16")]
    pub attempt: i32,
    #[prost(string, tag = "17")]
    pub start_request_id: String,
    #[prost(message, optional, tag = "18")]
    pub memo: Option<common::Memo>,
    #[prost(message, optional, tag = "19")]
    pub search_attributes: Option<common::SearchAttributes>,
    #[prost(bool, tag = "20")]
    pub cancel_requested: bool,
    /// Event id of the closing event once the run closed.
    #[prost(int64, tag = "21")]
    pub close_event_id: i64,
    /// Run that continues this one (retry), if any.
    #[prost(string, tag = "22")]
    pub new_execution_run_id: String,
    #[prost(string, tag = "23")]
    pub namespace_name: String,
    #[prost(message, optional, tag = "24")]
    pub header: Option<common::Header>,
    /// Set when a parent workflow started this run's chain as its child.
    #[prost(message, optional, tag = "25")]
    pub parent: Option<ParentInfo>,
    #[prost(string, tag = "26")]
    pub cron_schedule: String,
    /// The worker that ran the last workflow task keeps the workflow cached; its next task
    /// goes to this queue first (empty: the normal queue).
    #[prost(string, tag = "27")]
    pub sticky_task_queue: String,
    #[prost(message, optional, tag = "28")]
    pub sticky_schedule_to_start_timeout: Option<wkt::Duration>,
    /// Signals the run received, bounded by `signals_per_execution`.
    #[prost(uint64, tag = "29")]
    pub signal_count: u64,
    /// The namespace's retention when the run started: how long it is kept once closed
    /// (none: kept until deleted).
    #[prost(message, optional, tag = "30")]
    pub retention: Option<wkt::Duration>,
    /// The build of the worker that completed the last workflow task (describe's
    /// most_recent_worker_version_stamp).
    #[prost(message, optional, tag = "31")]
    pub worker_version: Option<common::WorkerVersionStamp>,
    /// The run at the top of this run's tree of children, as its started event names it
    /// (none: this run is the top).
    #[prost(message, optional, tag = "32")]
    pub root: Option<common::WorkflowExecution>,
    /// The summary and details the run was started with.
    #[prost(message, optional, tag = "33")]
    pub user_metadata: Option<chronicle_api::sdk::v1::UserMetadata>,
    /// The run's priority and fairness, which its tasks are matched by.
    #[prost(message, optional, tag = "34")]
    pub priority: Option<common::Priority>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ParentInfo {
    #[prost(string, tag = "1")]
    pub namespace_id: String,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub run_id: String,
    /// The parent's StartChildWorkflowExecutionInitiated event.
    #[prost(int64, tag = "5")]
    pub initiated_event_id: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChildInfo {
    #[prost(int64, tag = "1")]
    pub initiated_event_id: i64,
    /// Zero until the child's ChildWorkflowExecutionStarted event is written.
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    /// The child's first run, once started.
    #[prost(string, tag = "4")]
    pub run_id: String,
    #[prost(string, tag = "5")]
    pub workflow_type: String,
    /// `ParentClosePolicy`.
    #[prost(int32, tag = "6")]
    pub parent_close_policy: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExternalRequest {
    #[prost(int64, tag = "1")]
    pub initiated_event_id: i64,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    /// A cancel request; otherwise a signal.
    #[prost(bool, tag = "4")]
    pub cancel: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowTaskInfo {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    /// Zero until a poller started the task.
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(int32, tag = "3")]
    pub attempt: i32,
    #[prost(string, tag = "4")]
    pub task_queue: String,
    #[prost(message, optional, tag = "5")]
    pub scheduled_time: Option<wkt::Timestamp>,
    #[prost(message, optional, tag = "6")]
    pub started_time: Option<wkt::Timestamp>,
    #[prost(string, tag = "7")]
    pub request_id: String,
    #[prost(string, tag = "8")]
    pub identity: String,
    #[prost(message, optional, tag = "9")]
    pub timeout: Option<wkt::Duration>,
    /// Backlog row of the dispatch, deleted when the task starts.
    #[prost(int64, tag = "10")]
    pub task_id: i64,
}

impl WorkflowTaskInfo {
    /// Attempts after the first are not written to history until one completes, so a workflow
    /// task failing in a loop does not grow the history.
    pub fn is_transient(&self) -> bool {
        self.attempt > 1
    }

    pub fn is_started(&self) -> bool {
        self.started_event_id != 0
    }

    pub fn current_attempt(&self) -> Attempt {
        Attempt {
            scheduled_event_id: self.scheduled_event_id,
            attempt: self.attempt,
        }
    }

    /// Whether a timer armed for `attempt` is about this task as it is now.
    pub fn is_attempt(&self, attempt: Attempt) -> bool {
        self.current_attempt() == attempt
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ActivityInfo {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    #[prost(string, tag = "2")]
    pub activity_id: String,
    #[prost(string, tag = "3")]
    pub activity_type: String,
    #[prost(string, tag = "4")]
    pub task_queue: String,
    #[prost(message, optional, tag = "5")]
    pub schedule_to_close_timeout: Option<wkt::Duration>,
    #[prost(message, optional, tag = "6")]
    pub schedule_to_start_timeout: Option<wkt::Duration>,
    #[prost(message, optional, tag = "7")]
    pub start_to_close_timeout: Option<wkt::Duration>,
    #[prost(message, optional, tag = "8")]
    pub heartbeat_timeout: Option<wkt::Duration>,
    #[prost(message, optional, tag = "9")]
    pub retry_policy: Option<common::RetryPolicy>,
    #[prost(int32, tag = "10")]
    pub attempt: i32,
    /// First attempt's schedule time: schedule-to-close runs from here.
    #[prost(message, optional, tag = "11")]
    pub scheduled_time: Option<wkt::Timestamp>,
    #[prost(message, optional, tag = "12")]
    pub current_attempt_scheduled_time: Option<wkt::Timestamp>,
    /// Set while an attempt runs. The started event is written only when the attempt ends,
    /// so retries leave no trace in history but the final one.
    #[prost(message, optional, tag = "13")]
    pub started_time: Option<wkt::Timestamp>,
    #[prost(string, tag = "14")]
    pub started_identity: String,
    #[prost(string, tag = "15")]
    pub started_request_id: String,
    #[prost(message, optional, tag = "16")]
    pub last_heartbeat_time: Option<wkt::Timestamp>,
    #[prost(message, optional, tag = "17")]
    pub heartbeat_details: Option<common::Payloads>,
    #[prost(bool, tag = "18")]
    pub cancel_requested: bool,
    #[prost(int64, tag = "19")]
    pub cancel_requested_event_id: i64,
    #[prost(message, optional, tag = "20")]
    pub last_failure: Option<Failure>,
    #[prost(int64, tag = "23")]
    pub task_id: i64,
    #[prost(string, tag = "24")]
    pub last_worker_identity: String,
    /// As the command set it; unset fields are the run's.
    #[prost(message, optional, tag = "25")]
    pub priority: Option<common::Priority>,
    /// Paused by an operator (PauseActivity): no attempt is dispatched until unpaused; a
    /// running attempt learns of it from its heartbeats.
    #[prost(message, optional, tag = "26")]
    pub paused: Option<ActivityPause>,
    /// ResetActivity while an attempt runs: its heartbeats say so, and the attempts count
    /// again from the first once it ends.
    #[prost(bool, tag = "27")]
    pub reset_requested: bool,
}

/// Who paused an activity, when and why.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActivityPause {
    #[prost(message, optional, tag = "1")]
    pub time: Option<wkt::Timestamp>,
    #[prost(string, tag = "2")]
    pub identity: String,
    #[prost(string, tag = "3")]
    pub reason: String,
}

impl ActivityInfo {
    pub fn is_started(&self) -> bool {
        self.started_time.is_some()
    }

    pub fn current_attempt(&self) -> Attempt {
        Attempt {
            scheduled_event_id: self.scheduled_event_id,
            attempt: self.attempt,
        }
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimerInfo {
    #[prost(string, tag = "1")]
    pub timer_id: String,
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(message, optional, tag = "3")]
    pub expiry_time: Option<wkt::Timestamp>,
}

impl MutableState {
    /// Every state is made with its info, and a stored one without it is refused as corrupt
    /// when read (`History::read_state`).
    #[allow(clippy::expect_used)] // cannot fail: see above
    pub fn info(&self) -> &ExecutionInfo {
        self.info
            .as_ref()
            .expect("mutable state always has execution info")
    }

    #[allow(clippy::expect_used)] // cannot fail: as for `info`
    pub fn info_mut(&mut self) -> &mut ExecutionInfo {
        self.info
            .as_mut()
            .expect("mutable state always has execution info")
    }

    pub fn is_running(&self) -> bool {
        self.info().close_event_id == 0
    }

    /// Events wait for the running workflow task to end.
    pub fn has_buffered(&self) -> bool {
        self.buffered_count > 0 || !self.legacy_buffered_events.is_empty()
    }

    /// A workflow task is running on a worker right now.
    pub fn wft_in_flight(&self) -> bool {
        self.workflow_task
            .as_ref()
            .is_some_and(WorkflowTaskInfo::is_started)
    }

    pub fn activity_by_id(&self, activity_id: &str) -> Option<&ActivityInfo> {
        self.activities
            .values()
            .find(|a| a.activity_id == activity_id)
    }
}

/// Applies a memo upsert: a null payload (the SDKs' encoding of "no value") deletes its key.
pub fn merge_memo(memo: &mut common::Memo, upsert: &common::Memo) {
    for (key, value) in &upsert.fields {
        let null = value
            .metadata
            .get("encoding")
            .is_some_and(|e| e.as_slice() == b"binary/null");
        if null {
            memo.fields.remove(key);
        } else {
            memo.fields.insert(key.clone(), value.clone());
        }
    }
}

/// Applies a search attribute upsert: a value that says "no value" unsets its attribute.
pub fn merge_search_attributes(
    current: &mut common::SearchAttributes,
    upsert: &common::SearchAttributes,
) {
    for (name, value) in &upsert.indexed_fields {
        if chronicle_common::search_attributes::unsets(value) {
            current.indexed_fields.remove(name);
        } else {
            current.indexed_fields.insert(name.clone(), value.clone());
        }
    }
}
