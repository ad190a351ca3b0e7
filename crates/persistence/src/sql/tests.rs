//! The storage conformance suite: one set of tests, run against every backend. PostgreSQL
//! and MySQL/MariaDB are reached at CHRONICLE_TEST_POSTGRES / CHRONICLE_TEST_MYSQL (defaults:
//! the local servers of the development machines); each test gets a database of its own.
//! Where a server is unreachable the test is skipped with a note, except in CI (`CI=true`),
//! where that is a failure.

use super::{Backend, Schema, SqlStore};
use crate::*;
use chronicle_common::query::Resolved;
use sqlx::{ConnectOptions, Connection, Executor};
use std::future::Future;
use std::str::FromStr;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL: &str = "mysql://root@127.0.0.1:3306/test";

/// A database of one test's own, dropped when the test passes.
struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn drop_database(self) {
        let force = if self.admin.starts_with("postgres") {
            " WITH (FORCE)"
        } else {
            ""
        };
        if let Ok(mut conn) = sqlx::any::AnyConnectOptions::from_str(&self.admin)
            .expect("url")
            .connect()
            .await
        {
            let _ = conn
                .execute(format!("DROP DATABASE {}{force}", self.name).as_str())
                .await;
        }
    }
}

/// A fresh database on the server at `env`'s URL (or `default`), or None when unreachable.
async fn fresh_database(env: &str, default: &str) -> Option<TestDatabase> {
    sqlx::any::install_default_drivers();
    let admin = std::env::var(env).unwrap_or_else(|_| default.to_owned());
    let options = match sqlx::any::AnyConnectOptions::from_str(&admin) {
        Ok(options) => options,
        Err(e) => panic!("{env}={admin} is not a database URL: {e}"),
    };
    let mut conn = match options.connect().await {
        Ok(conn) => conn,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{admin} unreachable in CI: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {admin} unreachable ({e})");
            return None;
        }
    };
    let name = format!("chronicle_t_{}", uuid::Uuid::new_v4().simple());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    let _ = conn.close().await;
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    Some(TestDatabase { admin, name, url })
}

async fn open(backend: Backend) -> SqlStore {
    SqlStore::open(&backend, Schema::Migrate)
        .await
        .expect("open store")
}

/// Runs `test` on a fresh database of the server at `env`'s URL (or `default`), if reachable.
async fn on_server<F: Future<Output = ()>>(
    env: &str,
    default: &str,
    backend: impl FnOnce(String) -> Backend,
    test: impl FnOnce(Backend) -> F,
) {
    if let Some(db) = fresh_database(env, default).await {
        test(backend(db.url.clone())).await;
        db.drop_database().await;
    }
}

async fn on_postgres<F: Future<Output = ()>>(test: impl FnOnce(Backend) -> F) {
    let backend = |url| Backend::Postgres {
        url,
        max_connections: 4,
    };
    on_server("CHRONICLE_TEST_POSTGRES", POSTGRES, backend, test).await;
}

async fn on_mysql<F: Future<Output = ()>>(test: impl FnOnce(Backend) -> F) {
    let backend = |url| Backend::MySql {
        url,
        max_connections: 4,
    };
    on_server("CHRONICLE_TEST_MYSQL", MYSQL, backend, test).await;
}

async fn on_sqlite_file<F: Future<Output = ()>>(test: impl FnOnce(Backend) -> F) {
    let dir = std::env::temp_dir().join(format!("chronicle-test-{}", uuid::Uuid::new_v4()));
    test(Backend::SqliteFile(dir.join("db.sqlite"))).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs each conformance test on every backend: `store` tests get a migrated store, `backend`
/// tests an empty database to open themselves.
macro_rules! conformance {
    (store: $($test:ident),* $(,)?) => {$(
        conformance!(@each $test, |backend| async move { super::$test(open(backend).await).await });
    )*};
    (backend: $($test:ident),* $(,)?) => {$(
        conformance!(@each $test, super::$test);
    )*};
    (@each $test:ident, $run:expr) => {
        mod $test {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                on_sqlite_file($run).await;
            }

            #[tokio::test]
            async fn postgres() {
                on_postgres($run).await;
            }

            #[tokio::test]
            async fn mysql() {
                on_mysql($run).await;
            }
        }
    };
}

