//! Which shards this node serves, following the cluster's members: a shard is acquired when
//! the node becomes its owner and released when it stops being one (another member's turn,
//! its lease found taken — by a write, or by the follower reading the range ids — or this
//! node's own membership lease lapsing). A shard still assigned here is acquired again at
//! once.

use crate::shard::Shard;
use crate::shards::handover;
use crate::{History, HistoryError, Result, timers};
use chronicle_cluster::{Membership, Nodes};
use chronicle_common::shard_for;
use chronicle_common::supervisor::CancellationToken;
use std::sync::Arc;
use std::time::Duration;

/// How often ownership is checked even when the members did not change: a shard lost to a
/// fence, or not acquired because the database was out of reach, is taken (back) then.
const RECHECK: Duration = Duration::from_secs(1);

impl History {
    /// Acquires `ids` (each acquisition bumps the shard's range id, so the previous owner's
    /// writes fail from now on) and starts their timer queues.
    pub async fn own(&self, ids: &[u32]) -> Result<()> {
        // States cached while another node owned the shard may be stale.
        self.forget_cached(ids);
        for &id in ids {
            let range_id = self.store().acquire_shard(id).await?;
            let shard = Arc::new(Shard::new(id, range_id));
            self.inner.shards.install(shard.clone());
            let queue = timers::run(self.clone(), shard, self.inner.tasks.token());
            self.inner.tasks.spawn(format!("timer queue {id}"), queue);
            tracing::info!(shard = id, range_id, "shard acquired");
        }
        if !ids.is_empty() {
            // Tasks the previous owner wrote may wait in the backlog table: load them.
            self.reload_backlog();
        }
        self.count_owned();
        Ok(())
    }

    /// Gives shards up at once: their timer queues stop, their cached states are dropped, and
    /// no write of this node names their lease again.
    pub(crate) fn release(&self, ids: &[u32]) {
        for &id in ids {
            if let Some(shard) = self.inner.shards.remove(id) {
                shard.timer_added.notify_one();
                tracing::info!(shard = id, "shard released");
            }
        }
        self.forget_cached(ids);
        self.count_owned();
    }

    fn count_owned(&self) {
        let owned = self.inner.shards.owned_ids().len();
        metrics::gauge!("chronicle_shards_owned").set(owned as f64);
    }

    fn forget_cached(&self, ids: &[u32]) {
        // The follower settles ownership every second; most passes move nothing.
        if ids.is_empty() {
            return;
        }
        let count = self.shard_count();
        self.inner.cache.forget_where(|key| {
            ids.contains(&shard_for(&key.namespace_id, &key.workflow_id, count))
        });
    }

    /// Takes the shards `membership` assigns this node now, then follows the assignment
    /// under the history's tasks until they stop.
    pub async fn follow(&self, nodes: Nodes) -> Result<()> {
        let membership = nodes.membership().clone();
        if membership.shard_count() != self.shard_count() {
            return Err(HistoryError::InvalidArgument(format!(
                "the members deal {} shards, this history has {}",
                membership.shard_count(),
                self.shard_count()
            )));
        }
        // Set once: a node follows one cluster.
        let _ = self.inner.nodes.set(nodes);
        // A new database: every shard's row at once, so the shard count is recorded.
        self.store().create_shards(self.shard_count()).await?;
        // What this first pass does not settle, the follower settles a moment later.
        if let Err(e) = self.rebalance(&membership).await {
            tracing::warn!("shard ownership not settled yet: {e}");
        }
        let follower = self.clone();
        let stop = self.inner.tasks.token();
        self.inner
            .tasks
            .spawn("shard ownership", follower.keep_following(membership, stop));
        Ok(())
    }

    async fn keep_following(self, membership: Membership, stop: CancellationToken) {
        let mut members = membership.subscribe();
        loop {
            tokio::select! {
                _ = members.changed() => self.reload_backlog_later(membership.heartbeat()),
                () = self.inner.lease_lost.notified() => {}
                () = tokio::time::sleep(RECHECK) => {}
                () = stop.cancelled() => return,
            }
            if let Err(e) = self.rebalance(&membership).await {
                tracing::warn!("shard ownership not settled: {e}");
            }
        }
    }

    /// Task queues moved with the members: a task handed to a queue's old owner while the
    /// nodes' views differed waits in the backlog table. Once the views agree (two
    /// heartbeats), every node reads the table again, so each queue's owner holds its tasks.
    fn reload_backlog_later(&self, heartbeat: Duration) {
        let history = self.clone();
        let stop = self.inner.tasks.token();
        self.inner
            .tasks
            .spawn("backlog reload after a membership change", async move {
                tokio::select! {
                    () = tokio::time::sleep(heartbeat * 2) => history.reload_backlog(),
                    () = stop.cancelled() => {}
                }
            });
    }

    async fn rebalance(&self, membership: &Membership) -> Result<()> {
        // A lease another node took since is given up here, and taken anew below if the
        // shard is still this node's, before a call finds it out by failing.
        let stored = self.store().range_ids().await?;
        let stale = self.inner.shards.stale(&stored);
        if !stale.is_empty() {
            tracing::info!(shards = ?stale, "shard leases taken by another node");
            self.release(&stale);
        }
        let assigned = if membership.holds_lease() {
            membership.with_live(|live| live.shards_of(&membership.me().id))
        } else {
            // The others may already count this node gone: it must not act as an owner.
            Vec::new()
        };
        let plan = handover(&self.inner.shards.owned_ids(), &assigned);
        self.release(&plan.release);
        self.own(&plan.acquire).await
    }
}
