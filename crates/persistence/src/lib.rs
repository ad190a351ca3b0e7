//! Storage for every backend, offered as roles: each service holds only the traits it needs
//! (matching the queue backlog, the namespace registry the namespace rows, the internal worker
//! its jobs, history what a run's life touches), and `Store` is all of them, which a node opens
//! and hands out. Each execution write is a single transaction carrying the new events, the new
//! mutable state and the follow-up tasks (the transactional outbox), fenced by the shard's
//! range id and the state's version.

mod error;
mod sql;
mod visibility;

pub use error::{PersistenceError, Result};
pub use sql::{Backend, Dialect, Schema, SqlStore, with_tls};
pub use visibility::{AttributeRows, VisibilityRecord};

use chronicle_common::query::Resolved;

use async_trait::async_trait;

/// A namespace as stored: the protobuf-encoded description lives in `data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceRow {
    pub id: String,
    pub name: String,
    pub data: Vec<u8>,
}

/// Which run a workflow id points at, and whether it is still running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentRun {
    pub run_id: String,
    pub running: bool,
    pub status: i32,
    pub start_request_id: String,
}

/// A run's mutable state blob and the version the next write must name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionRow {
    pub shard_id: u32,
    pub db_version: i64,
    pub state: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueTaskRow {
    pub task_id: i64,
    pub namespace_id: String,
    pub task_queue: String,
    pub kind: i32,
    pub data: Vec<u8>,
}

/// A task queue as the backlog table names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueName<'a> {
    pub namespace_id: &'a str,
    pub task_queue: &'a str,
    pub kind: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerRow {
    pub shard_id: u32,
    /// Unix nanoseconds.
    pub fire_time: i64,
    pub task_id: i64,
    pub data: Vec<u8>,
}

/// How the write changes the workflow id's current-run pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CurrentRunWrite {
    /// Leave it alone (the run is not the current one, or nothing about it changed).
    Unchanged,
    /// Point the workflow id at this run. `previous_run_id` is the run it must point at now
    /// (None: there must be no row yet); a mismatch is a conflict, never an overwrite.
    Claim {
        previous_run_id: Option<String>,
        row: CurrentRun,
    },
    /// Same run, new status (e.g. it closed).
    Update(CurrentRun),
}

/// One run, as the tables key it.
#[derive(Clone, Copy, Debug)]
pub struct RunRef<'a> {
    pub namespace_id: &'a str,
    pub workflow_id: &'a str,
    pub run_id: &'a str,
}

/// A node's hold on a shard: the range id it acquired. Every write to the shard's rows names
/// it and is refused (`ShardOwnershipLost`) once another acquisition bumped the range id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub shard_id: u32,
    pub range_id: i64,
}

/// Everything one state change of one run writes, committed atomically.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionWrite {
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub shard_id: u32,
    /// The shard lease the writer holds; a stale lease fails with `ShardOwnershipLost`.
    pub range_id: i64,
    /// None creates the run; Some(v) updates it only if its version is still v.
    pub expected_version: Option<i64>,
    pub new_version: i64,
    pub state: Vec<u8>,
    pub current: Option<CurrentRunWrite>,
    /// (event id, encoded HistoryEvent), appended.
    pub events: Vec<(i64, Vec<u8>)>,
    pub new_queue_tasks: Vec<QueueTaskRow>,
    pub done_queue_tasks: Vec<i64>,
    pub new_timers: Vec<TimerRow>,
    /// Deletes every buffered event of the run before `new_buffered` are written: they were
    /// appended to history, or the run closed.
    pub clear_buffered: bool,
    /// (seq, encoded HistoryEvent): events that arrived while a workflow task was running,
    /// read back in seq order when it ends.
    pub new_buffered: Vec<(i64, Vec<u8>)>,
    /// The run's visibility record, when the change is one List and Count must see.
    pub visibility: Option<VisibilityRecord>,
}

impl ExecutionWrite {
    pub fn lease(&self) -> Lease {
        Lease {
            shard_id: self.shard_id,
            range_id: self.range_id,
        }
    }
}

/// A page of List results: encoded WorkflowExecutionInfo rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VisibilityPage {
    pub rows: Vec<Vec<u8>>,
    /// Empty on the last page.
    pub next_page_token: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VisibilityCount {
    pub count: i64,
    /// (WorkflowExecutionStatus, count), when grouped by status.
    pub by_status: Vec<(i32, i64)>,
}

