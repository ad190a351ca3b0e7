//! The durable timer queue of a shard: user timers, timeouts, retry backoffs. A fired timer
//! is checked against the run's current state, so a timer whose reason went away (the
//! activity completed, the attempt moved on) does nothing. Rows are deleted after their
//! handler committed: a crash in between fires the timer again, harmlessly.

use crate::engine::timer::{Timer, TimerTask};
use crate::shard::Shard;
use crate::{History, HistoryError};
use chronicle_common::supervisor::CancellationToken;
use chronicle_common::time;
use chronicle_persistence::TimerRow;
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long the queue sleeps at most, so a timer added by another node is noticed.
const MAX_IDLE: Duration = Duration::from_secs(10);
const BATCH: usize = 100;

/// Retry delays while the database is unavailable: soon at first, then less often.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(4);

/// How much later a timer whose handler failed for good fires again: it is kept (nothing
/// acknowledged is dropped, and a fixed node may yet fire it) but out of the shard's way.
const PARK_FIRST: Duration = Duration::from_secs(10);
const PARK_MAX: Duration = Duration::from_secs(3600);

/// What becomes of a timer whose handler failed.
#[derive(Debug, PartialEq, Eq)]
enum Failed {
    /// The database is out of reach (or the shard moved): the timer stays where it is and
    /// the whole queue backs off.
    Outage,
    /// Retrying now would fail the same way: the timer moves this much later, alone.
    Park(Duration),
}

fn on_failure(error: &HistoryError, parked_before: i32) -> Failed {
    if error.is_retryable() {
        return Failed::Outage;
    }
    let doublings = parked_before.clamp(0, 16) as u32;
    Failed::Park((PARK_FIRST * 2u32.pow(doublings)).min(PARK_MAX))
}

