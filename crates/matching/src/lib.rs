//! Task queues. A task reaches matching after the transaction that scheduled it committed (its
//! backlog row is written in that same transaction), so matching itself never writes: it hands
//! tasks to waiting pollers (sync match) or keeps them queued in memory, and rebuilds that
//! memory from the backlog table at start-up, and again after a commit whose outcome is
//! unknown (the database went away mid-commit: its tasks may be in the table only). The row is
//! deleted by the history transaction that starts the task, so a task is never lost between
//! the two; a task loaded twice is harmless, as starting it a second time finds it stale.
//!
//! Memory is bounded: queued tasks within a budget of bytes (past it a task is left to its
//! backlog row and read back when its queue drains, see `refill`), poller records per queue,
//! and queues nobody used for a while are forgotten.

mod order;
mod queue;
mod queues;
mod refill;

pub use queue::{PollerRecord, TaskGrant};

use chronicle_common::config::MemoryConfig;
use chronicle_common::{DispatchTask, QueueKind};
use chronicle_persistence::{QueueStore, Result};
use queue::TaskQueue;
use queues::Queues;
use std::sync::{Arc, Mutex, PoisonError};
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
#[derive(Clone)]
pub struct Matching {
    shared: Arc<Shared>,
}

struct Shared {
    queues: Mutex<Queues>,
    store: Arc<dyn QueueStore>,
    idle_queue: Duration,
    /// Cancelled when the node stops: waiting polls answer empty at once, as Temporal's do,
    /// so the node's shutdown does not wait out their deadlines.
    closing: chronicle_common::supervisor::CancellationToken,
    /// Which queues this node serves, once it follows a cluster; every queue until then.
    serves: std::sync::OnceLock<Serves>,
}

/// Whether this node serves a queue: a cluster's member serves the queues it owns.
pub type Serves = Arc<dyn Fn(&QueueKey) -> bool + Send + Sync>;