/// Shard leases.
#[async_trait]
pub trait ShardStore: Send + Sync + 'static {
    /// Takes the shard over: bumps and returns its range id, fencing out any older owner.
    async fn acquire_shard(&self, shard_id: u32) -> Result<i64>;
    /// How many shards the database has (0 for a new one).
    async fn shard_count(&self) -> Result<u32>;
    /// Creates the rows of shards `0..count` that do not exist, in one transaction, so
    /// `shard_count` is 0 or `count` whoever looks (nodes start together on a new database).
    async fn create_shards(&self, count: u32) -> Result<()>;
    /// Every shard's range id as stored: (shard id, range id).
    async fn range_ids(&self) -> Result<Vec<(u32, i64)>>;
}

/// Namespace rows, which only the frontend's registry reads and writes.
#[async_trait]
pub trait NamespaceStore: Send + Sync + 'static {
    async fn create_namespace(&self, row: &NamespaceRow) -> Result<()>;
    async fn update_namespace(&self, row: &NamespaceRow) -> Result<()>;
    async fn namespace_by_name(&self, name: &str) -> Result<Option<NamespaceRow>>;
    async fn namespace_by_id(&self, id: &str) -> Result<Option<NamespaceRow>>;
    async fn list_namespaces(&self) -> Result<Vec<NamespaceRow>>;
}

/// Runs: the current-run pointers, mutable state, history, buffered events and the timer
/// queue, all written together by `write_executions`.
#[async_trait]
pub trait ExecutionStore: Send + Sync + 'static {
    async fn current_run(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<CurrentRun>>;
    async fn execution(
        &self,
        namespace_id: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Option<ExecutionRow>>;
    /// Commits the writes of one or more runs (a run and the run that replaces it) atomically.
    async fn write_executions(&self, writes: Vec<ExecutionWrite>) -> Result<()>;
    /// Encoded events with `from <= id < to`, in order, at most `limit`.
    async fn read_events(
        &self,
        run_id: &str,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>>;

    /// A run's buffered events as (seq, encoded HistoryEvent), in seq order.
    async fn buffered_events(&self, run_id: &str) -> Result<Vec<(i64, Vec<u8>)>>;

    /// Timers of a shard due at or before `until` (unix nanos), earliest first.
    async fn due_timers(&self, shard_id: u32, until: i64, limit: usize) -> Result<Vec<TimerRow>>;
    /// The earliest pending timer of a shard, if any.
    async fn next_timer(&self, shard_id: u32) -> Result<Option<i64>>;
    /// Deletes fired timers, given as (fire time, task id), in one transaction fenced by the
    /// lease (a node that lost the shard must not delete what its new owner will fire).
    async fn delete_timers(&self, lease: Lease, timers: &[(i64, i64)]) -> Result<()>;
    /// Moves timers to new rows (a later fire time), each given as (old (fire time, task id),
    /// new row), in one transaction fenced by the lease.
    async fn move_timers(&self, lease: Lease, moves: &[((i64, i64), TimerRow)]) -> Result<()>;

    /// Deletes every run of a namespace with all it owns (history, tasks, timers, visibility,
    /// search attributes, jobs).
    async fn delete_namespace_executions(&self, namespace_id: &str) -> Result<()>;
    /// Deletes one run — its state, history, buffered events, visibility, and the current-run
    /// pointer if it names this run — in one transaction fenced by the lease.
    async fn delete_run(&self, lease: Lease, run: &RunRef<'_>) -> Result<()>;
}

/// The matching backlog: rows written by `write_executions`, read back by matching and
/// deleted when their task starts.
#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// Backlog rows in task id order, after `after_task_id`.
    async fn queue_tasks(&self, after_task_id: i64, limit: usize) -> Result<Vec<QueueTaskRow>>;
    /// One task queue's backlog rows in task id order, after `after_task_id`.
    async fn queue_backlog(
        &self,
        queue: &QueueName<'_>,
        after_task_id: i64,
        limit: usize,
    ) -> Result<Vec<QueueTaskRow>>;
    /// Deletes a backlog row found stale, fenced by the lease of the shard that wrote it.
    async fn delete_queue_task(&self, lease: Lease, task_id: i64) -> Result<()>;
}

/// List and Count, and the search attributes their queries name.
#[async_trait]
pub trait VisibilityStore: Send + Sync + 'static {
    /// Runs matching the query in its order (default: open first, then latest closed).
    /// The page token continues after the last row, so inserts between pages shift nothing.
    async fn list_visibility(
        &self,
        namespace_id: &str,
        query: &Resolved,
        page_size: usize,
        page_token: &[u8],
    ) -> Result<VisibilityPage>;
    async fn count_visibility(
        &self,
        namespace_id: &str,
        query: &Resolved,
    ) -> Result<VisibilityCount>;

    /// Custom search attributes of a namespace: (name, IndexedValueType).
    async fn search_attributes(&self, namespace_id: &str) -> Result<Vec<(String, i32)>>;
    /// Registers attributes; an existing name keeps its type.
    async fn add_search_attributes(
        &self,
        namespace_id: &str,
        attributes: &[(String, i32)],
    ) -> Result<()>;
    async fn remove_search_attributes(&self, namespace_id: &str, names: &[String]) -> Result<()>;
}

/// System jobs of the internal worker: batch operations, namespace deletions, schedules.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Creates or replaces a system job with its progress. Replacing a job (stopping it,
    /// say) ends whatever claim is held on it.
    async fn put_job(&self, job: &JobRow) -> Result<()>;
    /// Claims a running job for one runner, ending any earlier claim on it; None when the
    /// job is not running, or another claim or a replacement came first.
    async fn claim_job(&self, key: &JobKey) -> Result<Option<JobClaim>>;
    /// Writes a claimed job's progress; false, and nothing written, once the claim no longer
    /// holds.
    async fn save_claimed_job(&self, job: &JobRow, epoch: i64) -> Result<bool>;
    /// Deletes a claimed job; false, and nothing deleted, once the claim no longer holds.
    async fn delete_claimed_job(&self, key: &JobKey, epoch: i64) -> Result<bool>;
    async fn job(&self, key: &JobKey) -> Result<Option<JobRow>>;
    /// A namespace's jobs of one kind, newest first.
    async fn jobs(&self, namespace_id: &str, kind: JobKind) -> Result<Vec<JobRow>>;
    /// The jobs of every namespace still running (for their runners to claim).
    async fn running_jobs(&self) -> Result<Vec<JobKey>>;
}

