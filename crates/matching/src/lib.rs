//! Task queues. A task reaches matching after the transaction that scheduled it committed (its
//! backlog row is written in that same transaction), so matching itself never writes: it hands
//! tasks to waiting pollers (sync match) or keeps them queued in memory, and rebuilds that
//! memory from the backlog table at start-up, and again after a commit whose outcome is
//! unknown (the database went away mid-commit: its tasks may be in the table only). The row is
//! deleted by the history transaction that starts the task, so a task is never lost between
//! the two; a task loaded twice is harmless, as starting it a second time finds it stale.

mod queue;

pub use queue::{PollerRecord, TaskGrant};

use chronicle_common::{DispatchTask, QueueKind};
use chronicle_persistence::{Result, Store};
use queue::TaskQueue;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Names one task queue of one namespace and kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QueueKey {
    pub namespace_id: String,
    pub name: String,
    pub kind: QueueKind,
}

impl QueueKey {
    pub fn of(task: &DispatchTask) -> Self {
        Self {
            namespace_id: task.namespace_id.clone(),
            name: task.task_queue.clone(),
            kind: task.queue_kind(),
        }
    }
}

/// Cheap-to-clone handle to all task queues of this node.
#[derive(Clone, Default)]
pub struct Matching {
    queues: Arc<Mutex<HashMap<QueueKey, TaskQueue>>>,
}

impl Matching {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the persisted backlog tasks that are not queued in memory already; returns how
    /// many. Call before serving polls, and whenever a commit may have written tasks that
    /// never reached `add`.
    pub async fn restore(&self, store: &dyn Store) -> Result<usize> {
        const PAGE: usize = 1000;
        let queued = self.queued_task_ids();
        let mut after = i64::MIN;
        let mut restored = 0;
        loop {
            let rows = store.queue_tasks(after, PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.task_id;
            for row in rows.iter().filter(|row| !queued.contains(&row.task_id)) {
                match <DispatchTask as prost::Message>::decode(row.data.as_slice()) {
                    Ok(task) => {
                        self.add(task);
                        restored += 1;
                    }
                    Err(e) => {
                        tracing::error!(task_id = row.task_id, "undecodable backlog task: {e}")
                    }
                }
            }
        }
        Ok(restored)
    }

    fn queued_task_ids(&self) -> HashSet<i64> {
        let queues = self.queues.lock().expect("matching lock");
        queues.values().flat_map(TaskQueue::task_ids).collect()
    }

    /// Hands the task to the longest-waiting poller, or queues it.
    pub fn add(&self, task: DispatchTask) {
        let key = QueueKey::of(&task);
        let mut task = Some(task);
        let mut queues = self.queues.lock().expect("matching lock");
        let queue = queues.entry(key).or_default();
        while let Some(waiter) = queue.next_waiter() {
            let grant = TaskGrant::new(task.take().expect("task present"), self.clone());
            match waiter.send(grant) {
                None => return,
                Some(returned) => task = Some(returned),
            }
        }
        queue.push(task.expect("task present"));
    }

    /// Waits until a task is available or `deadline` passes.
    pub async fn poll(
        &self,
        key: QueueKey,
        poller: PollerRecord,
        deadline: Instant,
    ) -> Option<TaskGrant> {
        let (waiter_id, receiver) = {
            let mut queues = self.queues.lock().expect("matching lock");
            let queue = queues.entry(key.clone()).or_default();
            queue.record_poller(poller);
            if let Some(task) = queue.pop() {
                return Some(TaskGrant::new(task, self.clone()));
            }
            queue.wait()
        };
        let mut receiver = receiver;
        tokio::select! {
            grant = &mut receiver => grant.ok(),
            () = tokio::time::sleep_until(deadline) => {
                if let Some(queue) = self.queues.lock().expect("matching lock").get_mut(&key) {
                    queue.forget_waiter(waiter_id);
                }
                // A task may have been sent between the timer firing and the waiter's removal.
                receiver.try_recv().ok()
            }
        }
    }

    /// Pollers seen on the queue recently, newest first.
    pub fn pollers(&self, key: &QueueKey) -> Vec<PollerRecord> {
        self.queues
            .lock()
            .expect("matching lock")
            .get(key)
            .map(TaskQueue::recent_pollers)
            .unwrap_or_default()
    }

    /// Whether a poller waits on the queue now or polled it within `window`: a sticky
    /// queue nobody polls is not worth waiting for.
    pub fn has_poller(&self, key: &QueueKey, window: Duration) -> bool {
        let queues = self.queues.lock().expect("matching lock");
        queues.get(key).is_some_and(|q| q.has_poller(window))
    }

    /// Forgets the queue (its worker is gone) and returns the tasks that waited on it.
    pub fn drain(&self, key: &QueueKey) -> Vec<DispatchTask> {
        let mut queues = self.queues.lock().expect("matching lock");
        queues
            .remove(key)
            .map(TaskQueue::into_tasks)
            .unwrap_or_default()
    }

    /// Tasks waiting in memory for a poller.
    pub fn backlog_len(&self, key: &QueueKey) -> usize {
        self.queues
            .lock()
            .expect("matching lock")
            .get(key)
            .map(TaskQueue::len)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