conformance!(store:
    a_write_lands_whole_and_reads_back,
    events_append_across_writes_and_read_back_in_pages,
    concurrent_writes_land_and_a_conflicting_one_fails_alone,
    a_stale_shard_lease_cannot_write,
    shards_are_created_once_and_acquired_in_turn,
    a_stale_shard_lease_deletes_no_timer_and_no_backlog_row,
    a_stale_version_conflicts_and_changes_nothing,
    the_current_run_pointer_is_claimed_conditionally,
    namespaces_are_unique_by_name,
    visibility_lists_in_default_order_and_pages_without_repeats,
    visibility_filters_count_and_group_with_bound_values,
    timers_and_backlog_come_back_in_order,
    search_attributes_and_jobs_round_trip,
    a_job_is_written_only_under_its_latest_claim,
    a_deleted_namespace_leaves_nothing,
    a_deleted_run_leaves_nothing_and_only_under_its_lease,
    membership_rows_are_upserted_listed_and_forgotten,
);

conformance!(backend:
    a_schema_that_is_not_this_versions_is_refused,
);

#[path = "tests_large.rs"]
mod large;

fn create(range_id: i64) -> ExecutionWrite {
    ExecutionWrite {
        namespace_id: "ns".into(),
        workflow_id: "wf".into(),
        run_id: "run-1".into(),
        shard_id: 0,
        range_id,
        expected_version: None,
        new_version: 1,
        state: b"v1".to_vec(),
        current: Some(CurrentRunWrite::Claim {
            previous_run_id: None,
            row: CurrentRun {
                run_id: "run-1".into(),
                running: true,
                status: 1,
                start_request_id: "req".into(),
            },
        }),
        events: vec![(1, b"e1".to_vec()), (2, b"e2".to_vec())],
        new_queue_tasks: vec![QueueTaskRow {
            task_id: 10,
            namespace_id: "ns".into(),
            task_queue: "q".into(),
            kind: 1,
            data: b"t".to_vec(),
        }],
        done_queue_tasks: vec![],
        new_timers: vec![TimerRow {
            shard_id: 0,
            fire_time: 500,
            task_id: 11,
            data: b"timer".to_vec(),
        }],
        clear_buffered: false,
        new_buffered: vec![],
        visibility: None,
    }
}

async fn a_write_lands_whole_and_reads_back(s: SqlStore) {
    let range = s.acquire_shard(0).await.unwrap();
    s.write_executions(vec![create(range)]).await.unwrap();

    let row = s.execution("ns", "wf", "run-1").await.unwrap().unwrap();
    assert_eq!((row.db_version, row.state.as_slice()), (1, &b"v1"[..]));
    let current = s.current_run("ns", "wf").await.unwrap().unwrap();
    assert_eq!(current.run_id, "run-1");
    assert!(current.running);
    let events = s.read_events("run-1", 1, 100, 1).await.unwrap();
    assert_eq!(events, vec![(1, b"e1".to_vec())]);
    let events = s.read_events("run-1", 2, 100, 10).await.unwrap();
    assert_eq!(events, vec![(2, b"e2".to_vec())]);
    assert_eq!(s.queue_tasks(0, 10).await.unwrap().len(), 1);
    assert_eq!(s.next_timer(0).await.unwrap(), Some(500));
    assert!(s.due_timers(0, 499, 10).await.unwrap().is_empty());
    assert_eq!(s.due_timers(0, 500, 10).await.unwrap()[0].task_id, 11);
}

async fn events_append_across_writes_and_read_back_in_pages(s: SqlStore) {
    let range = s.acquire_shard(0).await.unwrap();
    s.write_executions(vec![create(range)]).await.unwrap();
    let append = |version: i64, ids: std::ops::Range<i64>| ExecutionWrite {
        expected_version: Some(version),
        new_version: version + 1,
        current: None,
        events: ids.map(|id| (id, format!("e{id}").into_bytes())).collect(),
        new_queue_tasks: vec![],
        new_timers: vec![],
        ..create(range)
    };
    s.write_executions(vec![append(1, 3..8)]).await.unwrap();
    s.write_executions(vec![append(2, 8..9)]).await.unwrap();

    let mut pages = Vec::new();
    let mut from = 1;
    loop {
        let page = s.read_events("run-1", from, i64::MAX, 3).await.unwrap();
        let Some(&(last, _)) = page.last() else { break };
        pages.push(page.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        from = last + 1;
    }
    assert_eq!(pages, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7, 8]]);
    let window = s.read_events("run-1", 4, 6, 100).await.unwrap();
    assert_eq!(window, vec![(4, b"e4".to_vec()), (5, b"e5".to_vec())]);

    // History is appended, never rewritten: an event id already taken fails the whole write.
    let err = s
        .write_executions(vec![append(3, 8..10)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PersistenceError::AlreadyExists(_) | PersistenceError::Conflict(_)
        ),
        "{err:?}"
    );
    assert_eq!(
        s.read_events("run-1", 8, 10, 10).await.unwrap(),
        vec![(8, b"e8".to_vec())]
    );
    let row = s.execution("ns", "wf", "run-1").await.unwrap().unwrap();
    assert_eq!(row.db_version, 3);
}

