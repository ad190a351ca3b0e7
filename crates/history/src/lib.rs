//! The history service: owns every run's event history and mutable state. Each operation takes
//! the workflow's lock, loads its state, changes it in a [`change::Change`] and commits events, state
//! and follow-up tasks in one write; tasks reach matching and the timer queue only after that
//! write is durable.

mod activity;
mod activity_end;
mod activity_ops;
mod cache;
mod children;
mod close;
mod commit;
mod control;
mod delete;
mod engine;
mod error;
mod external;
mod load;
mod locks;
mod namespace;
mod ownership;
mod poll;
mod queries;
mod read;
mod read_reverse;
mod recovery;
mod remote;
mod reset;
mod shard;
mod shards;
mod start;
mod sticky;
mod timers;
mod updates;
mod user_timer;
mod visibility;
mod watch;
mod workflow_task;

pub use activity_ops::HeartbeatAnswer;
pub use engine::activity::{ActivityResponse, ActivityTarget};
pub use engine::limits::HistoryLimit;
pub use error::{HistoryError, Result};
pub use namespace::NamespaceRef;

use chronicle_common::ExecutionKey;
use chronicle_common::config::{Limits, LimitsTable, MemoryConfig};
use chronicle_matching::Matching;
use chronicle_persistence::{HistoryStore, PersistenceError};
use shard::Shard;
use std::sync::Arc;

/// Task ids reserve 12 bits for the shard (see `shard.rs`).
const MAX_SHARDS: u32 = 4096;

#[derive(Clone, Debug)]
pub struct HistoryOptions {
    /// Fixed for the life of a database: placement of workflows depends on it.
    pub shard_count: u32,
    pub limits: Arc<LimitsTable>,
    pub memory: MemoryConfig,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        Self {
            shard_count: 1,
            limits: Arc::default(),
            memory: MemoryConfig::default(),
        }
    }
}

/// Cheap-to-clone handle to the history service.
#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn HistoryStore>,
    limits: Arc<LimitsTable>,
    memory: MemoryConfig,
    matching: Matching,
    shards: shards::Shards,
    /// Runs the timer queue of each shard acquired, and the recovery loop.
    tasks: chronicle_common::Supervisor,
    /// The other nodes, once the node follows a cluster (`follow`).
    nodes: std::sync::OnceLock<chronicle_cluster::Nodes>,
    locks: locks::LockTable,
    watch: watch::Watchers,
    queries: queries::Queries,
    updates: updates::Updates,
    search_attributes: visibility::Registry,
    backlog_reload: tokio::sync::Notify,
    /// Wakes the ownership follower when a write found a shard's lease taken.
    lease_lost: tokio::sync::Notify,
    cache: cache::StateCache,
}

impl History {
    /// Checks the shard count against the database and starts the recovery loop under
    /// `tasks`. The node owns no shard until `own` (or `follow`) acquires some.
    pub async fn start(
        options: HistoryOptions,
        store: Arc<dyn HistoryStore>,
        matching: Matching,
        tasks: &chronicle_common::Supervisor,
    ) -> Result<Self> {
        let count = options.shard_count.max(1);
        if count > MAX_SHARDS {
            return Err(HistoryError::InvalidArgument(format!(
                "shard_count {count} exceeds {MAX_SHARDS}"
            )));
        }
        let existing = store.shard_count().await?;
        if existing != 0 && existing != count {
            // Workflows are placed by the shard count: changing it would lose them.
            return Err(HistoryError::InvalidArgument(format!(
                "the database has {existing} history shards; shard_count must stay {existing} (configured: {count})"
            )));
        }
        let state_cache_bytes = options.memory.state_cache_bytes;
        let updates = updates::Updates::new(options.memory.pending_updates_bytes);
        let history = Self {
            inner: Arc::new(Inner {
                store,
                limits: options.limits,
                memory: options.memory,
                matching,
                shards: shards::Shards::new(count),
                tasks: tasks.clone(),
                nodes: std::sync::OnceLock::new(),
                locks: locks::LockTable::default(),
                watch: watch::Watchers::default(),
                queries: queries::Queries::default(),
                updates,
                search_attributes: visibility::Registry::default(),
                backlog_reload: tokio::sync::Notify::new(),
                lease_lost: tokio::sync::Notify::new(),
                cache: cache::StateCache::new(state_cache_bytes),
            }),
        };
        let recovery = recovery::run(history.clone(), tasks.token());
        tasks.spawn("backlog recovery", recovery);
        Ok(history)
    }

    pub fn shard_count(&self) -> u32 {
        self.inner.shards.count()
    }

    /// Shards this node owns now.
    pub fn owned_shards(&self) -> u32 {
        self.inner.shards.owned_ids().len() as u32
    }

    /// A write failed: if because another node holds the shard's lease now, this node is no
    /// longer its owner and stops acting as one.
    pub(crate) fn note_write_failure(&self, e: &PersistenceError) {
        if let PersistenceError::ShardOwnershipLost { shard_id, range_id } = e {
            // Only the lease that failed is lost: the shard may be held anew already.
            let current = self.inner.shards.get(*shard_id);
            if current.is_some_and(|s| s.range_id == *range_id) {
                tracing::error!(shard_id, "shard lease taken by another node");
                self.release(&[*shard_id]);
                self.inner.lease_lost.notify_one();
            }
        }
    }

    /// A cheap read that tells whether the database answers (for health checks).
    pub async fn ping_store(&self) -> Result<()> {
        self.store().shard_count().await?;
        Ok(())
    }

    /// The workflow's shard, if this node owns it.
    fn shard_of(&self, namespace_id: &str, workflow_id: &str) -> Result<Arc<Shard>> {
        let id = chronicle_common::shard_for(namespace_id, workflow_id, self.shard_count());
        self.inner
            .shards
            .get(id)
            .ok_or(HistoryError::ShardNotOwned(id))
    }

    /// The limits that apply in a namespace, by its name.
    pub fn limits(&self, namespace_name: &str) -> &Limits {
        self.inner.limits.for_namespace(namespace_name)
    }

    fn store(&self) -> &dyn HistoryStore {
        self.inner.store.as_ref()
    }

    /// The run id an empty `run_id` stands for: the workflow id's current run.
    async fn resolve_run(
        &self,
        namespace_id: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<ExecutionKey> {
        if !run_id.is_empty() {
            return Ok(ExecutionKey::new(namespace_id, workflow_id, run_id));
        }
        let current = self
            .store()
            .current_run(namespace_id, workflow_id)
            .await?
            .ok_or_else(|| {
                HistoryError::WorkflowNotFound(format!("workflow not found for ID: {workflow_id}"))
            })?;
        Ok(ExecutionKey::new(namespace_id, workflow_id, current.run_id))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod value_properties;
