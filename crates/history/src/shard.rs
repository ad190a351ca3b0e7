//! A history shard this node owns: its lease (range id) and task id allocation.

use crate::engine::context::Ids;
use chronicle_persistence::Lease;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use tokio::sync::Notify;

/// Task id layout (63 bits): lease range id | shard id | sequence within the lease.
const SEQ_BITS: u32 = 32;
const SHARD_BITS: u32 = 12;

pub(crate) struct Shard {
    pub id: u32,
    pub range_id: i64,
    next_seq: AtomicI64,
    /// Woken when a transaction adds a timer, so the timer queue re-reads its next deadline.
    pub timer_added: Notify,
    /// Set once a write found the lease taken by another owner; health reports it.
    lost: AtomicBool,
}

impl Shard {
    pub fn new(id: u32, range_id: i64) -> Self {
        Self {
            id,
            range_id,
            next_seq: AtomicI64::new(1),
            timer_added: Notify::new(),
            lost: AtomicBool::new(false),
        }
    }

    /// The lease every write to this shard's rows is fenced by.
    pub fn lease(&self) -> Lease {
        Lease {
            shard_id: self.id,
            range_id: self.range_id,
        }
    }

    pub fn mark_lost(&self) {
        self.lost.store(true, Ordering::Relaxed);
    }

    pub fn is_owned(&self) -> bool {
        !self.lost.load(Ordering::Relaxed)
    }

    /// Task ids are unique across shards, restarts and nodes without a database round trip:
    /// the high bits are the lease's range id (no other lease of this shard ever had it) and
    /// the shard's id.
    pub fn next_task_id(&self) -> i64 {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed) & ((1 << SEQ_BITS) - 1);
        let shard = i64::from(self.id) & ((1 << SHARD_BITS) - 1);
        (self.range_id << (SEQ_BITS + SHARD_BITS)) | (shard << SEQ_BITS) | seq
    }
}

impl Ids for Shard {
    fn task_id(&self) -> i64 {
        self.next_task_id()
    }

    fn run_id(&self) -> String {
        chronicle_common::ids::new_run_id()
    }

    fn request_id(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_differ_across_shards_and_leases() {
        let a = Shard::new(0, 1);
        let b = Shard::new(1, 1);
        let c = Shard::new(0, 2);
        let ids = [
            a.next_task_id(),
            b.next_task_id(),
            c.next_task_id(),
            a.next_task_id(),
        ];
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.iter().all(|id| *id > 0));
    }
}
