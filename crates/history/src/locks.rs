//! One async lock per workflow id: every operation on any run of a workflow is serialized,
//! which also orders run creation against operations on the run it replaces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::OwnedMutexGuard;

type Key = (String, String);

#[derive(Default)]
pub(crate) struct LockTable {
    locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

pub(crate) struct WorkflowLock {
    _guard: OwnedMutexGuard<()>,
}

impl LockTable {
    pub async fn lock(&self, namespace_id: &str, workflow_id: &str) -> WorkflowLock {
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            // Entries nobody holds or waits on are dropped here, keeping the table small.
            if locks.len() > 1024 {
                locks.retain(|_, m| Arc::strong_count(m) > 1);
            }
            locks
                .entry((namespace_id.to_owned(), workflow_id.to_owned()))
                .or_default()
                .clone()
        };
        WorkflowLock {
            _guard: mutex.lock_owned().await,
        }
    }
}
