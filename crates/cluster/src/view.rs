//! Membership rows as members: pure, so every node reads the same rows the same way.

use chronicle_common::cluster::{Member, Role};
use chronicle_persistence::MemberRow;

/// The members whose lease has not run out at `now_ms`, in member id order. Roles a newer
/// version wrote and this one does not know are ignored.
pub fn live_members(rows: &[MemberRow], now_ms: i64) -> Vec<Member> {
    let mut live: Vec<Member> = rows
        .iter()
        .filter(|row| row.expires_at > now_ms)
        .map(|row| Member {
            id: row.member_id.clone(),
            address: row.address.clone(),
            roles: row.roles.iter().filter_map(|r| Role::parse(r)).collect(),
        })
        .collect();
    live.sort_by(|a, b| a.id.cmp(&b.id));
    live
}

/// The row that renews `member`'s lease at `now_ms` for `lease_ms`.
pub fn member_row(member: &Member, started_at: i64, now_ms: i64, lease_ms: i64) -> MemberRow {
    MemberRow {
        member_id: member.id.clone(),
        address: member.address.clone(),
        roles: member.roles.iter().map(|r| r.name().to_owned()).collect(),
        started_at,
        heartbeat_at: now_ms,
        expires_at: now_ms.saturating_add(lease_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, expires_at: i64, roles: &[&str]) -> MemberRow {
        MemberRow {
            member_id: id.into(),
            address: format!("{id}:7300"),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            started_at: 0,
            heartbeat_at: expires_at - 5_000,
            expires_at,
        }
    }

    #[test]
    fn a_member_is_live_until_its_lease_runs_out() {
        let rows = [
            row("b", 10_000, &["history"]),
            row("a", 20_000, &["history"]),
        ];
        let ids =
            |now| -> Vec<String> { live_members(&rows, now).into_iter().map(|m| m.id).collect() };
        assert_eq!(ids(9_999), ["a", "b"]);
        assert_eq!(ids(10_000), ["a"]);
        assert!(ids(20_000).is_empty());
    }

    #[test]
    fn unknown_roles_are_ignored_and_known_ones_kept() {
        let rows = [row("a", 10, &["frontend", "gateway", "matching"])];
        let live = live_members(&rows, 0);
        assert_eq!(live[0].roles, [Role::Frontend, Role::Matching]);
    }

    #[test]
    fn a_renewal_row_carries_the_lease_from_now() {
        let me = Member {
            id: "n1".into(),
            address: "127.0.0.1:7301".into(),
            roles: vec![Role::History, Role::Worker],
        };
        let row = member_row(&me, 5, 1_000, 4_000);
        assert_eq!(row.expires_at, 5_000);
        assert_eq!(row.roles, ["history", "worker"]);
        assert_eq!(live_members(&[row], 4_999)[0], me);
    }
}
