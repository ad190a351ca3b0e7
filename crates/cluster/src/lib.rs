//! Cluster membership in the database. Each node keeps a row in `cluster_members` (its id,
//! internal address, roles and a lease it renews every heartbeat); a row whose lease ran out
//! is a member no more. Every node reads the rows at each heartbeat and publishes the live
//! members with the shard each owns (`chronicle_common::cluster::Members`), from which every
//! node computes who owns which shard and queue.
//!
//! A node must stop acting as a member before the others can see its lease lapse: it counts
//! its own lease on its monotonic clock from the last renewal that committed, minus a margin
//! for clock drift between nodes (`holds_lease`).

mod nodes;
mod view;

pub use nodes::{Nodes, client_tls};
pub use view::{live_members, member_row};

use chronicle_common::cluster::{Member, Members};
use chronicle_common::config::ClusterConfig;
use chronicle_common::supervisor::{CancellationToken, Supervisor};
use chronicle_common::time;
use chronicle_persistence::{MembershipStore, PersistenceError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The part of a lease a node gives up to drift between its clock and the others' (at most a
/// quarter of a short lease, which must still outlast a heartbeat).
const LEASE_MARGIN: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Persistence(#[from] PersistenceError),
    /// Another member refused or could not be reached; `gone` when what was asked of it no
    /// longer exists there (a task already started, say).
    #[error("cluster member {member}: {message}")]
    Remote {
        member: String,
        gone: bool,
        message: String,
    },
}

/// This node's membership: cheap to clone.
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Inner>,
}

struct Inner {
    me: Member,
    store: Arc<dyn MembershipStore>,
    heartbeat: Duration,
    lease: Duration,
    started_at: i64,
    /// When the last renewal that committed began.
    renewed: Mutex<Option<Instant>>,
    /// Set once the node hands its work over before it stops (`leave`).
    leaving: std::sync::atomic::AtomicBool,
    live: watch::Sender<Members>,
    shard_count: u32,
}

impl Membership {
    /// Joins: writes this node's row, reads the members, and renews both every heartbeat
    /// under `supervisor` until it shuts down, when the node leaves (its row is deleted).
    /// `shard_count` history shards are dealt over the members playing history.
    pub async fn join(
        store: Arc<dyn MembershipStore>,
        me: Member,
        config: &ClusterConfig,
        shard_count: u32,
        supervisor: &Supervisor,
    ) -> Result<Self, ClusterError> {
        let (live, _) = watch::channel(Members::new(Vec::new(), shard_count));
        let membership = Self {
            inner: Arc::new(Inner {
                me,
                store,
                heartbeat: config.heartbeat_interval(),
                lease: config.lease(),
                started_at: time::unix_millis(time::now()),
                renewed: Mutex::new(None),
                leaving: std::sync::atomic::AtomicBool::new(false),
                live,
                shard_count,
            }),
        };
        membership.renew().await?;
        let looping = membership.clone();
        supervisor.spawn("cluster membership", looping.run(supervisor.token()));
        Ok(membership)
    }

    pub fn me(&self) -> &Member {
        &self.inner.me
    }

    /// The live members as of the last heartbeat, this node among them while it holds its
    /// lease.
    pub fn live(&self) -> Vec<Member> {
        self.inner.live.borrow().list().to_vec()
    }

    /// `read` over the live members without copying them (owner lookups on every call).
    pub fn with_live<T>(&self, read: impl FnOnce(&Members) -> T) -> T {
        read(&self.inner.live.borrow())
    }

    /// Woken whenever the live members change.
    pub fn subscribe(&self) -> watch::Receiver<Members> {
        self.inner.live.subscribe()
    }

    /// Whether this node may still act as a member: its last committed renewal is younger
    /// than its lease less the margin. Others see the lease lapse only after that.
    pub fn holds_lease(&self) -> bool {
        if self.is_leaving() {
            return false;
        }
        let renewed = *self.renewed();
        let margin = LEASE_MARGIN.min(self.inner.lease / 4);
        let usable = self.inner.lease.saturating_sub(margin);
        renewed.is_some_and(|at| at.elapsed() < usable)
    }

    fn is_leaving(&self) -> bool {
        self.inner
            .leaving
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hands this node's work to the others before it stops: its row goes, it counts itself
    /// out at once (so it releases its shards and routes calls to the others), and the
    /// others take over at their next heartbeat. Answers whether another member was there to
    /// take over.
    pub async fn leave(&self) -> bool {
        self.inner
            .leaving
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = self.inner.store.leave(&self.inner.me.id).await {
            tracing::warn!(member = %self.inner.me.id, "membership row not removed: {e}");
        }
        let me = self.inner.me.id.clone();
        let mut others = false;
        self.inner.live.send_modify(|live| {
            *live = live.without(&me);
            others = !live.list().is_empty();
        });
        others
    }

    /// How many history shards are dealt over the members.
    pub fn shard_count(&self) -> u32 {
        self.inner.shard_count
    }

    /// How often members renew their rows: how soon the others notice a change.
    pub fn heartbeat(&self) -> Duration {
        self.inner.heartbeat
    }

    fn renewed(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.inner
            .renewed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.inner.heartbeat) => {}
                () = stop.cancelled() => break,
            }
            if self.is_leaving() {
                return;
            }
            if let Err(e) = self.renew().await {
                tracing::warn!(member = %self.inner.me.id, "membership not renewed: {e}");
                if !self.holds_lease() {
                    // The others no longer count this node: neither may it.
                    let none = Members::new(Vec::new(), self.inner.shard_count);
                    self.inner.live.send_if_modified(|live| {
                        let before = live.list().len();
                        *live = none;
                        before > 0
                    });
                }
            }
        }
        if let Err(e) = self.inner.store.leave(&self.inner.me.id).await {
            tracing::warn!(member = %self.inner.me.id, "membership row not removed: {e}");
        }
    }

    /// Writes this node's row with a fresh lease, then reads who else is live.
    async fn renew(&self) -> Result<(), ClusterError> {
        let began = Instant::now();
        let now = time::unix_millis(time::now());
        let lease = i64::try_from(self.inner.lease.as_millis()).unwrap_or(i64::MAX);
        let row = member_row(&self.inner.me, self.inner.started_at, now, lease);
        self.inner.store.heartbeat(&row).await?;
        *self.renewed() = Some(began);
        let rows = self.inner.store.members().await?;
        let live = live_members(&rows, time::unix_millis(time::now()));
        self.inner.live.send_if_modified(|current| {
            let changed = current.list() != live;
            if changed {
                tracing::info!(members = ?live.iter().map(|m| &m.id).collect::<Vec<_>>(), "cluster members");
                *current = Members::new(live, self.inner.shard_count);
            }
            changed
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
