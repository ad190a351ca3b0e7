//! A history shard this node owns: its lease (range id) and task id allocation.

use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::Notify;

pub(crate) struct Shard {
    pub id: u32,
    pub range_id: i64,
    next_seq: AtomicI64,
    /// Woken when a transaction adds a timer, so the timer queue re-reads its next deadline.
    pub timer_added: Notify,
}

impl Shard {
    pub fn new(id: u32, range_id: i64) -> Self {
        Self {
            id,
            range_id,
            next_seq: AtomicI64::new(1),
            timer_added: Notify::new(),
        }
    }

    /// Task ids are unique across restarts and nodes without a database round trip: the high
    /// bits are the lease's range id, which no other lease of this shard ever had.
    pub fn next_task_id(&self) -> i64 {
        (self.range_id << 32) | self.next_seq.fetch_add(1, Ordering::Relaxed)
    }
}
