//! One task queue's in-memory state: queued tasks, waiting pollers, recently seen pollers.

use crate::Matching;
use chronicle_common::DispatchTask;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

/// Pollers are reported by DescribeTaskQueue for this long after their last poll.
const POLLER_MEMORY: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, PartialEq)]
pub struct PollerRecord {
    pub identity: String,
    pub last_access_time: SystemTime,
}

/// A task handed to a poller. If the grant is dropped before `take` (the poll was cancelled, or
/// the grant died in a channel nobody reads), the task goes back to its queue.
pub struct TaskGrant {
    task: Option<DispatchTask>,
    matching: Matching,
}

impl TaskGrant {
    pub(crate) fn new(task: DispatchTask, matching: Matching) -> Self {
        Self {
            task: Some(task),
            matching,
        }
    }

    /// The granted task, still unclaimed.
    pub fn task(&self) -> &DispatchTask {
        self.task
            .as_ref()
            .expect("a grant holds its task until taken")
    }

    /// Claims the task; from now on the caller must start it or `Matching::add` it back.
    pub fn take(&mut self) -> DispatchTask {
        self.task.take().expect("a grant is taken once")
    }
}

impl Drop for TaskGrant {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            self.matching.add(task);
        }
    }
}

pub(crate) struct Waiter {
    id: u64,
    sender: oneshot::Sender<TaskGrant>,
}

impl Waiter {
    /// Hands the grant over; gives the task back if the poller is gone.
    pub(crate) fn send(self, grant: TaskGrant) -> Option<DispatchTask> {
        self.sender
            .send(grant)
            .err()
            .map(|mut returned| returned.take())
    }
}

#[derive(Default)]
pub(crate) struct TaskQueue {
    tasks: VecDeque<DispatchTask>,
    waiters: VecDeque<Waiter>,
    next_waiter_id: u64,
    pollers: HashMap<String, SystemTime>,
}

impl TaskQueue {
    pub(crate) fn push(&mut self, task: DispatchTask) {
        self.tasks.push_back(task);
    }

    pub(crate) fn pop(&mut self) -> Option<DispatchTask> {
        self.tasks.pop_front()
    }

    pub(crate) fn task_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.tasks.iter().map(|task| task.task_id)
    }

    pub(crate) fn into_tasks(self) -> Vec<DispatchTask> {
        self.tasks.into()
    }

    pub(crate) fn has_poller(&self, window: Duration) -> bool {
        let now = SystemTime::now();
        self.waiters.iter().any(|w| !w.sender.is_closed())
            || self
                .pollers
                .values()
                .any(|seen| now.duration_since(*seen).map_or(true, |age| age < window))
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// The longest-waiting poller that is still listening.
    pub(crate) fn next_waiter(&mut self) -> Option<Waiter> {
        while let Some(waiter) = self.waiters.pop_front() {
            if !waiter.sender.is_closed() {
                return Some(waiter);
            }
        }
        None
    }

    pub(crate) fn wait(&mut self) -> (u64, oneshot::Receiver<TaskGrant>) {
        let (sender, receiver) = oneshot::channel();
        self.next_waiter_id += 1;
        let id = self.next_waiter_id;
        self.waiters.push_back(Waiter { id, sender });
        (id, receiver)
    }

    pub(crate) fn forget_waiter(&mut self, id: u64) {
        self.waiters.retain(|w| w.id != id);
    }

    pub(crate) fn record_poller(&mut self, poller: PollerRecord) {
        let now = poller.last_access_time;
        self.pollers.insert(poller.identity, now);
        self.pollers.retain(|_, seen| {
            now.duration_since(*seen)
                .map(|age| age < POLLER_MEMORY)
                .unwrap_or(true)
        });
    }

    pub(crate) fn recent_pollers(&self) -> Vec<PollerRecord> {
        let mut pollers: Vec<_> = self
            .pollers
            .iter()
            .map(|(identity, seen)| PollerRecord {
                identity: identity.clone(),
                last_access_time: *seen,
            })
            .collect();
        pollers.sort_by_key(|p| std::cmp::Reverse(p.last_access_time));
        pollers
    }
}
