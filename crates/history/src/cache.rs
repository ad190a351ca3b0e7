//! Mutable state of recently changed runs, kept in memory so a change does not read and decode
//! the run's row first. The database stays the truth: an entry is put back only after the
//! write that produced it committed, with the version it was written at, and every write is
//! still conditional on that version, so a wrong entry could only make a write fail, never
//! overwrite. A change takes its run's entry out (it holds the workflow's lock, so nobody else
//! changes the run meanwhile); a failed change leaves none behind, and the next one reads the
//! row.
//!
//! The cache holds at most a budget of bytes, counted as the states' encoded size (what their
//! payloads, memos and search attributes weigh): the least recently used entries go first, and
//! a state larger than the whole budget is not kept at all.

use crate::engine::state::MutableState;
use chronicle_common::ExecutionKey;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// What an entry costs beyond its encoded state: the key, the maps' slots, the decoded
/// structs' headers.
const ENTRY_OVERHEAD: u64 = 512;

pub(crate) struct StateCache {
    budget: u64,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    runs: HashMap<ExecutionKey, Entry>,
    /// Entries by last use, oldest first.
    by_use: BTreeMap<u64, ExecutionKey>,
    clock: u64,
    bytes: u64,
}

struct Entry {
    version: i64,
    state: MutableState,
    bytes: u64,
    used_at: u64,
}

