use super::*;
use chronicle_persistence::{Backend, ExecutionWrite, QueueTaskRow, Schema, SqlStore, Store};
use std::time::{Duration, SystemTime};

fn task(id: i64) -> DispatchTask {
    DispatchTask {
        task_id: id,
        namespace_id: "ns".into(),
        workflow_id: format!("wf-{id}"),
        run_id: "run".into(),
        scheduled_event_id: 2,
        attempt: 1,
        task_queue: "q".into(),
        kind: QueueKind::Workflow as i32,
        ..Default::default()
    }
}

async fn store() -> Arc<dyn Store> {
    let store = SqlStore::open(&Backend::SqliteMemory, Schema::Migrate)
        .await
        .expect("in-memory store");
    Arc::new(store)
}

async fn matching() -> Matching {
    Matching::new(store().await, &MemoryConfig::default())
}

/// Matching over a store, with room in memory for `room` tasks and queues idle at once.
async fn bounded(room: u64) -> Matching {
    bounded_over(store().await, room)
}

fn bounded_over(store: Arc<dyn Store>, room: u64) -> Matching {
    let memory = MemoryConfig {
        matching_tasks_bytes: room * queues::task_bytes(&task(1)),
        idle_queue_secs: 0,
        ..MemoryConfig::default()
    };
    Matching::new(store, &memory)
}

/// What a committed transaction does: the backlog row first, then the task to matching.
async fn commit(store: &dyn Store, m: &Matching, id: i64) {
    let range_id = store.acquire_shard(0).await.unwrap();
    let t = task(id);
    let write = ExecutionWrite {
        namespace_id: t.namespace_id.clone(),
        workflow_id: t.workflow_id.clone(),
        run_id: format!("run-{id}"),
        range_id,
        new_version: 1,
        new_queue_tasks: vec![QueueTaskRow {
            task_id: id,
            namespace_id: t.namespace_id.clone(),
            task_queue: t.task_queue.clone(),
            kind: t.kind,
            data: prost::Message::encode_to_vec(&t),
        }],
        ..Default::default()
    };
    store.write_executions(vec![write]).await.unwrap();
    m.add(t);
}

/// What starting a task does: claims it and deletes its row.
async fn start_next(store: &dyn Store, m: &Matching) -> i64 {
    let grant = m.poll(key(), poller("w"), soon()).await.expect("a task");
    let task = grant.take();
    let range_id = store.acquire_shard(0).await.unwrap();
    let lease = chronicle_persistence::Lease {
        shard_id: 0,
        range_id,
    };
    store.delete_queue_task(lease, task.task_id).await.unwrap();
    task.task_id
}

fn key() -> QueueKey {
    QueueKey::of(&task(0))
}

