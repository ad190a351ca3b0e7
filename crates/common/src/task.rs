//! A task waiting on a task queue: what history hands matching and matching hands a poller.

/// Which of the two task queue kinds a task belongs to. Stored as an integer in the backlog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum QueueKind {
    Workflow = 1,
    Activity = 2,
}

impl QueueKind {
    pub fn from_i32(value: i32) -> Option<Self> {
        match value {
            1 => Some(Self::Workflow),
            2 => Some(Self::Activity),
            _ => None,
        }
    }
}

/// A reference to scheduled work; the poller asks history to start it. Protobuf-encoded in the
/// backlog so new fields can be added without a migration.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DispatchTask {
    /// Unique per shard lease; also the backlog row's key.
    #[prost(int64, tag = "1")]
    pub task_id: i64,
    #[prost(string, tag = "2")]
    pub namespace_id: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub run_id: String,
    #[prost(int64, tag = "5")]
    pub scheduled_event_id: i64,
    /// Attempt the task was scheduled for; a poll for a stale attempt is dropped.
    #[prost(int32, tag = "6")]
    pub attempt: i32,
    #[prost(string, tag = "7")]
    pub task_queue: String,
    #[prost(int32, tag = "8")]
    pub kind: i32,
    /// Set for a query task, which exists in memory only (no backlog row, no history).
    #[prost(string, tag = "9")]
    pub query_id: String,
    /// Temporal's priority level, 1 first; 0 is the default level.
    #[prost(int32, tag = "10")]
    pub priority: i32,
    /// Tasks of one fairness key take turns with the other keys' of their level.
    #[prost(string, tag = "11")]
    pub fairness_key: String,
    #[prost(float, tag = "12")]
    pub fairness_weight: f32,
}

impl DispatchTask {
    pub fn execution_key(&self) -> crate::ExecutionKey {
        crate::ExecutionKey::new(&self.namespace_id, &self.workflow_id, &self.run_id)
    }

    pub fn queue_kind(&self) -> QueueKind {
        QueueKind::from_i32(self.kind).unwrap_or(QueueKind::Workflow)
    }
}
