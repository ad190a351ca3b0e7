//! Mutable state of recently changed runs, kept in memory so a change does not read and decode
//! the run's row first. The database stays the truth: an entry is put back only after the
//! write that produced it committed, with the version it was written at, and every write is
//! still conditional on that version, so a wrong entry could only make a write fail, never
//! overwrite. A change takes its run's entry out (it holds the workflow's lock, so nobody else
//! changes the run meanwhile); a failed change leaves none behind, and the next one reads the
//! row.

use crate::state::MutableState;
use chronicle_common::ExecutionKey;
use std::collections::HashMap;
use std::sync::Mutex;

/// Runs kept; past this the least recently stored are dropped. A few KiB per running run.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(crate) struct StateCache {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    runs: HashMap<ExecutionKey, Entry>,
    /// Stamps entries so eviction can find the oldest.
    clock: u64,
}

struct Entry {
    version: i64,
    state: MutableState,
    stored_at: u64,
}

impl StateCache {
    /// Takes the run's state out for a change under the workflow's lock.
    pub fn take(&self, key: &ExecutionKey) -> Option<(MutableState, i64)> {
        let entry = self.lock().runs.remove(key)?;
        Some((entry.state, entry.version))
    }

    /// A copy of the run's state, for reading.
    pub fn peek(&self, key: &ExecutionKey) -> Option<(MutableState, i64)> {
        let entries = self.lock();
        let entry = entries.runs.get(key)?;
        Some((entry.state.clone(), entry.version))
    }

    /// Keeps the state a committed write stored at `version`.
    pub fn put(&self, key: ExecutionKey, state: MutableState, version: i64) {
        let mut entries = self.lock();
        entries.clock += 1;
        let stored_at = entries.clock;
        entries.runs.insert(
            key,
            Entry {
                version,
                state,
                stored_at,
            },
        );
        if entries.runs.len() > CAPACITY {
            entries.evict_oldest(CAPACITY / 8);
        }
    }

    /// Forgets every run of a namespace (its workflows were deleted).
    pub fn forget_namespace(&self, namespace_id: &str) {
        self.lock()
            .runs
            .retain(|key, _| key.namespace_id != namespace_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().expect("state cache lock")
    }
}

impl Entries {
    fn evict_oldest(&mut self, count: usize) {
        let mut stamps: Vec<u64> = self.runs.values().map(|e| e.stored_at).collect();
        let cut = count.min(stamps.len().saturating_sub(1));
        let (_, threshold, _) = stamps.select_nth_unstable(cut);
        let threshold = *threshold;
        self.runs.retain(|_, e| e.stored_at > threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> ExecutionKey {
        ExecutionKey::new("ns", format!("wf-{n}"), "run")
    }

    #[test]
    fn a_taken_entry_is_gone_until_put_back() {
        let cache = StateCache::default();
        cache.put(key(1), MutableState::default(), 3);
        assert_eq!(cache.peek(&key(1)).map(|(_, v)| v), Some(3));
        assert_eq!(cache.take(&key(1)).map(|(_, v)| v), Some(3));
        assert!(cache.take(&key(1)).is_none());
        assert!(cache.peek(&key(1)).is_none());
    }

    #[test]
    fn the_oldest_entries_go_first_when_full() {
        let cache = StateCache::default();
        for n in 0..=CAPACITY {
            cache.put(key(n), MutableState::default(), 1);
        }
        let kept = cache.lock().runs.len();
        assert!(
            (CAPACITY - CAPACITY / 8..=CAPACITY).contains(&kept),
            "{kept}"
        );
        assert!(cache.peek(&key(0)).is_none());
        assert!(cache.peek(&key(CAPACITY)).is_some());
    }

    #[test]
    fn a_deleted_namespace_is_forgotten() {
        let cache = StateCache::default();
        cache.put(key(1), MutableState::default(), 1);
        cache.put(
            ExecutionKey::new("other", "wf", "run"),
            MutableState::default(),
            1,
        );
        cache.forget_namespace("ns");
        assert!(cache.peek(&key(1)).is_none());
        assert!(
            cache
                .peek(&ExecutionKey::new("other", "wf", "run"))
                .is_some()
        );
    }
}