async fn concurrent_writes_land_and_a_conflicting_one_fails_alone(s: SqlStore) {
    let range = s.acquire_shard(0).await.unwrap();
    let start = |workflow: usize, run: &str| {
        let mut w = create(range);
        w.workflow_id = format!("wf-{workflow}");
        w.run_id = run.to_owned();
        if let Some(CurrentRunWrite::Claim { row, .. }) = &mut w.current {
            row.run_id = run.to_owned();
        }
        w.new_queue_tasks[0].task_id = 1000 + workflow as i64;
        w.new_timers.clear();
        w
    };
    let mut writes = tokio::task::JoinSet::new();
    for workflow in 0..20 {
        let (s, w) = (s.clone(), start(workflow, &format!("run-{workflow}")));
        writes.spawn(async move { (workflow, s.write_executions(vec![w]).await) });
    }
    // A second run claiming a workflow id that has one: it must fail, and only it.
    let (s2, w) = (s.clone(), start(7, "run-7-again"));
    writes.spawn(async move { (usize::MAX, s2.write_executions(vec![w]).await) });
    let mut failed = Vec::new();
    while let Some(joined) = writes.join_next().await {
        let (workflow, outcome) = joined.unwrap();
        if outcome.is_err() {
            failed.push(workflow);
        }
    }
    // Whichever of the two claims on wf-7 came first wins.
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0] == 7 || failed[0] == usize::MAX, "{failed:?}");
    assert_eq!(s.queue_tasks(0, 100).await.unwrap().len(), 20);
    let mut runs_of_7 = 0;
    for run in ["run-7", "run-7-again"] {
        runs_of_7 += usize::from(s.execution("ns", "wf-7", run).await.unwrap().is_some());
    }
    assert_eq!(runs_of_7, 1, "the losing write left its state row behind");
    for workflow in 0..20 {
        let current = s
            .current_run("ns", &format!("wf-{workflow}"))
            .await
            .unwrap();
        assert!(current.is_some(), "wf-{workflow}");
    }
}

async fn a_stale_shard_lease_cannot_write(s: SqlStore) {
    let old = s.acquire_shard(0).await.unwrap();
    let new = s.acquire_shard(0).await.unwrap();
    assert!(new > old);
    let err = s.write_executions(vec![create(old)]).await.unwrap_err();
    assert!(matches!(err, PersistenceError::ShardOwnershipLost { .. }));
    assert!(s.execution("ns", "wf", "run-1").await.unwrap().is_none());
    assert!(s.queue_tasks(0, 10).await.unwrap().is_empty());
}

async fn shards_are_created_once_and_acquired_in_turn(s: SqlStore) {
    assert_eq!(s.shard_count().await.unwrap(), 0);
    let (first, second) = tokio::join!(s.create_shards(4), s.create_shards(4));
    first.unwrap();
    second.unwrap();
    assert_eq!(s.shard_count().await.unwrap(), 4);
    let (a, b) = tokio::join!(s.acquire_shard(2), s.acquire_shard(2));
    let mut ranges = [a.unwrap(), b.unwrap()];
    ranges.sort();
    assert_eq!(ranges, [1, 2], "each acquisition gets a range of its own");
}