pub(crate) async fn run(history: History, shard: Arc<Shard>, stop: CancellationToken) {
    let mut retry = RETRY_FIRST;
    while !stop.is_cancelled() {
        if !shard.is_owned() {
            tracing::warn!(
                shard = shard.id,
                "timer queue stops: another node owns the shard"
            );
            return;
        }
        let wait = match fire_due(&history, &shard, &stop).await {
            Ok(wait) => {
                retry = RETRY_FIRST;
                wait
            }
            Err(e) => {
                tracing::warn!(shard = shard.id, retry_in = ?retry, "timer queue: {e}");
                let wait = retry;
                retry = (retry * 2).min(RETRY_MAX);
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shard.timer_added.notified() => {}
            () = stop.cancelled() => {}
        }
    }
}

/// Fires every due timer (or, once stopped, finishes the batch at hand); returns how long
/// until the next one.
async fn fire_due(
    history: &History,
    shard: &Shard,
    stop: &CancellationToken,
) -> crate::Result<Duration> {
    loop {
        let now = time::unix_nanos(time::now());
        let due = history.store().due_timers(shard.id, now, BATCH).await?;
        let full = due.len() == BATCH;
        for row in &due {
            let late = now.saturating_sub(row.fire_time) as f64 / 1e9;
            metrics::histogram!("chronicle_timer_lateness").record(late);
        }
        let (settled, failure) = fire_batch(history, due).await;
        let store = history.store();
        let deleted = store.delete_timers(shard.lease(), &settled.done).await;
        deleted.inspect_err(|e| history.note_write_failure(e))?;
        let parked = park(shard, settled.parked);
        let moved = store.move_timers(shard.lease(), &parked).await;
        moved.inspect_err(|e| history.note_write_failure(e))?;
        if let Some(e) = failure {
            return Err(e);
        }
        if !full || stop.is_cancelled() {
            break;
        }
    }
    let next = history.store().next_timer(shard.id).await?;
    let now = time::unix_nanos(time::now());
    Ok(next.map_or(MAX_IDLE, |at| {
        Duration::from_nanos((at - now).max(0) as u64).min(MAX_IDLE)
    }))
}

/// A due timer row's key: (fire time, task id).
type TimerKey = (i64, i64);

/// Timers of a batch that leave the hot path.
#[derive(Default)]
struct Settled {
    /// Fired, or not worth keeping: deleted.
    done: Vec<TimerKey>,
    /// Failed for good this time: moved later.
    parked: Vec<(TimerKey, TimerTask, Duration)>,
}

impl Settled {
    fn extend(&mut self, other: Settled) {
        self.done.extend(other.done);
        self.parked.extend(other.parked);
    }
}

/// The rows that replace parked timers, one park further along.
fn park(shard: &Shard, parked: Vec<(TimerKey, TimerTask, Duration)>) -> Vec<(TimerKey, TimerRow)> {
    let now = time::now();
    parked
        .into_iter()
        .map(|(key, mut task, after)| {
            task.parked += 1;
            let row = TimerRow {
                shard_id: shard.id,
                fire_time: time::unix_nanos(now + after),
                task_id: shard.next_task_id(),
                data: task.encode_to_vec(),
            };
            (key, row)
        })
        .collect()
}

/// Fires a batch of due timers: the timers of different workflows side by side (so their
/// commits can share an fsync), each workflow's in order. Returns the timers settled and the
/// outage that stopped any of the rest.
async fn fire_batch(history: &History, due: Vec<TimerRow>) -> (Settled, Option<HistoryError>) {
    let mut settled = Settled::default();
    let done = &mut settled.done;
    let mut by_workflow: HashMap<(String, String), Vec<(TimerKey, TimerTask)>> = HashMap::new();
    for row in due {
        let key = (row.fire_time, row.task_id);
        match TimerTask::decode(row.data.as_slice()) {
            Ok(task) => by_workflow
                .entry((task.namespace_id.clone(), task.workflow_id.clone()))
                .or_default()
                .push((key, task)),
            Err(e) => {
                tracing::error!(task_id = row.task_id, "undecodable timer task dropped: {e}");
                done.push(key);
            }
        }
    }
    let mut workflows = tokio::task::JoinSet::new();
    for timers in by_workflow.into_values() {
        let history = history.clone();
        workflows.spawn(async move { fire_in_order(&history, timers).await });
    }
    let mut failure = None;
    while let Some(joined) = workflows.join_next().await {
        match joined {
            Ok((fired, error)) => {
                settled.extend(fired);
                failure = failure.or(error);
            }
            Err(e) => tracing::error!("timer task panicked: {e}"),
        }
    }
    (settled, failure)
}

/// Fires one workflow's due timers in order, until an outage stops them.
async fn fire_in_order(
    history: &History,
    timers: Vec<(TimerKey, TimerTask)>,
) -> (Settled, Option<HistoryError>) {
    let mut settled = Settled::default();
    for group in user_timers_together(timers) {
        let result = match group.as_slice() {
            [(_, task)] => fire(history, task).await,
            many => fire_user_timers(history, many).await,
        };
        let Err(e) = result else {
            settled.done.extend(group.iter().map(|(key, _)| *key));
            continue;
        };
        match on_failure(&e, group[0].1.parked) {
            Failed::Outage => return (settled, Some(e)),
            Failed::Park(after) => {
                for (key, task) in group {
                    tracing::error!(
                        workflow_id = task.workflow_id,
                        run_id = task.run_id,
                        kind = task.kind(),
                        fire_time = key.0,
                        task_id = key.1,
                        retry_in = ?after,
                        "timer parked: {e}"
                    );
                    settled.parked.push((key, task, after));
                }
            }
        }
    }
    (settled, None)
}

/// Groups the timers in firing order: user timers of one run that follow each other fire
/// together, every other timer alone.
fn user_timers_together(timers: Vec<(TimerKey, TimerTask)>) -> Vec<Vec<(TimerKey, TimerTask)>> {
    let user_of = |task: &TimerTask| match task.timer() {
        Some(Timer::User { .. }) => Some(task.run_id.clone()),
        _ => None,
    };
    let mut groups: Vec<Vec<(TimerKey, TimerTask)>> = Vec::new();
    for timer in timers {
        let run = user_of(&timer.1);
        let joins = run.is_some()
            && groups
                .last()
                .and_then(|g| g.last())
                .is_some_and(|(_, last)| user_of(last) == run);
        match groups.last_mut() {
            Some(group) if joins => group.push(timer),
            _ => groups.push(vec![timer]),
        }
    }
    groups
}

async fn fire_user_timers(history: &History, group: &[(TimerKey, TimerTask)]) -> crate::Result<()> {
    let ids: Vec<i64> = group
        .iter()
        .filter_map(|(_, task)| match task.timer() {
            Some(Timer::User { started_event_id }) => Some(started_event_id),
            _ => None,
        })
        .collect();
    match history.fire_user_timers(&group[0].1.key(), &ids).await {
        Err(e) if e.is_stale() => Ok(()),
        other => other,
    }
}

async fn fire(history: &History, task: &TimerTask) -> crate::Result<()> {
    let Some(timer) = task.timer() else {
        tracing::error!(kind = task.kind(), "unknown timer kind dropped");
        return Ok(());
    };
    let key = task.key();
    let result = match timer {
        Timer::User { started_event_id } => {
            history.fire_user_timers(&key, &[started_event_id]).await
        }
        Timer::ActivityTimeout { attempt, timeout } => {
            history.fire_activity_timeout(&key, attempt, timeout).await
        }
        Timer::ActivityScheduleToClose { scheduled_event_id } => {
            history
                .fire_activity_schedule_to_close(&key, scheduled_event_id)
                .await
        }
        Timer::ActivityHeartbeat(attempt) => {
            history.fire_activity_heartbeat_check(&key, attempt).await
        }
        Timer::ActivityRetry(attempt) => history.fire_activity_retry(&key, attempt).await,
        Timer::WorkflowTaskTimeout(attempt) => {
            history.fire_workflow_task_timeout(&key, attempt).await
        }
        Timer::StickyScheduleToStart(attempt) => history.fire_sticky_timeout(&key, attempt).await,
        Timer::WorkflowRunTimeout => history.fire_workflow_timeout(&key, false).await,
        Timer::WorkflowExecutionTimeout => history.fire_workflow_timeout(&key, true).await,
        Timer::WorkflowBackoff => history.fire_workflow_backoff(&key).await,
        Timer::StartChild { initiated_event_id } => {
            history.fire_start_child(&key, initiated_event_id).await
        }
        Timer::RecordChildClosed => history.fire_record_child_closed(&key).await,
        Timer::ParentClosePolicy { initiated_event_id } => {
            history
                .fire_parent_close_policy(&key, initiated_event_id)
                .await
        }
        Timer::ExternalRequest { initiated_event_id } => {
            history
                .fire_external_request(&key, initiated_event_id)
                .await
        }
        Timer::DeleteRun => history.fire_delete_run(&key).await,
    };
    match result {
        // The run is gone or closed, or the timer's reason went away: nothing to do.
        Err(e) if e.is_stale() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_common::ExecutionKey;
    use chronicle_persistence::PersistenceError;

    #[test]
    fn a_runs_user_timers_due_together_fire_together_and_the_rest_alone() {
        let a = ExecutionKey::new("ns", "wf", "run-a");
        let b = ExecutionKey::new("ns", "wf", "run-b");
        let user = |key: &ExecutionKey, id| {
            TimerTask::new(
                key,
                Timer::User {
                    started_event_id: id,
                },
            )
        };
        let timers: Vec<(TimerKey, TimerTask)> = [
            user(&a, 5),
            user(&a, 6),
            TimerTask::new(&a, Timer::WorkflowRunTimeout),
            user(&a, 7),
            user(&b, 8),
        ]
        .into_iter()
        .zip(1..)
        .map(|(task, n)| ((n, n), task))
        .collect();
        let sizes: Vec<usize> = user_timers_together(timers).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 1, 1, 1]);
    }

    #[test]
    fn outages_hold_the_queue_and_refusals_park_the_timer() {
        let outages = [
            PersistenceError::Unavailable("down".into()),
            PersistenceError::CommitInDoubt("reset".into()),
            PersistenceError::ShardOwnershipLost {
                shard_id: 1,
                range_id: 2,
            },
        ];
        for e in outages {
            assert_eq!(on_failure(&e.into(), 0), Failed::Outage);
        }
        let refusals = [
            HistoryError::from(PersistenceError::Database("too many SQL variables".into())),
            HistoryError::from(PersistenceError::Corrupt("state".into())),
            HistoryError::InvalidArgument("bad".into()),
        ];
        for e in &refusals {
            assert_eq!(on_failure(e, 0), Failed::Park(PARK_FIRST));
        }
    }

    #[test]
    fn a_timer_parked_again_waits_longer_up_to_an_hour() {
        let refused = HistoryError::from(PersistenceError::Database("x".into()));
        assert_eq!(on_failure(&refused, 1), Failed::Park(PARK_FIRST * 2));
        assert_eq!(on_failure(&refused, 30), Failed::Park(PARK_MAX));
        assert_eq!(on_failure(&refused, i32::MAX), Failed::Park(PARK_MAX));
    }
}