impl Matching {
    pub fn new(store: Arc<dyn QueueStore>, memory: &MemoryConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                queues: Mutex::new(Queues::new(memory.matching_tasks_bytes)),
                store,
                idle_queue: Duration::from_secs(memory.idle_queue_secs),
                closing: Default::default(),
                serves: std::sync::OnceLock::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.shared
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves only the queues `serves` names from now on (set once: a node follows one
    /// cluster); `restore` settles memory with it.
    pub fn serve_only(&self, serves: Serves) {
        let _ = self.shared.serves.set(serves);
    }

    fn serves(&self, key: &QueueKey) -> bool {
        self.shared.serves.get().is_none_or(|serves| serves(key))
    }

    /// Settles memory with the backlog table and with which queues this node serves: forgets
    /// the queues it no longer serves (their waiting polls answer empty, to be polled again
    /// on their owner), then loads the backlog tasks of the queues it serves that it does
    /// not hold already (those that do not fit stay in the table, their queues marked to read
    /// them back); returns how many it loaded. Call before serving polls, whenever a commit
    /// may have written tasks that never reached `add`, and when queues move between nodes.
    pub async fn restore(&self) -> Result<usize> {
        const PAGE: usize = 1000;
        let known = {
            let mut queues = self.lock();
            for key in queues.keys() {
                if !self.serves(&key) {
                    queues.remove(&key);
                }
            }
            queues.known_task_ids()
        };
        let mut after = i64::MIN;
        let mut restored = 0;
        loop {
            let rows = self.shared.store.queue_tasks(after, PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.task_id;
            for row in rows.iter().filter(|row| !known.contains(&row.task_id)) {
                let Some(task) = refill::decode(row) else {
                    continue;
                };
                if self.serves(&QueueKey::of(&task)) {
                    self.add(task);
                    restored += 1;
                }
            }
        }
        Ok(restored)
    }

    /// Hands the task to the longest-waiting poller, or queues it.
    pub fn add(&self, task: DispatchTask) {
        let key = QueueKey::of(&task);
        let mut queues = self.lock();
        queues.queue(&key).touch(Instant::now());
        if let Some(task) = self.hand_over(&mut queues, &key, task) {
            queues.keep(&key, task);
        }
    }

    /// Gives the task to a waiting poller; returns it if none is listening.
    fn hand_over(
        &self,
        queues: &mut Queues,
        key: &QueueKey,
        mut task: DispatchTask,
    ) -> Option<DispatchTask> {
        while let Some(waiter) = queues.queue(key).next_waiter() {
            queues.grant(&task);
            match waiter.send(TaskGrant::new(task, self.clone())) {
                None => return None,
                Some(returned) => {
                    queues.ungrant(&returned);
                    task = returned;
                }
            }
        }
        Some(task)
    }

    /// A granted task was claimed: its poller started it.
    fn claimed(&self, task: &DispatchTask) {
        self.lock().ungrant(task);
    }

    /// A granted task was not started: it goes back to its queue.
    fn give_back(&self, task: DispatchTask) {
        self.lock().ungrant(&task);
        self.add(task);
    }

    /// Waits until a task is available or `deadline` passes.
    pub async fn poll(
        &self,
        key: QueueKey,
        poller: PollerRecord,
        deadline: Instant,
    ) -> Option<TaskGrant> {
        let (waiter_id, mut receiver) = {
            let mut queues = self.lock();
            let queue = queues.queue(&key);
            queue.touch(Instant::now());
            queue.record_poller(poller);
            if let Some(task) = queues.pop(&key) {
                queues.grant(&task);
                return Some(TaskGrant::new(task, self.clone()));
            }
            let queue = queues.queue(&key);
            if let Some(from) = queue.spill.start_refill() {
                // Spawned: a refill abandoned half-way would leave the queue marked refilling.
                // Not supervised: it is a few reads at most, and a node that stops while
                // one runs reads the backlog again at start anyway.
                tokio::spawn(self.clone().refill(key.clone(), from));
            }
            queue.wait()
        };
        let closing = self.shared.closing.clone();
        tokio::select! {
            grant = &mut receiver => return grant.ok(),
            () = tokio::time::sleep_until(deadline) => {}
            () = closing.cancelled() => {}
        }
        if let Some(queue) = self.lock().get_mut(&key) {
            queue.forget_waiter(waiter_id);
        }
        // A task may have been sent between the wait ending and the waiter's removal.
        receiver.try_recv().ok()
    }

    /// The node is stopping: every waiting poll, and every poll from now on, answers empty.
    pub fn close_polls(&self) {
        self.shared.closing.cancel();
    }

    /// Forgets idle queues every so often, until `supervisor` shuts down.
    pub fn run(&self, supervisor: &chronicle_common::Supervisor) {
        let matching = self.clone();
        let every =
            (self.shared.idle_queue / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let stop = supervisor.token();
        supervisor.spawn("queue eviction", async move {
            let mut interval = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    () = stop.cancelled() => return,
                }
                matching.evict_idle();
            }
        });
    }

    /// Forgets queues with no poller, no task and no use for the idle time; returns how many.
    pub fn evict_idle(&self) -> usize {
        let idle = self.shared.idle_queue;
        self.lock().evict_idle(Instant::now(), idle)
    }

    /// Pollers seen on the queue recently, newest first.
    pub fn pollers(&self, key: &QueueKey) -> Vec<PollerRecord> {
        self.lock()
            .get(key)
            .map(TaskQueue::recent_pollers)
            .unwrap_or_default()
    }

    /// Whether a poller waits on the queue now or polled it within `window`: a sticky
    /// queue nobody polls is not worth waiting for.
    pub fn has_poller(&self, key: &QueueKey, window: Duration) -> bool {
        self.lock().get(key).is_some_and(|q| q.has_poller(window))
    }

    /// Forgets the queue (its worker is gone) and returns the tasks that waited on it in
    /// memory.
    pub fn drain(&self, key: &QueueKey) -> Vec<DispatchTask> {
        self.lock().remove(key)
    }

    /// Tasks waiting in memory for a poller.
    pub fn backlog_len(&self, key: &QueueKey) -> usize {
        self.lock().get(key).map(TaskQueue::len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
