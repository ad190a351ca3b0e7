//! Who owns what in a cluster of nodes on one database: each history shard and each task
//! queue goes to one live member by rendezvous (highest random weight) hashing. Every node
//! computes the same answer from the same member list; when a member joins or leaves, only
//! the shards and queues it gains or loses move.

use crate::ids::stable_hash;

/// The roles a node plays, as Temporal names its services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Frontend,
    History,
    Matching,
    Worker,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Frontend, Role::History, Role::Matching, Role::Worker];

    pub fn name(self) -> &'static str {
        match self {
            Role::Frontend => "frontend",
            Role::History => "history",
            Role::Matching => "matching",
            Role::Worker => "worker",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// A live member as ownership sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    /// Where other nodes reach its internal service (host:port).
    pub address: String,
    pub roles: Vec<Role>,
}

impl Member {
    pub fn plays(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The member of `role` that owns the item `key` names, if any member plays it.
pub fn owner<'m>(members: &'m [Member], role: Role, key: &[&[u8]]) -> Option<&'m Member> {
    members
        .iter()
        .filter(|m| m.plays(role))
        .max_by_key(|m| (weight(&m.id, key), &m.id))
}

/// The member that owns history shard `shard_id`.
pub fn shard_owner(members: &[Member], shard_id: u32) -> Option<&Member> {
    owner(members, Role::History, &[b"shard", &shard_id.to_be_bytes()])
}

/// The member that owns a task queue (sticky queues included: they are queues by name).
pub fn queue_owner<'m>(
    members: &'m [Member],
    namespace_id: &str,
    queue: &str,
    kind: crate::QueueKind,
) -> Option<&'m Member> {
    let kind = (kind as i32).to_be_bytes();
    let key: [&[u8]; 4] = [b"queue", namespace_id.as_bytes(), queue.as_bytes(), &kind];
    owner(members, Role::Matching, &key)
}

/// The member that runs an internal worker job (a batch operation, a namespace deletion).
pub fn job_owner<'m>(
    members: &'m [Member],
    namespace_id: &str,
    job_id: &str,
) -> Option<&'m Member> {
    let key: [&[u8]; 3] = [b"job", namespace_id.as_bytes(), job_id.as_bytes()];
    owner(members, Role::Worker, &key)
}

/// The shards of `shard_count` that `member_id` owns among `members`.
pub fn shards_of(members: &[Member], member_id: &str, shard_count: u32) -> Vec<u32> {
    (0..shard_count)
        .filter(|&s| shard_owner(members, s).is_some_and(|m| m.id == member_id))
        .collect()
}

/// A member's weight for an item: FNV-1a is stable but mixes similar inputs poorly, so its
/// output goes through a finalizer (MurmurHash3's fmix64) before weights are compared.
fn weight(member_id: &str, key: &[&[u8]]) -> u64 {
    let parts: Vec<&[u8]> = std::iter::once(member_id.as_bytes())
        .chain(key.iter().copied())
        .collect();
    let mut h = stable_hash(&parts);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn members(n: usize) -> Vec<Member> {
        (1..=n)
            .map(|i| Member {
                id: format!("node-{i}"),
                address: format!("127.0.0.1:{}", 7300 + i),
                roles: Role::ALL.to_vec(),
            })
            .collect()
    }

    fn assignment(members: &[Member], shards: u32) -> Vec<String> {
        (0..shards)
            .map(|s| shard_owner(members, s).unwrap().id.clone())
            .collect()
    }

    #[test]
    fn every_node_computes_the_same_owner_whatever_the_member_order() {
        let forward = members(3);
        let mut backward = forward.clone();
        backward.reverse();
        assert_eq!(assignment(&forward, 512), assignment(&backward, 512));
    }

    #[test]
    fn shards_spread_evenly_over_members() {
        let three = members(3);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for owner in assignment(&three, 3000) {
            *counts.entry(owner).or_default() += 1;
        }
        assert_eq!(counts.len(), 3);
        for (member, count) in counts {
            assert!(
                (900..=1100).contains(&count),
                "{member} owns {count} of 3000"
            );
        }
    }

    #[test]
    fn a_member_leaving_moves_only_its_own_shards() {
        let three = members(3);
        let before = assignment(&three, 1000);
        let two: Vec<Member> = three.iter().filter(|m| m.id != "node-2").cloned().collect();
        let after = assignment(&two, 1000);
        for (was, is) in before.iter().zip(&after) {
            if was != "node-2" {
                assert_eq!(was, is, "a shard of a member that stayed moved");
            }
        }
        assert!(after.iter().all(|owner| owner != "node-2"));
    }

    #[test]
    fn a_member_joining_takes_only_shards_it_now_owns() {
        let two = members(2);
        let three = members(3);
        let before = assignment(&two, 1000);
        let after = assignment(&three, 1000);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert!(
            after
                .iter()
                .zip(&before)
                .all(|(a, b)| a == b || a == "node-3")
        );
        assert!(
            (250..=420).contains(&moved),
            "{moved} of 1000 moved to the new member"
        );
    }

    #[test]
    fn only_members_playing_the_role_own() {
        let mut nodes = members(2);
        nodes[0].roles = vec![Role::Frontend];
        for shard in 0..100 {
            assert_eq!(shard_owner(&nodes, shard).unwrap().id, "node-2");
        }
        assert!(shard_owner(&nodes[..1], 0).is_none());
        let owner = queue_owner(&nodes, "ns", "orders", crate::QueueKind::Workflow);
        assert_eq!(owner.unwrap().id, "node-2");
    }

    #[test]
    fn the_shards_of_a_member_are_those_it_owns() {
        let three = members(3);
        let all: usize = three
            .iter()
            .map(|m| shards_of(&three, &m.id, 64).len())
            .sum();
        assert_eq!(all, 64);
    }

    #[test]
    fn roles_parse_by_temporal_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
        assert_eq!(Role::parse("gateway"), None);
    }
}