impl StateCache {
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            inner: Mutex::default(),
        }
    }

    /// Takes the run's state out for a change under the workflow's lock.
    pub fn take(&self, key: &ExecutionKey) -> Option<(MutableState, i64)> {
        let entry = self.lock().remove(key);
        // Hits over all lookups is the cache's hit rate.
        let outcome = if entry.is_some() { "hit" } else { "miss" };
        metrics::counter!("chronicle_state_cache_lookups_total", "outcome" => outcome).increment(1);
        let entry = entry?;
        Some((entry.state, entry.version))
    }

    /// A copy of the run's state, for reading.
    pub fn peek(&self, key: &ExecutionKey) -> Option<(MutableState, i64)> {
        let mut entries = self.lock();
        let used_at = entries.tick();
        let entry = entries.runs.get_mut(key)?;
        let last = std::mem::replace(&mut entry.used_at, used_at);
        let found = (entry.state.clone(), entry.version);
        let key = entries.by_use.remove(&last).unwrap_or_else(|| key.clone());
        entries.by_use.insert(used_at, key);
        Some(found)
    }

    /// Keeps the state a committed write stored at `version`, if it fits. `encoded_len` is the
    /// size of the blob that write stored, so the state is not measured a second time.
    pub fn put(&self, key: ExecutionKey, state: MutableState, version: i64, encoded_len: usize) {
        let bytes = encoded_len as u64 + ENTRY_OVERHEAD;
        let mut entries = self.lock();
        entries.remove(&key);
        if bytes > self.budget {
            return;
        }
        while entries.bytes + bytes > self.budget && entries.evict_oldest() {}
        let used_at = entries.tick();
        entries.bytes += bytes;
        metrics::gauge!("chronicle_state_cache_bytes").set(entries.bytes as f64);
        entries.by_use.insert(used_at, key.clone());
        entries.runs.insert(
            key,
            Entry {
                version,
                state,
                bytes,
                used_at,
            },
        );
    }

    /// Forgets every run of a namespace (its workflows were deleted).
    pub fn forget_namespace(&self, namespace_id: &str) {
        self.forget_where(|key| key.namespace_id == namespace_id);
    }

    /// Drops every entry `gone` selects (the runs of a shard this node gave up).
    pub fn forget_where(&self, gone: impl Fn(&ExecutionKey) -> bool) {
        let mut entries = self.lock();
        let gone: Vec<ExecutionKey> = entries.runs.keys().filter(|k| gone(k)).cloned().collect();
        for key in &gone {
            entries.remove(key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entries {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn remove(&mut self, key: &ExecutionKey) -> Option<Entry> {
        let entry = self.runs.remove(key)?;
        self.by_use.remove(&entry.used_at);
        self.bytes -= entry.bytes;
        Some(entry)
    }

    /// Evicts the least recently used entry; false if there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some((_, key)) = self.by_use.pop_first() else {
            return false;
        };
        if let Some(entry) = self.runs.remove(&key) {
            self.bytes -= entry.bytes;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn key(n: usize) -> ExecutionKey {
        ExecutionKey::new("ns", format!("wf-{n}"), "run")
    }

    /// A state whose entry costs `ENTRY_OVERHEAD` plus about `payload` bytes.
    fn state(payload: usize) -> MutableState {
        MutableState {
            info: Some(crate::engine::state::ExecutionInfo {
                workflow_type: "x".repeat(payload),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn put(cache: &StateCache, key: ExecutionKey, state: MutableState, version: i64) {
        let encoded_len = state.encoded_len();
        cache.put(key, state, version, encoded_len);
    }

    fn cost(state: &MutableState) -> u64 {
        state.encoded_len() as u64 + ENTRY_OVERHEAD
    }

    #[test]
    fn a_taken_entry_is_gone_until_put_back() {
        let cache = StateCache::new(1 << 20);
        put(&cache, key(1), MutableState::default(), 3);
        assert_eq!(cache.peek(&key(1)).map(|(_, v)| v), Some(3));
        assert_eq!(cache.take(&key(1)).map(|(_, v)| v), Some(3));
        assert!(cache.take(&key(1)).is_none());
        assert!(cache.peek(&key(1)).is_none());
        assert_eq!(cache.lock().bytes, 0);
    }

    #[test]
    fn bytes_are_counted_and_the_least_recently_used_go_first() {
        let one = cost(&state(1000));
        let cache = StateCache::new(3 * one);
        for n in 0..3 {
            put(&cache, key(n), state(1000), 1);
        }
        assert_eq!(cache.lock().bytes, 3 * one);
        cache.peek(&key(0)); // now 1 is the least recently used
        put(&cache, key(3), state(1000), 1);
        assert!(cache.peek(&key(1)).is_none());
        for n in [0, 2, 3] {
            assert!(cache.peek(&key(n)).is_some(), "{n}");
        }
        assert_eq!(cache.lock().bytes, 3 * one);
    }

    #[test]
    fn a_big_state_evicts_as_many_as_it_needs() {
        let small = cost(&state(100));
        let cache = StateCache::new(10 * small);
        for n in 0..10 {
            put(&cache, key(n), state(100), 1);
        }
        put(&cache, key(99), state(5 * small as usize), 1);
        let entries = cache.lock();
        assert!(entries.bytes <= 10 * small);
        assert!(entries.runs.contains_key(&key(99)));
        assert!(!entries.runs.contains_key(&key(0)));
        assert!(entries.runs.contains_key(&key(9)));
    }

    #[test]
    fn a_state_larger_than_the_budget_is_not_kept() {
        let cache = StateCache::new(4096);
        put(&cache, key(1), state(100), 1);
        put(&cache, key(1), state(10_000), 2);
        assert!(cache.peek(&key(1)).is_none(), "nor its older entry");
        assert_eq!(cache.lock().bytes, 0);
    }

    #[test]
    fn replacing_an_entry_counts_it_once() {
        let cache = StateCache::new(1 << 20);
        put(&cache, key(1), state(100), 1);
        put(&cache, key(1), state(200), 2);
        assert_eq!(cache.lock().bytes, cost(&state(200)));
        assert_eq!(cache.lock().by_use.len(), 1);
    }

    #[test]
    fn a_deleted_namespace_is_forgotten() {
        let cache = StateCache::new(1 << 20);
        put(&cache, key(1), MutableState::default(), 1);
        let other = ExecutionKey::new("other", "wf", "run");
        put(&cache, other.clone(), MutableState::default(), 1);
        cache.forget_namespace("ns");
        assert!(cache.peek(&key(1)).is_none());
        assert!(cache.peek(&other).is_some());
        assert_eq!(cache.lock().bytes, cost(&MutableState::default()));
    }
}
