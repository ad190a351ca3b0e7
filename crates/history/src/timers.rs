//! The durable timer queue of a shard: user timers, timeouts, retry backoffs. A fired timer
//! is checked against the run's current state, so a timer whose reason went away (the
//! activity completed, the attempt moved on) does nothing. Rows are deleted after their
//! handler committed: a crash in between fires the timer again, harmlessly.

use crate::shard::Shard;
use crate::{History, HistoryError};
use chronicle_common::supervisor::CancellationToken;
use chronicle_common::{ExecutionKey, time};
use chronicle_persistence::TimerRow;
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum TimerKind {
    User = 1,
    ActivityTimeout = 2,
    ActivityRetry = 3,
    WorkflowTaskTimeout = 4,
    WorkflowRunTimeout = 5,
    WorkflowExecutionTimeout = 6,
    /// The first workflow task of a run that starts after a delay (retry backoff).
    WorkflowBackoff = 7,
    /// Re-checks an activity's heartbeat deadline, which heartbeats keep pushing out.
    ActivityHeartbeat = 8,
    // Work on other workflows after a commit (the outbox), due at once.
    StartChild = 9,
    /// On a child's last run: tell the parent how the child's chain ended.
    RecordChildClosed = 10,
    ParentClosePolicy = 11,
    /// A signal or cancel request to another workflow.
    ExternalRequest = 12,
    /// A workflow task on a sticky queue nobody picked up in time.
    StickyScheduleToStart = 13,
}

impl TimerKind {
    fn from_i32(value: i32) -> Option<Self> {
        use TimerKind::*;
        [
            User,
            ActivityTimeout,
            ActivityRetry,
            WorkflowTaskTimeout,
            WorkflowRunTimeout,
            WorkflowExecutionTimeout,
            WorkflowBackoff,
            ActivityHeartbeat,
            StartChild,
            RecordChildClosed,
            ParentClosePolicy,
            ExternalRequest,
            StickyScheduleToStart,
        ]
        .into_iter()
        .find(|k| *k as i32 == value)
    }
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct TimerTask {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub namespace_id: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub run_id: String,
    /// The event the timer belongs to: timer started, activity or workflow task scheduled.
    #[prost(int64, tag = "5")]
    pub event_id: i64,
    #[prost(int32, tag = "6")]
    pub attempt: i32,
    /// Kind-specific: the activity timeout type.
    #[prost(int32, tag = "7")]
    pub detail: i32,
    /// How many times its handler failed in a way retrying at once would not cure.
    #[prost(int32, tag = "8")]
    pub parked: i32,
}

impl TimerTask {
    pub fn key(&self) -> ExecutionKey {
        ExecutionKey::new(&self.namespace_id, &self.workflow_id, &self.run_id)
    }
}

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
    match error {
        HistoryError::Persistence(e) if e.is_retryable() => Failed::Outage,
        _ => {
            let doublings = parked_before.clamp(0, 16) as u32;
            Failed::Park((PARK_FIRST * 2u32.pow(doublings)).min(PARK_MAX))
        }
    }
}

pub(crate) async fn run(history: History, shard: Arc<Shard>, stop: CancellationToken) {
    let mut retry = RETRY_FIRST;
    while !stop.is_cancelled() {
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
        let (settled, failure) = fire_batch(history, due).await;
        history
            .store()
            .delete_timers(shard.id, &settled.done)
            .await?;
        let parked = park(shard, settled.parked);
        history.store().move_timers(shard.id, &parked).await?;
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
    for (key, task) in timers {
        let Err(e) = fire(history, &task).await else {
            settled.done.push(key);
            continue;
        };
        match on_failure(&e, task.parked) {
            Failed::Outage => return (settled, Some(e)),
            Failed::Park(after) => {
                tracing::error!(
                    workflow_id = task.workflow_id,
                    run_id = task.run_id,
                    kind = task.kind,
                    fire_time = key.0,
                    task_id = key.1,
                    retry_in = ?after,
                    "timer parked: {e}"
                );
                settled.parked.push((key, task, after));
            }
        }
    }
    (settled, None)
}

async fn fire(history: &History, task: &TimerTask) -> crate::Result<()> {
    let Some(kind) = TimerKind::from_i32(task.kind) else {
        tracing::error!(kind = task.kind, "unknown timer kind dropped");
        return Ok(());
    };
    let result = match kind {
        TimerKind::User => history.fire_user_timer(task).await,
        TimerKind::ActivityTimeout => history.fire_activity_timeout(task).await,
        TimerKind::ActivityHeartbeat => history.fire_activity_heartbeat_check(task).await,
        TimerKind::ActivityRetry => history.fire_activity_retry(task).await,
        TimerKind::WorkflowTaskTimeout => history.fire_workflow_task_timeout(task).await,
        TimerKind::WorkflowRunTimeout | TimerKind::WorkflowExecutionTimeout => {
            history.fire_workflow_timeout(task).await
        }
        TimerKind::WorkflowBackoff => history.fire_workflow_backoff(task).await,
        TimerKind::StartChild => history.fire_start_child(task).await,
        TimerKind::RecordChildClosed => history.fire_record_child_closed(task).await,
        TimerKind::ParentClosePolicy => history.fire_parent_close_policy(task).await,
        TimerKind::ExternalRequest => history.fire_external_request(task).await,
        TimerKind::StickyScheduleToStart => history.fire_sticky_timeout(task).await,
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
    use chronicle_persistence::PersistenceError;

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
