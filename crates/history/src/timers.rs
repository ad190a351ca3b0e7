//! The durable timer queue of a shard: user timers, timeouts, retry backoffs. A fired timer
//! is checked against the run's current state, so a timer whose reason went away (the
//! activity completed, the attempt moved on) does nothing. Rows are deleted after their
//! handler committed: a crash in between fires the timer again, harmlessly.

use crate::shard::Shard;
use crate::{History, HistoryError};
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

pub(crate) async fn run(history: History, shard: Arc<Shard>) {
    let mut retry = RETRY_FIRST;
    loop {
        let wait = match fire_due(&history, &shard).await {
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
        }
    }
}

/// Fires every due timer; returns how long until the next one.
async fn fire_due(history: &History, shard: &Shard) -> crate::Result<Duration> {
    loop {
        let now = time::unix_nanos(time::now());
        let due = history.store().due_timers(shard.id, now, BATCH).await?;
        let full = due.len() == BATCH;
        let (fired, failure) = fire_batch(history, due).await;
        history.store().delete_timers(shard.id, &fired).await?;
        if let Some(e) = failure {
            return Err(e);
        }
        if !full {
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

/// Fires a batch of due timers: the timers of different workflows side by side (so their
/// commits can share an fsync), each workflow's in order. Returns the timers that are done
/// with (fired, or not worth keeping) and the storage error that stopped any of the rest.
async fn fire_batch(
    history: &History,
    due: Vec<TimerRow>,
) -> (Vec<TimerKey>, Option<HistoryError>) {
    let mut done = Vec::with_capacity(due.len());
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
        workflows.spawn(async move {
            let mut done = Vec::with_capacity(timers.len());
            for (key, task) in timers {
                if let Err(e) = fire(&history, &task).await {
                    return (done, Some(e));
                }
                done.push(key);
            }
            (done, None)
        });
    }
    let mut failure = None;
    while let Some(joined) = workflows.join_next().await {
        match joined {
            Ok((fired, error)) => {
                done.extend(fired);
                failure = failure.or(error);
            }
            Err(e) => tracing::error!("timer task panicked: {e}"),
        }
    }
    (done, failure)
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
        Ok(()) => Ok(()),
        // The run is gone or closed, or the timer's reason went away: nothing to do.
        Err(e) if e.is_stale() => Ok(()),
        // Storage trouble passes; the timer stays and fires again.
        Err(e @ HistoryError::Persistence(_)) => Err(e),
        // Anything else would fail the same way again: keeping it would block the queue.
        Err(e) => {
            tracing::error!(workflow_id = task.workflow_id, ?kind, "timer dropped: {e}");
            Ok(())
        }
    }
}