/// A node that lost a shard still holds the timers and backlog tasks it read: deleting them
/// would lose what the new owner must fire and dispatch.
async fn a_stale_shard_lease_deletes_no_timer_and_no_backlog_row(s: SqlStore) {
    let old = s.acquire_shard(0).await.unwrap();
    let mut write = create(old);
    let timer = TimerRow {
        shard_id: 0,
        fire_time: 100,
        task_id: 1,
        data: b"t".to_vec(),
    };
    write.new_timers = vec![timer.clone()];
    write.new_queue_tasks = vec![QueueTaskRow {
        task_id: 10,
        namespace_id: "ns".into(),
        task_queue: "q".into(),
        kind: 1,
        data: b"task".to_vec(),
    }];
    s.write_executions(vec![write]).await.unwrap();
    let new = s.acquire_shard(0).await.unwrap();
    let stale = Lease {
        shard_id: 0,
        range_id: old,
    };
    let lost = |r: Result<()>| matches!(r, Err(PersistenceError::ShardOwnershipLost { .. }));
    assert!(lost(s.delete_timers(stale, &[(100, 1)]).await));
    let parked = TimerRow {
        fire_time: 900,
        ..timer.clone()
    };
    assert!(lost(s.move_timers(stale, &[((100, 1), parked)]).await));
    assert!(lost(s.delete_queue_task(stale, 10).await));
    assert_eq!(s.due_timers(0, 1_000, 10).await.unwrap(), vec![timer]);
    assert_eq!(s.queue_tasks(i64::MIN, 10).await.unwrap().len(), 1);
    let owner = Lease {
        shard_id: 0,
        range_id: new,
    };
    s.delete_timers(owner, &[(100, 1)]).await.unwrap();
    s.delete_queue_task(owner, 10).await.unwrap();
    assert!(s.due_timers(0, 1_000, 10).await.unwrap().is_empty());
    assert!(s.queue_tasks(i64::MIN, 10).await.unwrap().is_empty());
}

async fn a_stale_version_conflicts_and_changes_nothing(s: SqlStore) {
    let range = s.acquire_shard(0).await.unwrap();
    s.write_executions(vec![create(range)]).await.unwrap();
    let update = |expected, event| ExecutionWrite {
        expected_version: Some(expected),
        new_version: expected + 1,
        state: b"v2".to_vec(),
        current: None,
        events: vec![(event, b"e".to_vec())],
        new_queue_tasks: vec![],
        done_queue_tasks: vec![10],
        new_timers: vec![],
        ..create(range)
    };
    s.write_executions(vec![update(1, 3)]).await.unwrap();
    let err = s.write_executions(vec![update(1, 4)]).await.unwrap_err();
    assert!(matches!(err, PersistenceError::Conflict(_)));
    assert!(s.read_events("run-1", 4, 5, 10).await.unwrap().is_empty());
    assert!(s.queue_tasks(0, 10).await.unwrap().is_empty());
}

async fn the_current_run_pointer_is_claimed_conditionally(s: SqlStore) {
    let range = s.acquire_shard(0).await.unwrap();
    s.write_executions(vec![create(range)]).await.unwrap();
    let second = |previous: Option<&str>| ExecutionWrite {
        run_id: "run-2".into(),
        current: Some(CurrentRunWrite::Claim {
            previous_run_id: previous.map(str::to_owned),
            row: CurrentRun {
                run_id: "run-2".into(),
                running: true,
                status: 1,
                start_request_id: "req-2".into(),
            },
        }),
        events: vec![],
        new_queue_tasks: vec![],
        new_timers: vec![],
        ..create(range)
    };
    let err = s.write_executions(vec![second(None)]).await.unwrap_err();
    assert!(matches!(err, PersistenceError::Conflict(_)), "{err:?}");
    let err = s
        .write_executions(vec![second(Some("other"))])
        .await
        .unwrap_err();
    assert!(matches!(err, PersistenceError::Conflict(_)), "{err:?}");
    s.write_executions(vec![second(Some("run-1"))])
        .await
        .unwrap();
    assert_eq!(
        s.current_run("ns", "wf").await.unwrap().unwrap().run_id,
        "run-2"
    );
}

async fn namespaces_are_unique_by_name(s: SqlStore) {
    let row = NamespaceRow {
        id: "id-1".into(),
        name: "default".into(),
        data: vec![1],
    };
    s.create_namespace(&row).await.unwrap();
    let dup = NamespaceRow {
        id: "id-2".into(),
        ..row.clone()
    };
    assert!(matches!(
        s.create_namespace(&dup).await,
        Err(PersistenceError::AlreadyExists(_))
    ));
    assert_eq!(
        s.namespace_by_name("default").await.unwrap(),
        Some(row.clone())
    );
    assert_eq!(s.namespace_by_id("id-1").await.unwrap(), Some(row));
    assert_eq!(s.list_namespaces().await.unwrap().len(), 1);
}