fn poller(name: &str) -> PollerRecord {
    PollerRecord {
        identity: name.into(),
        last_access_time: SystemTime::now(),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn a_queued_task_is_handed_to_the_next_poller() {
    let m = matching().await;
    m.add(task(1));
    let grant = m.poll(key(), poller("a"), soon()).await.unwrap();
    assert_eq!(grant.take().task_id, 1);
    assert_eq!(m.backlog_len(&key()), 0);
}

#[tokio::test]
async fn a_waiting_poller_gets_the_task_without_queueing() {
    let m = matching().await;
    let waiting = tokio::spawn({
        let m = m.clone();
        async move { m.poll(key(), poller("a"), soon()).await.map(|g| g.take()) }
    });
    while m.lock().get(&key()).is_none_or(|q| q.waiting() == 0) {
        tokio::task::yield_now().await;
    }
    m.add(task(7));
    assert_eq!(waiting.await.unwrap().unwrap().task_id, 7);
    assert_eq!(m.backlog_len(&key()), 0);
}

#[tokio::test]
async fn a_poll_returns_empty_at_its_deadline() {
    let m = matching().await;
    let started = Instant::now();
    let got = m
        .poll(key(), poller("a"), started + Duration::from_millis(300))
        .await;
    assert!(got.is_none());
    assert!(started.elapsed() >= Duration::from_millis(300));
    // the expired waiter must not swallow the next task
    m.add(task(2));
    assert_eq!(m.backlog_len(&key()), 1);
}

#[tokio::test]
async fn a_dropped_grant_returns_its_task() {
    let m = matching().await;
    m.add(task(3));
    let grant = m.poll(key(), poller("a"), soon()).await.unwrap();
    drop(grant);
    assert_eq!(m.backlog_len(&key()), 1);
}

#[tokio::test]
async fn pollers_are_served_in_arrival_order() {
    let m = matching().await;
    let mut polls = Vec::new();
    for name in ["first", "second"] {
        let m2 = m.clone();
        polls.push(tokio::spawn(async move {
            m2.poll(key(), poller(name), soon())
                .await
                .map(|g| g.take().task_id)
        }));
        while m
            .lock()
            .get(&key())
            .is_none_or(|q| q.waiting() < polls.len())
        {
            tokio::task::yield_now().await;
        }
    }
    m.add(task(1));
    m.add(task(2));
    let got: Vec<_> = futures_join(polls).await;
    assert_eq!(got, vec![Some(1), Some(2)]);
    let names: Vec<_> = m.pollers(&key()).into_iter().map(|p| p.identity).collect();
    assert_eq!(names.len(), 2);
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<Option<i64>>>) -> Vec<Option<i64>> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn idle_queues_are_forgotten_with_their_pollers() {
    let m = bounded(10).await;
    let short = Instant::now() + Duration::from_millis(20);
    assert!(m.poll(key(), poller("a"), short).await.is_none());
    assert_eq!(m.pollers(&key()).len(), 1);
    assert_eq!(m.evict_idle(), 1);
    assert!(m.pollers(&key()).is_empty());
    assert_eq!(m.lock().len(), 0);
}

#[tokio::test]
async fn queues_with_a_task_or_a_waiting_poller_are_kept() {
    let m = bounded(10).await;
    m.add(task(1));
    let other = QueueKey {
        name: "other".into(),
        ..key()
    };
    let waiting = tokio::spawn({
        let m = m.clone();
        let other = other.clone();
        async move { m.poll(other, poller("a"), soon()).await.is_some() }
    });
    while m.lock().get(&other).is_none_or(|q| q.waiting() == 0) {
        tokio::task::yield_now().await;
    }
    assert_eq!(m.evict_idle(), 0);
    assert_eq!(m.backlog_len(&key()), 1);
    waiting.abort();
}

#[tokio::test]
async fn poller_records_are_bounded_per_queue() {
    let m = matching().await;
    let mut queues = m.lock();
    let queue = queues.queue(&key());
    for n in 0..queue::MAX_POLLERS + 50 {
        queue.record_poller(poller(&format!("p-{n}")));
    }
    assert_eq!(queue.recent_pollers().len(), queue::MAX_POLLERS);
}

#[tokio::test]
async fn tasks_beyond_the_bytes_bound_come_back_from_the_backlog_in_order() {
    let store = store().await;
    let m = bounded_over(store.clone(), 3);
    for id in 1..=10 {
        commit(store.as_ref(), &m, id).await;
    }
    assert_eq!(m.backlog_len(&key()), 3, "the rest waits in the table");
    assert_eq!(m.lock().bytes(), 3 * queues::task_bytes(&task(1)));
    assert_eq!(start_next(store.as_ref(), &m).await, 1);
    // A task arriving while older ones wait in the table queues behind them.
    commit(store.as_ref(), &m, 11).await;
    let mut started = vec![1];
    for _ in 2..=11 {
        started.push(start_next(store.as_ref(), &m).await);
    }
    assert_eq!(started, (1..=11).collect::<Vec<_>>());
    assert_eq!(m.backlog_len(&key()), 0);
    assert!(!m.lock().get(&key()).unwrap().spill.is_spilled());
    assert_eq!(m.lock().bytes(), 0);
}

#[tokio::test]
async fn a_refill_skips_tasks_granted_but_not_yet_started() {
    let store = store().await;
    let m = bounded_over(store.clone(), 1);
    for id in 1..=3 {
        commit(store.as_ref(), &m, id).await;
    }
    let held = m.poll(key(), poller("a"), soon()).await.unwrap();
    assert_eq!(held.task().task_id, 1);
    // Task 1's row is still in the table (its start has not committed): not loaded again.
    assert_eq!(start_next(store.as_ref(), &m).await, 2);
    assert_eq!(start_next(store.as_ref(), &m).await, 3);
    assert_eq!(m.restore().await.unwrap(), 0);
    assert_eq!(m.backlog_len(&key()), 0);
    drop(held);
    assert_eq!(m.backlog_len(&key()), 1, "an unstarted grant comes back");
}

#[tokio::test]
async fn a_drained_queue_gives_its_bytes_back() {
    let m = bounded(10).await;
    m.add(task(1));
    m.add(task(2));
    assert_eq!(m.drain(&key()).len(), 2);
    assert_eq!(m.lock().bytes(), 0);
}

/// Waits until the poll of `identity` is registered (its record and its waiter are added
/// under one lock).
async fn registered(m: &Matching, identity: &str) {
    while !m.pollers(&key()).iter().any(|p| p.identity == identity) {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn cancelled_polls_leave_no_waiters_behind() {
    let m = matching().await;
    for i in 0..100 {
        let identity = format!("cancelled-{i}");
        let cancelled = tokio::spawn({
            let (m, identity) = (m.clone(), identity.clone());
            async move { m.poll(key(), poller(&identity), soon()).await.is_some() }
        });
        registered(&m, &identity).await;
        cancelled.abort();
        let _ = cancelled.await;
    }
    let live = tokio::spawn({
        let m = m.clone();
        async move {
            m.poll(key(), poller("live"), soon())
                .await
                .map(|g| g.take())
        }
    });
    registered(&m, "live").await;
    assert_eq!(m.lock().get(&key()).map(|q| q.waiting()), Some(1));
    m.add(task(9));
    assert_eq!(live.await.unwrap().unwrap().task_id, 9);
}

#[tokio::test]
async fn a_stopping_node_answers_waiting_and_new_polls_empty_at_once() {
    let m = matching().await;
    let far = Instant::now() + Duration::from_secs(60);
    let waiting = tokio::spawn({
        let m = m.clone();
        async move { m.poll(key(), poller("w"), far).await.map(|g| g.take()) }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    m.close_polls();
    let answered = tokio::time::timeout(Duration::from_secs(1), waiting).await;
    assert!(answered.expect("the poll ends at once").unwrap().is_none());
    let late = tokio::time::timeout(Duration::from_secs(1), m.poll(key(), poller("w"), far)).await;
    assert!(late.expect("no wait").is_none());
}

#[tokio::test]
async fn a_node_holds_only_the_queues_it_serves_and_lets_go_of_the_others() {
    let store = store().await;
    let m = Matching::new(store.clone(), &MemoryConfig::default());
    commit(store.as_ref(), &m, 1).await;
    let waiting = tokio::spawn({
        let m = m.clone();
        let other = QueueKey {
            name: "other".into(),
            ..key()
        };
        async move { m.poll(other, poller("a"), soon()).await.is_some() }
    });
    tokio::task::yield_now().await;
    // The queues move to another node: this one forgets them, its waiting poll answers
    // empty at once, and the task stays in the table for the new owner.
    m.serve_only(Arc::new(|_: &QueueKey| false));
    assert_eq!(m.restore().await.unwrap(), 0);
    assert_eq!(m.backlog_len(&key()), 0);
    assert!(!waiting.await.unwrap(), "the poll ended without a task");

    let owner = Matching::new(store.clone(), &MemoryConfig::default());
    owner.serve_only(Arc::new(|k: &QueueKey| k.name == "q"));
    assert_eq!(owner.restore().await.unwrap(), 1);
    assert_eq!(owner.backlog_len(&key()), 1);
}
