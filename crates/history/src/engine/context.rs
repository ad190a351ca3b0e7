//! What a change takes from the world besides the run's state: the time, fresh ids, and what
//! matching knew of sticky pollers when the change began. The service fills it in; engine
//! tests give fixed values, so a change is a function of its inputs.

use chronicle_common::config::Limits;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Fresh ids for a change: task ids (events, tasks, timers) and run and request ids.
pub(crate) trait Ids: Send + Sync {
    fn task_id(&self) -> i64;
    fn run_id(&self) -> String;
    fn request_id(&self) -> String;
}

#[derive(Clone)]
pub(crate) struct Context {
    pub now: SystemTime,
    ids: Arc<dyn Ids>,
    /// Sticky queues a worker polled lately. A workflow task for a sticky queue nobody polls
    /// goes to the normal queue at once, as Temporal's matching does.
    polled_sticky_queues: Vec<String>,
    /// The most a failing workflow task's timeout grows by, attempt after attempt.
    pub workflow_task_retry_max: Duration,
}

impl Context {
    pub fn new(now: SystemTime, ids: Arc<dyn Ids>) -> Self {
        Self {
            now,
            ids,
            polled_sticky_queues: Vec::new(),
            workflow_task_retry_max: Duration::from_secs(
                Limits::default().workflow_task_retry_max_interval_secs,
            ),
        }
    }

    pub fn with_workflow_task_retry_max(mut self, max: Duration) -> Self {
        self.workflow_task_retry_max = max;
        self
    }

    /// Records that `queue` has a live poller, as matching saw it before the change.
    pub fn note_sticky_poller(&mut self, queue: &str) {
        if !self.is_polled(queue) {
            self.polled_sticky_queues.push(queue.to_owned());
        }
    }

    pub fn is_polled(&self, sticky_queue: &str) -> bool {
        self.polled_sticky_queues.iter().any(|q| q == sticky_queue)
    }

    pub fn task_id(&self) -> i64 {
        self.ids.task_id()
    }

    pub fn run_id(&self) -> String {
        self.ids.run_id()
    }

    pub fn request_id(&self) -> String {
        self.ids.request_id()
    }
}
