//! Membership over a real store: nodes see each other join, leave and lapse.

use super::*;
use chronicle_common::cluster::Role;
use chronicle_persistence::{Backend, MemberRow, Schema, SqlStore};

async fn store() -> Arc<SqlStore> {
    let store = SqlStore::open(&Backend::SqliteMemory, Schema::Migrate)
        .await
        .expect("in-memory store");
    Arc::new(store)
}

fn config() -> ClusterConfig {
    ClusterConfig {
        heartbeat_interval_ms: 50,
        lease_ms: 1_000,
        ..ClusterConfig::default()
    }
}

fn member(id: &str) -> Member {
    Member {
        id: id.into(),
        address: format!("{id}.internal:7300"),
        roles: Role::ALL.to_vec(),
    }
}

fn ids(members: &[Member]) -> Vec<&str> {
    members.iter().map(|m| m.id.as_str()).collect()
}

/// Waits until `membership` sees exactly `wanted`.
async fn sees(membership: &Membership, wanted: &[&str]) {
    let mut changes = membership.subscribe();
    let wait = changes.wait_for(|live| ids(live.list()) == wanted);
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("never saw {wanted:?}, saw {:?}", ids(&membership.live())))
        .expect("membership still running");
}

#[tokio::test]
async fn joining_members_see_each_other_and_a_leaving_one_goes() {
    let store = store().await;
    let (a_tasks, b_tasks) = (Supervisor::new(), Supervisor::new());
    let a = Membership::join(store.clone(), member("a"), &config(), 4, &a_tasks)
        .await
        .unwrap();
    assert_eq!(ids(&a.live()), ["a"], "a node sees itself once joined");
    assert!(a.holds_lease());
    let b = Membership::join(store.clone(), member("b"), &config(), 4, &b_tasks)
        .await
        .unwrap();
    assert_eq!(ids(&b.live()), ["a", "b"]);
    sees(&a, &["a", "b"]).await;
    assert_eq!(a.live()[1], member("b"), "address and roles come through");

    b_tasks.shutdown(Duration::from_secs(5)).await;
    let rows = store.members().await.unwrap();
    assert_eq!(rows.len(), 1, "a node that stops removes its row");
    sees(&a, &["a"]).await;
    a_tasks.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_member_that_stops_renewing_lapses_from_the_view() {
    let store = store().await;
    let tasks = Supervisor::new();
    let now = time::unix_millis(time::now());
    // A node that died without leaving: its row stays until its lease runs out.
    let ghost = MemberRow {
        member_id: "ghost".into(),
        address: "ghost:7300".into(),
        roles: vec!["history".into()],
        started_at: now,
        heartbeat_at: now,
        expires_at: now + 300,
    };
    store.heartbeat(&ghost).await.unwrap();
    let a = Membership::join(store.clone(), member("a"), &config(), 4, &tasks)
        .await
        .unwrap();
    assert_eq!(ids(&a.live()), ["a", "ghost"]);
    sees(&a, &["a"]).await;
    tasks.shutdown(Duration::from_secs(5)).await;
}
