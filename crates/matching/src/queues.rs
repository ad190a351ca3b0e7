//! All task queues of the node and what they hold in memory, within a budget of bytes.

use crate::QueueKey;
use crate::queue::TaskQueue;
use chronicle_common::DispatchTask;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;

/// What a queued task costs in memory: its encoded fields and the struct around them.
pub(crate) fn task_bytes(task: &DispatchTask) -> u64 {
    (prost::Message::encoded_len(task) + std::mem::size_of::<DispatchTask>()) as u64
}

/// A task with a backlog row can wait there; a query task exists in memory only.
pub(crate) fn has_backlog_row(task: &DispatchTask) -> bool {
    task.query_id.is_empty()
}

pub(crate) struct Queues {
    queues: HashMap<QueueKey, TaskQueue>,
    /// Bytes of the tasks queued in memory, across queues.
    bytes: u64,
    budget: u64,
    /// Backlog tasks handed to pollers and not yet claimed: their rows are still in the
    /// table, and a refill must not queue them again.
    granted: HashSet<i64>,
}

impl Queues {
    pub fn new(budget: u64) -> Self {
        Self {
            queues: HashMap::new(),
            bytes: 0,
            budget,
            granted: HashSet::new(),
        }
    }

    pub fn get(&self, key: &QueueKey) -> Option<&TaskQueue> {
        self.queues.get(key)
    }

    pub fn get_mut(&mut self, key: &QueueKey) -> Option<&mut TaskQueue> {
        self.queues.get_mut(key)
    }

    /// The queue, created if the node has not seen it (or forgot it).
    pub fn queue(&mut self, key: &QueueKey) -> &mut TaskQueue {
        self.queues
            .entry(key.clone())
            .or_insert_with(|| TaskQueue::new(Instant::now()))
    }

    /// Queues the task in memory if it fits and its queue has nothing in the backlog only;
    /// otherwise leaves it to its backlog row. Query tasks have no row and always stay.
    pub fn keep(&mut self, key: &QueueKey, task: DispatchTask) {
        let over = self.bytes + task_bytes(&task) > self.budget;
        let queue = self.queue(key);
        if has_backlog_row(&task) && (over || queue.spill.is_spilled()) {
            queue.spill.note();
        } else {
            self.push(key, task);
        }
    }

    /// Queues the task whatever the budget: a refill must make progress even while other
    /// queues hold the memory.
    pub fn push(&mut self, key: &QueueKey, task: DispatchTask) {
        self.bytes += task_bytes(&task);
        self.queue(key).push(task);
    }

    pub fn pop(&mut self, key: &QueueKey) -> Option<DispatchTask> {
        let task = self.queues.get_mut(key)?.pop()?;
        self.bytes -= task_bytes(&task);
        Some(task)
    }

    pub fn keys(&self) -> Vec<QueueKey> {
        self.queues.keys().cloned().collect()
    }

    /// Forgets the queue; returns the tasks it held.
    pub fn remove(&mut self, key: &QueueKey) -> Vec<DispatchTask> {
        let tasks = self
            .queues
            .remove(key)
            .map(TaskQueue::into_tasks)
            .unwrap_or_default();
        self.bytes -= tasks.iter().map(task_bytes).sum::<u64>();
        tasks
    }

    pub fn grant(&mut self, task: &DispatchTask) {
        if has_backlog_row(task) {
            self.granted.insert(task.task_id);
        }
    }

    pub fn ungrant(&mut self, task: &DispatchTask) {
        if has_backlog_row(task) {
            self.granted.remove(&task.task_id);
        }
    }

    /// Backlog tasks the node holds: queued, or granted and not yet claimed.
    pub fn known_task_ids(&self) -> HashSet<i64> {
        let queued = self.queues.values().flat_map(TaskQueue::task_ids);
        queued.chain(self.granted.iter().copied()).collect()
    }

    /// Backlog tasks held already for `key`'s queue: queued there, or granted.
    pub fn held_ids(&self, key: &QueueKey) -> HashSet<i64> {
        let queued = self
            .queues
            .get(key)
            .into_iter()
            .flat_map(TaskQueue::task_ids);
        queued.chain(self.granted.iter().copied()).collect()
    }

    /// Forgets queues nobody used for `idle` and that hold nothing; returns how many.
    pub fn evict_idle(&mut self, now: Instant, idle: Duration) -> usize {
        let before = self.queues.len();
        self.queues.retain(|_, queue| !queue.is_idle(now, idle));
        before - self.queues.len()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queues.len()
    }
}
