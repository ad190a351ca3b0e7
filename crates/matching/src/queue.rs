//! One task queue's in-memory state: queued tasks, waiting pollers, recently seen pollers,
//! and whether some of its tasks wait in the backlog table only.

use crate::Matching;
use crate::order::Ordered;
use chronicle_common::DispatchTask;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Pollers are reported by DescribeTaskQueue for this long after their last poll.
const POLLER_MEMORY: Duration = Duration::from_secs(300);
/// Poller identities remembered per queue; past it the longest unseen is forgotten. Far more
/// workers than one queue ever has, yet a bound on a client inventing identities.
pub(crate) const MAX_POLLERS: usize = 1000;

#[derive(Clone, Debug, PartialEq)]
pub struct PollerRecord {
    pub identity: String,
    pub last_access_time: SystemTime,
}

/// A task handed to a poller. If the grant is dropped before `take` (the poll was cancelled, or
/// the grant died in a channel nobody reads), the task goes back to its queue.
pub struct TaskGrant {
    task: DispatchTask,
    /// Whom the task goes back to if the grant is dropped; None once it was taken out.
    matching: Option<Matching>,
}

impl TaskGrant {
    pub(crate) fn new(task: DispatchTask, matching: Matching) -> Self {
        Self {
            task,
            matching: Some(matching),
        }
    }

    /// The granted task, still unclaimed.
    pub fn task(&self) -> &DispatchTask {
        &self.task
    }

    /// Claims the task; from now on the caller must start it or `Matching::add` it back.
    pub fn take(mut self) -> DispatchTask {
        let task = std::mem::take(&mut self.task);
        if let Some(matching) = self.matching.take() {
            matching.claimed(&task);
        }
        task
    }

    /// The task, for a grant that never reached its poller: still granted, not claimed.
    fn unsent(mut self) -> DispatchTask {
        self.matching = None;
        std::mem::take(&mut self.task)
    }
}

impl Drop for TaskGrant {
    fn drop(&mut self) {
        if let Some(matching) = self.matching.take() {
            matching.give_back(std::mem::take(&mut self.task));
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
        self.sender.send(grant).err().map(TaskGrant::unsent)
    }
}

/// Where a refill of a queue's spilled tasks reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RefillFrom {
    pub after: i64,
}

/// A queue whose tasks did not fit in memory: they wait in the backlog table, and newer ones
/// join them there, so the queue stays first in, first out. Refills read the queue's rows in
/// rounds over its task ids; a round that finds every row while nothing spilled ends it.
#[derive(Debug)]
pub(crate) struct Spill {
    spilled: bool,
    /// Counts spills, so a round can tell whether a task spilled while it read.
    spills: u64,
    spills_at_round_start: u64,
    refilling: bool,
    /// Task ids are not committed in order across shards, so a row may appear behind the
    /// cursor; reads go round from the lowest id again until a round misses nothing.
    cursor: i64,
}

impl Default for Spill {
    fn default() -> Self {
        Self {
            spilled: false,
            spills: 0,
            spills_at_round_start: 0,
            refilling: false,
            cursor: i64::MIN,
        }
    }
}

impl Spill {
    pub fn is_spilled(&self) -> bool {
        self.spilled
    }

    pub fn note(&mut self) {
        self.spilled = true;
        self.spills += 1;
    }

    /// Claims the queue's one refill, if it needs one and none is running.
    pub fn start_refill(&mut self) -> Option<RefillFrom> {
        if !self.spilled || self.refilling {
            return None;
        }
        self.refilling = true;
        Some(self.next_read())
    }

    fn next_read(&mut self) -> RefillFrom {
        if self.cursor == i64::MIN {
            self.spills_at_round_start = self.spills;
        }
        RefillFrom { after: self.cursor }
    }