/// One node of the cluster as its membership row records it. Roles are stored comma-joined
/// (so a role name never contains a comma); no roles is the empty string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    pub member_id: String,
    /// The node's internal gRPC address, host:port.
    pub address: String,
    pub roles: Vec<String>,
    /// Unix milliseconds: when this incarnation of the node started.
    pub started_at: i64,
    /// Unix milliseconds: the node's last heartbeat.
    pub heartbeat_at: i64,
    /// Unix milliseconds: `heartbeat_at` plus the lease; the node is live until then.
    pub expires_at: i64,
}

/// Cluster membership: each node records itself and renews its lease by heartbeat.
#[async_trait]
pub trait MembershipStore: Send + Sync + 'static {
    /// Records the member, or updates its row (address, roles, start, heartbeat, expiry).
    async fn heartbeat(&self, member: &MemberRow) -> Result<()>;
    /// Every member row, live or not, by member id; the caller judges liveness by
    /// `expires_at`.
    async fn members(&self) -> Result<Vec<MemberRow>>;
    /// Deletes the member's row (a node leaving cleanly).
    async fn leave(&self, member_id: &str) -> Result<()>;
    /// Deletes the rows whose lease expired before `unix_ms` (nodes long dead); returns how
    /// many.
    async fn forget_members_expired_before(&self, unix_ms: i64) -> Result<u64>;
}

/// What the history service touches: shards, runs, the backlog its tasks start from, and
/// visibility; not the namespace rows or the worker's jobs.
pub trait HistoryStore: ShardStore + ExecutionStore + QueueStore + VisibilityStore {}

impl<T: ShardStore + ExecutionStore + QueueStore + VisibilityStore> HistoryStore for T {}

/// What the internal worker touches: its jobs, and the namespace rows a deletion job checks.
pub trait WorkerStore: JobStore + NamespaceStore {}

impl<T: JobStore + NamespaceStore> WorkerStore for T {}

/// Every role at once: what a node opens and hands out, each service taking its part.
pub trait Store: HistoryStore + WorkerStore + MembershipStore {}

impl<T: HistoryStore + WorkerStore + MembershipStore> Store for T {}

/// What a job does; each kind has its own ids (a schedule may share its id with a batch job).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    Batch,
    NamespaceDeletion,
    Schedule,
}

impl JobKind {
    /// The kind as the `kind` column stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::NamespaceDeletion => "namespace_deletion",
            Self::Schedule => "schedule",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [Self::Batch, Self::NamespaceDeletion, Self::Schedule]
            .into_iter()
            .find(|kind| kind.as_str() == stored)
    }
}

/// Names one job.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    pub namespace_id: String,
    pub kind: JobKind,
    pub job_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    pub key: JobKey,
    pub running: bool,
    pub data: Vec<u8>,
}

/// A job as one runner claimed it; its progress is written under `epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobClaim {
    pub job: JobRow,
    pub epoch: i64,
}
