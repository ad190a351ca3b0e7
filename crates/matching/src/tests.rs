use super::*;
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
        query_id: String::new(),
    }
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
    let m = Matching::new();
    m.add(task(1));
    let mut grant = m.poll(key(), poller("a"), soon()).await.unwrap();
    assert_eq!(grant.take().task_id, 1);
    assert_eq!(m.backlog_len(&key()), 0);
}

#[tokio::test]
async fn a_waiting_poller_gets_the_task_without_queueing() {
    let m = Matching::new();
    let waiting = tokio::spawn({
        let m = m.clone();
        async move {
            m.poll(key(), poller("a"), soon())
                .await
                .map(|mut g| g.take())
        }
    });
    while m
        .queues
        .lock()
        .unwrap()
        .get(&key())
        .is_none_or(|q| q.waiting() == 0)
    {
        tokio::task::yield_now().await;
    }
    m.add(task(7));
    assert_eq!(waiting.await.unwrap().unwrap().task_id, 7);
    assert_eq!(m.backlog_len(&key()), 0);
}

#[tokio::test(start_paused = true)]
async fn a_poll_returns_empty_at_its_deadline() {
    let m = Matching::new();
    let started = Instant::now();
    let got = m
        .poll(key(), poller("a"), started + Duration::from_secs(3))
        .await;
    assert!(got.is_none());
    assert!(started.elapsed() >= Duration::from_secs(3));
    // the expired waiter must not swallow the next task
    m.add(task(2));
    assert_eq!(m.backlog_len(&key()), 1);
}

#[tokio::test]
async fn a_dropped_grant_returns_its_task() {
    let m = Matching::new();
    m.add(task(3));
    let grant = m.poll(key(), poller("a"), soon()).await.unwrap();
    drop(grant);
    assert_eq!(m.backlog_len(&key()), 1);
}

#[tokio::test]
async fn pollers_are_served_in_arrival_order() {
    let m = Matching::new();
    let mut polls = Vec::new();
    for name in ["first", "second"] {
        let m2 = m.clone();
        polls.push(tokio::spawn(async move {
            m2.poll(key(), poller(name), soon())
                .await
                .map(|mut g| g.take().task_id)
        }));
        while m
            .queues
            .lock()
            .unwrap()
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