    /// After a read of `rows` rows (the page held `page`), the last with id `last`: where the
    /// next read goes, or None once the queue's tasks are all in memory again.
    pub fn read(&mut self, rows: usize, page: usize, last: Option<i64>) -> Option<RefillFrom> {
        match last {
            Some(last) if rows == page => self.cursor = last,
            _ if self.spills == self.spills_at_round_start => {
                self.cursor = i64::MIN;
                self.spilled = false;
                return None;
            }
            _ => self.cursor = i64::MIN,
        }
        Some(self.next_read())
    }

    pub fn end_refill(&mut self) {
        self.refilling = false;
    }
}

pub(crate) struct TaskQueue {
    tasks: Ordered,
    waiters: VecDeque<Waiter>,
    next_waiter_id: u64,
    pollers: HashMap<String, SystemTime>,
    pub spill: Spill,
    /// The last poll or task, for idle eviction.
    last_used: Instant,
}

impl TaskQueue {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            tasks: Ordered::default(),
            waiters: VecDeque::new(),
            next_waiter_id: 0,
            pollers: HashMap::new(),
            spill: Spill::default(),
            last_used: now,
        }
    }

    pub(crate) fn touch(&mut self, now: Instant) {
        self.last_used = now;
    }

    pub(crate) fn push(&mut self, task: DispatchTask) {
        self.tasks.push(task);
    }

    pub(crate) fn pop(&mut self) -> Option<DispatchTask> {
        self.tasks.pop()
    }

    pub(crate) fn task_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.tasks.iter().map(|task| task.task_id)
    }

    pub(crate) fn into_tasks(self) -> Vec<DispatchTask> {
        self.tasks.into_tasks()
    }

    pub(crate) fn has_poller(&self, window: Duration) -> bool {
        let now = SystemTime::now();
        self.has_waiter()
            || self
                .pollers
                .values()
                .any(|seen| now.duration_since(*seen).map_or(true, |age| age < window))
    }

    fn has_waiter(&self) -> bool {
        self.waiters.iter().any(|w| !w.sender.is_closed())
    }

    /// Nothing waits on the queue, in memory or in the backlog, and nobody used it for `idle`:
    /// forgetting it loses nothing.
    pub(crate) fn is_idle(&self, now: Instant, idle: Duration) -> bool {
        self.tasks.is_empty()
            && !self.spill.spilled
            && !self.spill.refilling
            && !self.has_waiter()
            && now.duration_since(self.last_used) >= idle
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
        // A poll the client cancelled leaves its waiter behind (only a deadline removes one):
        // without this a queue that never gets a task would keep every cancelled poll.
        self.waiters.retain(|w| !w.sender.is_closed());
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
        if self.pollers.len() > MAX_POLLERS {
            let oldest = self.pollers.iter().min_by_key(|(_, seen)| **seen);
            let oldest = oldest.map(|(identity, _)| identity.clone());
            oldest.map(|identity| self.pollers.remove(&identity));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_that_saw_no_spill_ends_the_spill() {
        let mut spill = Spill::default();
        spill.note();
        let from = spill.start_refill().unwrap();
        assert_eq!(from.after, i64::MIN);
        assert!(spill.start_refill().is_none(), "one refill at a time");
        let next = spill.read(10, 10, Some(42)).unwrap();
        assert_eq!(next.after, 42, "a full page reads on");
        assert_eq!(spill.read(3, 10, Some(50)), None);
        assert!(!spill.is_spilled());
    }

    #[test]
    fn a_spill_during_a_round_starts_another_from_the_lowest_id() {
        let mut spill = Spill::default();
        spill.note();
        spill.start_refill().unwrap();
        spill.read(10, 10, Some(42));
        // A task of a lower id may commit now, behind the cursor.
        spill.note();
        let next = spill.read(2, 10, Some(60)).unwrap();
        assert_eq!(next.after, i64::MIN);
        assert!(spill.is_spilled());
        assert_eq!(spill.read(0, 10, None), None);
        assert!(!spill.is_spilled());
    }
}