fn record(
    run: &str,
    workflow_id: &str,
    status: i32,
    close_time: Option<i64>,
    keyword: &str,
) -> ExecutionWrite {
    use chronicle_common::search_attributes::Value;
    ExecutionWrite {
        run_id: run.into(),
        workflow_id: workflow_id.into(),
        current: None,
        events: vec![],
        new_queue_tasks: vec![],
        new_timers: vec![],
        visibility: Some(crate::VisibilityRecord {
            namespace_id: "ns".into(),
            run_id: run.into(),
            workflow_id: workflow_id.into(),
            workflow_type: "T".into(),
            task_queue: "q".into(),
            status,
            start_time: 100,
            execution_time: 100,
            close_time,
            attributes: crate::AttributeRows::Set(vec![(
                "Color".into(),
                Value::Keyword(keyword.into()),
            )]),
            data: run.as_bytes().to_vec(),
            ..Default::default()
        }),
        ..create(1)
    }
}

fn query(text: &str) -> Resolved {
    let parsed = chronicle_common::query::parse(text).unwrap();
    let custom = |name: &str| {
        (name == "Color").then_some(chronicle_common::search_attributes::ValueType::Keyword)
    };
    chronicle_common::query::resolve(parsed, &custom).unwrap()
}

async fn visible(s: SqlStore) -> SqlStore {
    s.acquire_shard(0).await.unwrap();
    let writes = vec![
        record("r1", "a", 2, Some(10), "red"),
        record("r2", "b", 1, None, "blue"),
        record("r3", "c'd", 3, Some(20), "red"),
    ];
    s.write_executions(writes).await.unwrap();
    s
}

async fn visibility_lists_in_default_order_and_pages_without_repeats(s: SqlStore) {
    let s = visible(s).await;
    let all = s.list_visibility("ns", &query(""), 10, &[]).await.unwrap();
    // Open first, then the latest closed.
    assert_eq!(
        all.rows,
        vec![b"r2".to_vec(), b"r3".to_vec(), b"r1".to_vec()]
    );
    assert!(all.next_page_token.is_empty());
    let first = s.list_visibility("ns", &query(""), 2, &[]).await.unwrap();
    let rest = s
        .list_visibility("ns", &query(""), 2, &first.next_page_token)
        .await
        .unwrap();
    assert_eq!([first.rows, rest.rows].concat(), all.rows);
    assert!(
        s.list_visibility("ns", &query(""), 2, b"junk")
            .await
            .is_err()
    );
}

async fn visibility_filters_count_and_group_with_bound_values(s: SqlStore) {
    let s = visible(s).await;
    let red = s
        .list_visibility("ns", &query("Color = 'red' ORDER BY WorkflowId"), 10, &[])
        .await
        .unwrap();
    assert_eq!(red.rows, vec![b"r1".to_vec(), b"r3".to_vec()]);
    let quoted = s
        .list_visibility("ns", &query("WorkflowId = 'c''d'"), 10, &[])
        .await
        .unwrap();
    assert_eq!(quoted.rows, vec![b"r3".to_vec()]);
    let injected = s
        .count_visibility("ns", &query("WorkflowId = 'a'' OR 1=1 --'"))
        .await
        .unwrap();
    assert_eq!(injected.count, 0);
    let grouped = s
        .count_visibility("ns", &query("Color IS NOT NULL GROUP BY ExecutionStatus"))
        .await
        .unwrap();
    assert_eq!(
        (grouped.count, grouped.by_status),
        (3, vec![(1, 1), (2, 1), (3, 1)])
    );

    // A change that touches no search attribute keeps the rows; an upsert replaces them.
    let count = |text: &'static str| {
        let s = s.clone();
        async move { s.count_visibility("ns", &query(text)).await.unwrap().count }
    };
    let mut closed = record("r2", "b", 2, Some(30), "unused");
    (closed.expected_version, closed.new_version) = (Some(1), 2);
    closed.visibility.as_mut().unwrap().attributes = crate::AttributeRows::Keep;
    s.write_executions(vec![closed]).await.unwrap();
    assert_eq!(
        count("Color = 'blue' AND ExecutionStatus = 'Completed'").await,
        1
    );
    let mut upserted = record("r2", "b", 2, Some(30), "green");
    (upserted.expected_version, upserted.new_version) = (Some(2), 3);
    s.write_executions(vec![upserted]).await.unwrap();
    assert_eq!(count("Color = 'blue'").await, 0);
    assert_eq!(count("Color = 'green'").await, 1);
}

