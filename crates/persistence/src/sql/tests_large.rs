//! Conformance tests for buffered events and for writes larger than one statement may bind.

use super::*;

conformance!(store:
    buffered_events_are_written_read_and_deleted_with_the_fenced_write,
    a_write_of_40000_rows_per_table_lands_whole,
    a_moved_timer_fires_at_its_new_time,
);

/// The next write of `run-1` after version `version`.
fn next(range_id: i64, version: i64) -> ExecutionWrite {
    ExecutionWrite {
        expected_version: Some(version),
        new_version: version + 1,
        current: None,
        events: vec![],
        new_queue_tasks: vec![],
        new_timers: vec![],
        ..create(range_id)
    }
}

fn rows(seqs: &[i64]) -> Vec<(i64, Vec<u8>)> {
    seqs.iter()
        .map(|s| (*s, format!("b{s}").into_bytes()))
        .collect()
}

async fn buffered_events_are_written_read_and_deleted_with_the_fenced_write(s: SqlStore) {
    let range = s.acquire_shard(0).await.unwrap();
    let mut first = create(range);
    first.new_buffered = rows(&[1, 0]);
    s.write_executions(vec![first]).await.unwrap();
    assert_eq!(s.buffered_events("run-1").await.unwrap(), rows(&[0, 1]));

    let mut more = next(range, 1);
    more.new_buffered = rows(&[2]);
    s.write_executions(vec![more]).await.unwrap();
    assert_eq!(s.buffered_events("run-1").await.unwrap(), rows(&[0, 1, 2]));

    // A stale version or a stale lease writes nothing, deletes nothing.
    let mut stale = next(range, 1);
    stale.clear_buffered = true;
    stale.new_buffered = rows(&[3]);
    let conflict = s.write_executions(vec![stale.clone()]).await;
    assert!(
        matches!(conflict, Err(PersistenceError::Conflict(_))),
        "{conflict:?}"
    );
    let newer = s.acquire_shard(0).await.unwrap();
    stale.expected_version = Some(2);
    let lost = s.write_executions(vec![stale]).await;
    assert!(
        matches!(lost, Err(PersistenceError::ShardOwnershipLost { .. })),
        "{lost:?}"
    );
    assert_eq!(s.buffered_events("run-1").await.unwrap(), rows(&[0, 1, 2]));

    // Flushing deletes the old rows before the same write buffers new ones.
    let mut flush = next(newer, 2);
    flush.clear_buffered = true;
    flush.new_buffered = rows(&[0]);
    s.write_executions(vec![flush]).await.unwrap();
    assert_eq!(s.buffered_events("run-1").await.unwrap(), rows(&[0]));
    let mut clear = next(newer, 3);
    clear.clear_buffered = true;
    s.write_executions(vec![clear]).await.unwrap();
    assert!(s.buffered_events("run-1").await.unwrap().is_empty());
    assert!(s.buffered_events("run-2").await.unwrap().is_empty());
}

const LARGE: i64 = 40_000;

async fn a_write_of_40000_rows_per_table_lands_whole(s: SqlStore) {
    let range = s.acquire_shard(0).await.unwrap();
    let mut write = create(range);
    write.events = (1..=LARGE).map(|id| (id, vec![7; 64])).collect();
    write.new_timers = (0..LARGE)
        .map(|id| TimerRow {
            shard_id: 0,
            fire_time: 1_000 + id,
            task_id: id,
            data: vec![1; 16],
        })
        .collect();
    write.new_queue_tasks = (0..LARGE)
        .map(|id| QueueTaskRow {
            task_id: id,
            namespace_id: "ns".into(),
            task_queue: "q".into(),
            kind: 1,
            data: vec![2; 16],
        })
        .collect();
    write.new_buffered = (0..LARGE).map(|seq| (seq, vec![3; 16])).collect();
    s.write_executions(vec![write]).await.unwrap();

    let events = s
        .read_events("run-1", 1, LARGE + 1, LARGE as usize + 1)
        .await
        .unwrap();
    assert_eq!(events.len(), LARGE as usize);
    assert_eq!(events.last().unwrap().0, LARGE);
    let due = s.due_timers(0, i64::MAX, LARGE as usize + 1).await.unwrap();
    assert_eq!(due.len(), LARGE as usize);
    let backlog = s.queue_tasks(i64::MIN, LARGE as usize + 1).await.unwrap();
    assert_eq!(backlog.len(), LARGE as usize);
    let buffered = s.buffered_events("run-1").await.unwrap();
    assert!(buffered.iter().map(|b| b.0).eq(0..LARGE));

    // One failing row in the last statement sinks the whole write.
    let mut clash = next(range, 1);
    clash.events = (LARGE + 1..=2 * LARGE).map(|id| (id, vec![])).collect();
    clash.new_buffered = (LARGE..2 * LARGE)
        .chain([0])
        .map(|seq| (seq, vec![]))
        .collect();
    let failed = s.write_executions(vec![clash]).await;
    assert!(
        matches!(failed, Err(PersistenceError::Conflict(_))),
        "{failed:?}"
    );
    assert_eq!(
        s.buffered_events("run-1").await.unwrap().len(),
        LARGE as usize
    );
    assert!(
        s.read_events("run-1", LARGE + 1, i64::MAX, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.execution("ns", "wf", "run-1")
            .await
            .unwrap()
            .unwrap()
            .db_version,
        1
    );
}

async fn a_moved_timer_fires_at_its_new_time(s: SqlStore) {
    let range = s.acquire_shard(0).await.unwrap();
    s.write_executions(vec![create(range)]).await.unwrap();
    let later = TimerRow {
        shard_id: 0,
        fire_time: 9_000,
        task_id: 12,
        data: b"parked".to_vec(),
    };
    let lease = crate::Lease {
        shard_id: 0,
        range_id: range,
    };
    s.move_timers(lease, &[((500, 11), later.clone())])
        .await
        .unwrap();
    assert!(s.due_timers(0, 8_999, 10).await.unwrap().is_empty());
    assert_eq!(s.due_timers(0, 9_000, 10).await.unwrap(), vec![later]);
}
