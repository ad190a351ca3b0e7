//! The shards this node owns now. Ownership moves as cluster members come and go: a shard
//! is acquired (its range id bumped, fencing out the previous owner's writes) when the node
//! becomes its owner, and released — its timer queue stopped, its cached states dropped —
//! when it is not any more, or when a write finds the lease taken.

use crate::shard::Shard;
use std::sync::{Arc, PoisonError, RwLock};

pub(crate) struct Shards {
    count: u32,
    owned: RwLock<Vec<Option<Arc<Shard>>>>,
}

impl Shards {
    pub fn new(count: u32) -> Self {
        Self {
            count,
            owned: RwLock::new(vec![None; count as usize]),
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The shard, while this node owns it.
    pub fn get(&self, id: u32) -> Option<Arc<Shard>> {
        let owned = self.owned.read().unwrap_or_else(PoisonError::into_inner);
        owned
            .get(id as usize)
            .and_then(Option::clone)
            .filter(|s| s.is_owned())
    }

    pub fn install(&self, shard: Arc<Shard>) {
        let mut owned = self.owned.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = owned.get_mut(shard.id as usize) {
            *slot = Some(shard);
        }
    }

    /// Gives the shard up: from now on nothing of this node acts for it.
    pub fn remove(&self, id: u32) -> Option<Arc<Shard>> {
        let mut owned = self.owned.write().unwrap_or_else(PoisonError::into_inner);
        let shard = owned.get_mut(id as usize).and_then(Option::take)?;
        shard.mark_lost();
        Some(shard)
    }

    /// The shards owned now whose stored range id is no longer the one this node holds:
    /// another node acquired them since (nodes starting together each take every shard they
    /// see as theirs for a moment).
    pub fn stale(&self, stored: &[(u32, i64)]) -> Vec<u32> {
        let owned = self.owned.read().unwrap_or_else(PoisonError::into_inner);
        let held: Vec<(u32, i64)> = owned
            .iter()
            .flatten()
            .filter(|s| s.is_owned())
            .map(|s| (s.id, s.range_id))
            .collect();
        stale(&held, stored)
    }

    /// Ids of the shards owned now.
    pub fn owned_ids(&self) -> Vec<u32> {
        let owned = self.owned.read().unwrap_or_else(PoisonError::into_inner);
        owned
            .iter()
            .flatten()
            .filter(|s| s.is_owned())
            .map(|s| s.id)
            .collect()
    }
}

/// The held shards (id, range id) whose stored range id differs.
pub(crate) fn stale(held: &[(u32, i64)], stored: &[(u32, i64)]) -> Vec<u32> {
    let stored: std::collections::HashMap<u32, i64> = stored.iter().copied().collect();
    held.iter()
        .filter(|(id, range)| stored.get(id).is_some_and(|now| now != range))
        .map(|(id, _)| *id)
        .collect()
}

/// What a node must do to own exactly `assigned`, owning `owned` now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Handover {
    pub acquire: Vec<u32>,
    pub release: Vec<u32>,
}

pub(crate) fn handover(owned: &[u32], assigned: &[u32]) -> Handover {
    Handover {
        acquire: assigned
            .iter()
            .copied()
            .filter(|s| !owned.contains(s))
            .collect(),
        release: owned
            .iter()
            .copied()
            .filter(|s| !assigned.contains(s))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_acquired_since_by_another_node_is_stale() {
        let held = [(0, 1), (1, 4), (2, 7)];
        let stored = [(0, 1), (1, 5), (2, 7), (3, 9)];
        assert_eq!(stale(&held, &stored), vec![1]);
        assert!(stale(&held, &[]).is_empty(), "a row not read says nothing");
    }

    #[test]
    fn a_node_acquires_what_it_gained_and_releases_what_it_lost() {
        assert_eq!(
            handover(&[0, 1, 2], &[1, 2, 5]),
            Handover {
                acquire: vec![5],
                release: vec![0],
            }
        );
        assert_eq!(handover(&[3], &[3]), Handover::default());
    }

    #[test]
    fn a_released_or_lost_shard_is_not_owned() {
        let shards = Shards::new(4);
        shards.install(Arc::new(Shard::new(1, 7)));
        shards.install(Arc::new(Shard::new(2, 7)));
        assert_eq!(shards.owned_ids(), [1, 2]);
        assert!(shards.get(0).is_none());
        let released = shards.remove(1).unwrap();
        assert!(!released.is_owned(), "whoever still holds it sees it lost");
        shards.get(2).unwrap().mark_lost();
        assert!(shards.get(2).is_none());
        assert!(shards.owned_ids().is_empty());
    }
}
