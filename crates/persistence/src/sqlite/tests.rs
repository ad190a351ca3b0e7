use super::*;

async fn store() -> SqliteStore {
    SqliteStore::open(&SqliteOptions::Memory).await.unwrap()
}

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
        visibility: None,
    }
}

#[tokio::test]
async fn a_write_lands_whole_and_reads_back() {
    let s = store().await;
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

#[tokio::test]
async fn a_stale_shard_lease_cannot_write() {
    let s = store().await;
    let old = s.acquire_shard(0).await.unwrap();
    let new = s.acquire_shard(0).await.unwrap();
    assert!(new > old);
    let err = s.write_executions(vec![create(old)]).await.unwrap_err();
    assert!(matches!(err, PersistenceError::ShardOwnershipLost { .. }));
    assert!(s.execution("ns", "wf", "run-1").await.unwrap().is_none());
    assert!(s.queue_tasks(0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stale_version_conflicts_and_changes_nothing() {
    let s = store().await;
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

#[tokio::test]
async fn the_current_run_pointer_is_claimed_conditionally() {
    let s = store().await;
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

#[tokio::test]
async fn namespaces_are_unique_by_name() {
    let s = store().await;
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
            attributes: vec![("Color".into(), Value::Keyword(keyword.into()))],
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

async fn visible() -> SqliteStore {
    let s = store().await;
    s.acquire_shard(0).await.unwrap();
    let writes = vec![
        record("r1", "a", 2, Some(10), "red"),
        record("r2", "b", 1, None, "blue"),
        record("r3", "c'd", 3, Some(20), "red"),
    ];
    s.write_executions(writes).await.unwrap();
    s
}

#[tokio::test]
async fn visibility_lists_in_default_order_and_pages_without_repeats() {
    let s = visible().await;
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

#[tokio::test]
async fn visibility_filters_count_and_group_with_bound_values() {
    let s = visible().await;
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
}
