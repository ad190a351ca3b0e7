//! Wakes long polls on a run's history (GetWorkflowExecutionHistory with wait_new_event).

use chronicle_common::ExecutionKey;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use tokio::sync::watch;

/// What a waiter needs to know: how far the history got and whether it is complete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub next_event_id: i64,
    pub closed: bool,
}

#[derive(Default)]
pub(crate) struct Watchers {
    runs: Mutex<HashMap<ExecutionKey, watch::Sender<Progress>>>,
}

impl Watchers {
    pub fn subscribe(&self, key: &ExecutionKey, now: Progress) -> watch::Receiver<Progress> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = runs
            .entry(key.clone())
            .or_insert_with(|| watch::channel(now).0);
        sender.send_if_modified(|p| {
            let newer = now.next_event_id > p.next_event_id || (now.closed && !p.closed);
            if newer {
                *p = now;
            }
            newer
        });
        sender.subscribe()
    }

    pub fn publish(&self, key: &ExecutionKey, progress: Progress) {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = runs.get(key) {
            if sender.receiver_count() == 0 {
                runs.remove(key);
            } else {
                sender.send_replace(progress);
            }
        }
    }
}
