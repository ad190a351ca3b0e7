//! Who owns what in a cluster of nodes on one database: each history shard and each task
//! queue goes to one live member by rendezvous (highest random weight) hashing. Every node
//! computes the same answer from the same member list; when a member joins or leaves, only
//! the queues it gains or loses move, and the shards it gains or loses and a few more (shards
//! are also kept balanced: see `assign_shards`).

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

/// The member that runs an internal worker job (a batch operation, a namespace deletion, a
/// schedule).
pub fn job_owner<'m>(
    members: &'m [Member],
    namespace_id: &str,
    job_id: &str,
) -> Option<&'m Member> {
    let key: [&[u8]; 3] = [b"job", namespace_id.as_bytes(), job_id.as_bytes()];
    owner(members, Role::Worker, &key)
}

/// The live members and the history shard each owns, computed once per change of members
/// because every routed call looks its shard's owner up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Members {
    list: Vec<Member>,
    /// Per shard, the index in `list` of its owner.
    shard_owners: Vec<Option<usize>>,
}

impl Members {
    pub fn new(list: Vec<Member>, shard_count: u32) -> Self {
        let shard_owners = assign_shards(&list, shard_count);
        Self { list, shard_owners }
    }

    pub fn list(&self) -> &[Member] {
        &self.list
    }

    /// The same shards over the members but `member_id`.
    pub fn without(&self, member_id: &str) -> Self {
        let rest = self.list.iter().filter(|m| m.id != member_id).cloned();
        Self::new(rest.collect(), self.shard_count())
    }

    fn shard_count(&self) -> u32 {
        u32::try_from(self.shard_owners.len()).unwrap_or(u32::MAX)
    }

    /// The member that owns history shard `shard`.
    pub fn shard_owner(&self, shard: u32) -> Option<&Member> {
        let index = (*self.shard_owners.get(usize::try_from(shard).ok()?)?)?;
        self.list.get(index)
    }

    /// The shards `member_id` owns.
    pub fn shards_of(&self, member_id: &str) -> Vec<u32> {
        (0..self.shard_count())
            .filter(|&s| self.shard_owner(s).is_some_and(|m| m.id == member_id))
            .collect()
    }
}

/// Rendezvous hashing alone spreads a few shards per member unevenly (16 over 3 members came
/// out 1, 7 and 8), so shards are dealt by weight under a quota: every (member, shard) pair
/// of a member playing history is ranked by its weight, and from the heaviest down a pair is
/// taken while its shard is free and its member holds fewer than its fair share (⌊n/m⌋, one
/// more for the first n mod m members to reach that). Each member ends with its fair share,
/// and a member joining or leaving moves little more than its own share.
fn assign_shards(members: &[Member], shard_count: u32) -> Vec<Option<usize>> {
    let mut owners = vec![None; usize::try_from(shard_count).unwrap_or(0)];
    let eligible: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].plays(Role::History))
        .collect();
    if eligible.is_empty() {
        return owners;
    }
    // Ties of weight go by member id, so every node deals alike whatever its list's order.
    let mut pairs: Vec<(u64, &str, usize, usize)> =
        Vec::with_capacity(owners.len() * eligible.len());
    for &member in &eligible {
        let id = members[member].id.as_str();
        for (slot, shard) in (0..shard_count).enumerate() {
            pairs.push((
                weight(id, &[b"shard", &shard.to_be_bytes()]),
                id,
                slot,
                member,
            ));
        }
    }
    pairs.sort_unstable_by(|a, b| b.cmp(a));
    let share = owners.len() / eligible.len();
    let mut larger_shares = owners.len() % eligible.len();
    let mut held = vec![0usize; members.len()];
    for (_, _, slot, member) in pairs {
        let full = held[member] > share || (held[member] == share && larger_shares == 0);
        if owners[slot].is_some() || full {
            continue;
        }
        if held[member] == share {
            larger_shares -= 1;
        }
        held[member] += 1;
        owners[slot] = Some(member);
    }
    owners
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
        let view = Members::new(members.to_vec(), shards);
        (0..shards)
            .map(|s| view.shard_owner(s).unwrap().id.clone())
            .collect()
    }

    fn moved(before: &[String], after: &[String]) -> usize {
        before.iter().zip(after).filter(|(b, a)| b != a).count()
    }

    #[test]
    fn every_node_computes_the_same_owner_whatever_the_member_order() {
        let forward = members(3);
        let mut backward = forward.clone();
        backward.reverse();
        assert_eq!(assignment(&forward, 512), assignment(&backward, 512));
    }

    #[test]
    fn every_member_holds_its_fair_share_of_shards() {
        for (nodes, shards) in [(3, 16), (3, 64), (10, 512), (4, 3), (1, 4)] {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for owner in assignment(&members(nodes), shards) {
                *counts.entry(owner).or_default() += 1;
            }
            let share = shards as usize / nodes;
            let larger = shards as usize % nodes;
            assert_eq!(counts.values().filter(|&&c| c == share + 1).count(), larger);
            assert_eq!(counts.values().sum::<usize>(), shards as usize);
            assert!(
                counts.values().all(|&c| c == share || c == share + 1),
                "{shards} shards over {nodes}: {counts:?}"
            );
        }
    }

    #[test]
    fn a_member_leaving_moves_little_more_than_its_own_shards() {
        let three = members(3);
        let before = assignment(&three, 1000);
        let two: Vec<Member> = three.iter().filter(|m| m.id != "node-2").cloned().collect();
        let after = assignment(&two, 1000);
        assert!(after.iter().all(|owner| owner != "node-2"));
        let its_own = before.iter().filter(|o| *o == "node-2").count();
        let others = moved(&before, &after) - its_own;
        assert!(
            others <= 50,
            "{others} of 1000 moved between members that stayed"
        );
    }

    #[test]
    fn a_member_joining_takes_its_share_and_little_else_moves() {
        let before = assignment(&members(2), 1000);
        let after = assignment(&members(3), 1000);
        let taken = after.iter().filter(|o| *o == "node-3").count();
        assert!((333..=334).contains(&taken), "the new member took {taken}");
        let others = moved(&before, &after) - taken;
        assert!(
            others <= 50,
            "{others} of 1000 moved between members that stayed"
        );
    }

    #[test]
    fn only_members_playing_the_role_own() {
        let mut nodes = members(2);
        nodes[0].roles = vec![Role::Frontend];
        let view = Members::new(nodes.clone(), 100);
        for shard in 0..100 {
            assert_eq!(view.shard_owner(shard).unwrap().id, "node-2");
        }
        assert!(
            Members::new(nodes[..1].to_vec(), 4)
                .shard_owner(0)
                .is_none()
        );
        assert!(view.shard_owner(100).is_none(), "no such shard");
        let owner = queue_owner(&nodes, "ns", "orders", crate::QueueKind::Workflow);
        assert_eq!(owner.unwrap().id, "node-2");
    }

    #[test]
    fn the_shards_of_a_member_are_those_it_owns() {
        let view = Members::new(members(3), 64);
        let mut all: Vec<u32> = view
            .list()
            .iter()
            .flat_map(|m| view.shards_of(&m.id))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..64).collect::<Vec<_>>());
        assert_eq!(
            view.without("node-1").shards_of("node-1"),
            Vec::<u32>::new()
        );
        assert_eq!(view.without("node-1").shards_of("node-2").len(), 32);
    }

    #[test]
    fn roles_parse_by_temporal_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
        assert_eq!(Role::parse("gateway"), None);
    }
}