async fn timers_and_backlog_come_back_in_order(s: SqlStore) {
    let range = s.acquire_shard(0).await.unwrap();
    let mut write = create(range);
    write.new_timers = vec![
        TimerRow {
            shard_id: 0,
            fire_time: 300,
            task_id: 2,
            data: b"b".to_vec(),
        },
        TimerRow {
            shard_id: 0,
            fire_time: 100,
            task_id: 1,
            data: b"a".to_vec(),
        },
    ];
    s.write_executions(vec![write]).await.unwrap();
    let due: Vec<i64> = s
        .due_timers(0, 1_000, 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.fire_time)
        .collect();
    assert_eq!(due, vec![100, 300]);
    let lease = Lease {
        shard_id: 0,
        range_id: range,
    };
    s.delete_timers(lease, &[(100, 1)]).await.unwrap();
    assert_eq!(s.next_timer(0).await.unwrap(), Some(300));
    assert_eq!(s.next_timer(1).await.unwrap(), None);
    // A timer deleted already (fired twice after a crash) is no error.
    s.delete_timers(lease, &[(300, 2), (100, 1)]).await.unwrap();
    assert_eq!(s.next_timer(0).await.unwrap(), None);
    let backlog = s.queue_tasks(i64::MIN, 10).await.unwrap();
    assert_eq!(
        backlog.iter().map(|t| t.task_id).collect::<Vec<_>>(),
        vec![10]
    );
    let queue = |task_queue| QueueName {
        namespace_id: "ns",
        task_queue,
        kind: 1,
    };
    let of_q = s.queue_backlog(&queue("q"), i64::MIN, 10).await.unwrap();
    assert_eq!(of_q.iter().map(|t| t.task_id).collect::<Vec<_>>(), vec![10]);
    assert!(
        s.queue_backlog(&queue("q"), 10, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.queue_backlog(&queue("other"), i64::MIN, 10)
            .await
            .unwrap()
            .is_empty()
    );
    s.delete_queue_task(lease, 10).await.unwrap();
    assert!(s.queue_tasks(i64::MIN, 10).await.unwrap().is_empty());
    let events = s.read_events("run-1", 1, 3, 10).await.unwrap();
    assert_eq!(events.len(), 2);
}

async fn search_attributes_and_jobs_round_trip(s: SqlStore) {
    s.add_search_attributes("ns", &[("Color".into(), 2), ("Size".into(), 3)])
        .await
        .unwrap();
    s.add_search_attributes("ns", &[("Color".into(), 7)])
        .await
        .unwrap();
    let attrs = s.search_attributes("ns").await.unwrap();
    assert_eq!(attrs, vec![("Color".to_owned(), 2), ("Size".to_owned(), 3)]);
    s.remove_search_attributes("ns", &["Size".into()])
        .await
        .unwrap();
    assert_eq!(s.search_attributes("ns").await.unwrap().len(), 1);

    let job = JobRow {
        key: job_key(JobKind::Batch, "j1"),
        running: true,
        data: vec![1],
    };
    s.put_job(&job).await.unwrap();
    s.put_job(&JobRow {
        key: job_key(JobKind::Batch, "j2"),
        ..job.clone()
    })
    .await
    .unwrap();
    s.put_job(&JobRow {
        running: false,
        data: vec![2],
        ..job.clone()
    })
    .await
    .unwrap();
    // Another kind has its own ids.
    s.put_job(&JobRow {
        key: job_key(JobKind::Schedule, "j1"),
        ..job.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        s.job(&job.key).await.unwrap().map(|j| (j.running, j.data)),
        Some((false, vec![2]))
    );
    let mut running = s.running_jobs().await.unwrap();
    running.sort();
    assert_eq!(
        running,
        vec![
            job_key(JobKind::Batch, "j2"),
            job_key(JobKind::Schedule, "j1")
        ]
    );
    assert_eq!(s.jobs("ns", JobKind::Batch).await.unwrap().len(), 2);
    assert_eq!(s.jobs("ns", JobKind::Schedule).await.unwrap().len(), 1);
}

fn job_key(kind: JobKind, id: &str) -> JobKey {
    JobKey {
        namespace_id: "ns".into(),
        kind,
        job_id: id.into(),
    }
}

async fn a_job_is_written_only_under_its_latest_claim(s: SqlStore) {
    let job = JobRow {
        key: job_key(JobKind::Batch, "j1"),
        running: true,
        data: vec![1],
    };
    assert_eq!(s.claim_job(&job.key).await.unwrap(), None, "no such job");
    s.put_job(&job).await.unwrap();
    let first = s.claim_job(&job.key).await.unwrap().unwrap();
    assert_eq!(first.job, job);
    let progress = JobRow {
        data: vec![2],
        ..job.clone()
    };
    assert!(s.save_claimed_job(&progress, first.epoch).await.unwrap());
    // The same progress again still counts as written (MySQL counts matched rows).
    assert!(s.save_claimed_job(&progress, first.epoch).await.unwrap());

    let second = s.claim_job(&job.key).await.unwrap().unwrap();
    assert!(second.epoch > first.epoch);
    assert_eq!(
        second.job.data,
        vec![2],
        "a claim reads the progress before it"
    );
    let stale = JobRow {
        data: vec![3],
        ..job.clone()
    };
    assert!(!s.save_claimed_job(&stale, first.epoch).await.unwrap());
    assert!(!s.delete_claimed_job(&job.key, first.epoch).await.unwrap());
    assert_eq!(s.job(&job.key).await.unwrap().unwrap().data, vec![2]);

    // Replacing the job (a stop) ends the claim, and a stopped job cannot be claimed.
    let stopped = JobRow {
        running: false,
        data: vec![4],
        ..job.clone()
    };
    s.put_job(&stopped).await.unwrap();
    assert!(!s.save_claimed_job(&stale, second.epoch).await.unwrap());
    assert_eq!(s.job(&job.key).await.unwrap().unwrap(), stopped);
    assert_eq!(s.claim_job(&job.key).await.unwrap(), None);

    // A job is deleted only under its latest claim.
    s.put_job(&job).await.unwrap();
    let third = s.claim_job(&job.key).await.unwrap().unwrap();
    assert!(s.delete_claimed_job(&job.key, third.epoch).await.unwrap());
    assert_eq!(s.job(&job.key).await.unwrap(), None);
}

async fn a_deleted_namespace_leaves_nothing(s: SqlStore) {
    let s = visible(s).await;
    s.delete_namespace_executions("ns").await.unwrap();
    assert!(s.current_run("ns", "a").await.unwrap().is_none());
    assert!(s.read_events("run-1", 1, 100, 10).await.unwrap().is_empty());
    assert_eq!(s.count_visibility("ns", &query("")).await.unwrap().count, 0);
}

async fn a_deleted_run_leaves_nothing_and_only_under_its_lease(s: SqlStore) {
    let s = visible(s).await;
    let range = s.acquire_shard(0).await.unwrap();
    s.write_executions(vec![create(range)]).await.unwrap();
    let run = RunRef {
        namespace_id: "ns",
        workflow_id: "wf",
        run_id: "run-1",
    };
    let stale = Lease {
        shard_id: 0,
        range_id: range - 1,
    };
    assert!(s.delete_run(stale, &run).await.is_err());
    assert!(s.execution("ns", "wf", "run-1").await.unwrap().is_some());

    let lease = Lease {
        shard_id: 0,
        range_id: range,
    };
    let older = RunRef {
        run_id: "run-0",
        ..run
    };
    s.delete_run(lease, &older).await.unwrap();
    let current = s.current_run("ns", "wf").await.unwrap();
    assert_eq!(
        current.unwrap().run_id,
        "run-1",
        "another run's pointer stays"
    );

    s.delete_run(lease, &run).await.unwrap();
    assert!(s.execution("ns", "wf", "run-1").await.unwrap().is_none());
    assert!(s.current_run("ns", "wf").await.unwrap().is_none());
    assert!(s.read_events("run-1", 1, 100, 10).await.unwrap().is_empty());
    let other = RunRef {
        run_id: "r1",
        workflow_id: "a",
        ..run
    };
    s.delete_run(lease, &other).await.unwrap();
    let left = s.list_visibility("ns", &query(""), 10, &[]).await.unwrap();
    assert_eq!(left.rows, vec![b"r2".to_vec(), b"r3".to_vec()]);
    let red = s
        .count_visibility("ns", &query("Color = 'red'"))
        .await
        .unwrap();
    assert_eq!(red.count, 1, "the run's search attributes went with it");
}

async fn membership_rows_are_upserted_listed_and_forgotten(s: SqlStore) {
    assert!(s.members().await.unwrap().is_empty());
    let b = MemberRow {
        member_id: "node-b".into(),
        address: "10.0.0.2:7234".into(),
        roles: vec!["history".into(), "matching".into()],
        started_at: 1_000,
        heartbeat_at: 2_000,
        expires_at: 12_000,
    };
    let a = MemberRow {
        member_id: "node-a".into(),
        address: "10.0.0.1:7234".into(),
        roles: vec![],
        started_at: 1_500,
        heartbeat_at: 2_500,
        expires_at: 12_500,
    };
    s.heartbeat(&b).await.unwrap();
    s.heartbeat(&a).await.unwrap();
    assert_eq!(
        s.members().await.unwrap(),
        vec![a.clone(), b.clone()],
        "listed by member id, roles (none included) as written"
    );

    // A new incarnation of node-b at a new address, with one role: its one row is updated.
    let b = MemberRow {
        address: "10.0.0.3:7235".into(),
        roles: vec!["frontend".into()],
        started_at: 20_000,
        heartbeat_at: 21_000,
        expires_at: 31_000,
        ..b
    };
    s.heartbeat(&b).await.unwrap();
    assert_eq!(s.members().await.unwrap(), vec![a.clone(), b.clone()]);

    let c = MemberRow {
        member_id: "node-c".into(),
        address: "10.0.0.4:7234".into(),
        roles: vec!["worker".into()],
        started_at: 3_000,
        heartbeat_at: 3_000,
        expires_at: 13_000,
    };
    s.heartbeat(&c).await.unwrap();
    s.leave("node-c").await.unwrap();
    s.leave("node-c").await.unwrap();
    assert_eq!(s.members().await.unwrap(), vec![a.clone(), b.clone()]);

    s.heartbeat(&c).await.unwrap();
    // a (12_500) and c (13_000) expired before 20_000; b (31_000) and one at exactly the
    // cut-off are kept.
    let d = MemberRow {
        member_id: "node-d".into(),
        expires_at: 20_000,
        ..c.clone()
    };
    s.heartbeat(&d).await.unwrap();
    assert_eq!(s.forget_members_expired_before(20_000).await.unwrap(), 2);
    assert_eq!(s.members().await.unwrap(), vec![b, d]);
    assert_eq!(s.forget_members_expired_before(20_000).await.unwrap(), 0);
}

async fn a_schema_that_is_not_this_versions_is_refused(backend: Backend) {
    let unmigrated = SqlStore::open(&backend, Schema::Check)
        .await
        .err()
        .expect("an empty database is refused");
    assert!(
        unmigrated.to_string().contains("chronicle schema migrate"),
        "{unmigrated}"
    );
    // Each store is dropped before the next opens (an SQLite file admits one store at a
    // time); the schema is tampered with through a pool of the first one's.
    let store = SqlStore::open(&backend, Schema::Migrate).await.unwrap();
    let (dialect, pool) = (store.dialect, store.writer.clone());
    drop(store);
    drop(
        SqlStore::open(&backend, Schema::Migrate)
            .await
            .expect("migrating again changes nothing"),
    );
    drop(
        SqlStore::open(&backend, Schema::Check)
            .await
            .expect("an up-to-date schema passes the check"),
    );

    sqlx::query(&dialect.sql("UPDATE _sqlx_migrations SET checksum = ? WHERE version = 1"))
        .bind(vec![0u8])
        .execute(&pool)
        .await
        .unwrap();
    let changed = SqlStore::open(&backend, Schema::Check)
        .await
        .err()
        .expect("a schema that differs from this version's is refused");
    assert!(changed.to_string().contains("differs"), "{changed}");

    let future = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (9999, 'future', ?, ?, 0)";
    sqlx::query(&dialect.sql(future))
        .bind(true)
        .bind(vec![0u8])
        .execute(&pool)
        .await
        .unwrap();
    for schema in [Schema::Check, Schema::Migrate] {
        let refused = SqlStore::open(&backend, schema)
            .await
            .err()
            .expect("a newer schema is refused");
        assert!(refused.to_string().contains("newer chronicle"), "{refused}");
    }
    pool.close().await;
}

#[tokio::test]
async fn a_second_store_on_the_same_sqlite_file_is_refused_until_the_first_closes() {
    on_sqlite_file(|backend| async move {
        let first = SqlStore::open(&backend, Schema::Migrate).await.unwrap();
        let second = SqlStore::open(&backend, Schema::Migrate).await;
        let Err(PersistenceError::InUse(message)) = second else {
            panic!("a second node on one SQLite file must be refused");
        };
        assert!(
            message.contains("in use by another chronicle process"),
            "{message}"
        );
        drop(first);
        SqlStore::open(&backend, Schema::Migrate)
            .await
            .expect("the file is free once the first store is gone");
    })
    .await;
}
