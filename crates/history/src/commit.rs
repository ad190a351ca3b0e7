//! Committing changes: an engine change's output becomes one store transaction (events,
//! state, backlog rows, timers, visibility), and only once that is durable do matching, the
//! timer queue, update callers, history watchers and the state cache hear of it.

use crate::engine::change::{Change, Output};
use crate::engine::state::MutableState;
use crate::engine::timer::TimerTask;
use crate::locks::WorkflowLock;
use crate::shard::Shard;
use crate::watch::Progress;
use crate::{History, Result};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_common::{DispatchTask, ExecutionKey, time};
use chronicle_persistence::{ExecutionWrite, QueueTaskRow, TimerRow};
use prost::Message;
use std::sync::Arc;

impl History {
    pub(crate) async fn commit(&self, change: Change) -> Result<()> {
        self.commit_all(vec![change]).await
    }

    /// Locks the workflow, loads the run (which must be running), applies `change` and
    /// commits it: the shape of every change to one run.
    pub(crate) async fn update<T>(
        &self,
        key: &ExecutionKey,
        edit: impl FnOnce(&mut Change) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock_run(key).await;
        self.apply(self.load(key).await?, edit).await
    }

    /// Serializes every operation on any run of the workflow `key` belongs to.
    pub(crate) async fn lock_run(&self, key: &ExecutionKey) -> WorkflowLock {
        self.inner
            .locks
            .lock(&key.namespace_id, &key.workflow_id)
            .await
    }

    /// Locks a workflow and resolves a run named as clients name it (an empty run id means
    /// the current run), under the lock so the current run cannot change meanwhile.
    pub(crate) async fn lock_named(
        &self,
        namespace_id: &str,
        execution: &WorkflowExecution,
    ) -> Result<(WorkflowLock, ExecutionKey)> {
        let lock = self
            .inner
            .locks
            .lock(namespace_id, &execution.workflow_id)
            .await;
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, &execution.run_id)
            .await?;
        Ok((lock, key))
    }

    /// `update` for a run named as clients name it: an empty run id means the current run,
    /// resolved under the lock so it cannot change meanwhile.
    pub(crate) async fn update_named<T>(
        &self,
        namespace_id: &str,
        execution: &WorkflowExecution,
        edit: impl FnOnce(&mut Change) -> Result<T>,
    ) -> Result<T> {
        let (_lock, key) = self.lock_named(namespace_id, execution).await?;
        self.apply(self.load(&key).await?, edit).await
    }

    /// `update` for a change that only appends or buffers events (`load_to_append`).
    pub(crate) async fn append_to<T>(
        &self,
        key: &ExecutionKey,
        edit: impl FnOnce(&mut Change) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock_run(key).await;
        self.apply(self.load_to_append(key).await?, edit).await
    }

    /// `update_named` for a change that only appends or buffers events (`load_to_append`).
    pub(crate) async fn append_named<T>(
        &self,
        namespace_id: &str,
        execution: &WorkflowExecution,
        edit: impl FnOnce(&mut Change) -> Result<T>,
    ) -> Result<T> {
        let (_lock, key) = self.lock_named(namespace_id, execution).await?;
        self.apply(self.load_to_append(&key).await?, edit).await
    }

    async fn apply<T>(
        &self,
        change: Change,
        edit: impl FnOnce(&mut Change) -> Result<T>,
    ) -> Result<T> {
        let mut change = crate::load::running(change)?;
        let out = edit(&mut change)?;
        self.commit(change).await?;
        Ok(out)
    }

    /// Commits several runs' changes in one transaction (a run and its successor).
    pub(crate) async fn commit_all(&self, changes: Vec<Change>) -> Result<()> {
        let mut writes = Vec::with_capacity(changes.len());
        let mut durable = Vec::with_capacity(changes.len());
        for output in changes.into_iter().filter_map(Change::finish) {
            let shard = self.shard_of(&output.key.namespace_id, &output.key.workflow_id)?;
            let (write, then) = into_write(output, shard);
            writes.push(write);
            durable.push(then);
        }
        if writes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store().write_executions(writes).await {
            if e.may_have_committed() {
                // If it landed, its tasks are in the table only.
                self.reload_backlog();
            }
            self.note_write_failure(&e);
            return Err(e.into());
        }
        for then in durable {
            self.carry_out(then);
        }
        Ok(())
    }

    /// A change is durable: the rest of the node learns of it.
    fn carry_out(&self, then: Durable) {
        for task in then.tasks {
            self.dispatch(task);
        }
        if then.timers_added {
            then.shard.timer_added.notify_one();
        }
        self.inner.updates.announce(&then.key, then.updates);
        if then.progress.closed {
            self.inner.updates.fail_all(&then.key);
        }
        self.inner
            .queries
            .settle(&then.key, then.task, |task| self.dispatch(task));
        self.inner.watch.publish(&then.key, then.progress);
        if let Some(name) = then.closed_as {
            let info = then.state.info();
            let namespace = info.namespace_name.clone();
            let workflow_type = info.workflow_type.clone();
            metrics::counter!(name, "namespace" => namespace, "workflow_type" => workflow_type)
                .increment(1);
        }
        self.inner
            .cache
            .put(then.key, then.state, then.version, then.encoded_len);
    }
}

/// What the rest of the node learns once a write is durable.
struct Durable {
    key: ExecutionKey,
    shard: Arc<Shard>,
    tasks: Vec<DispatchTask>,
    timers_added: bool,
    progress: Progress,
    updates: Vec<crate::engine::effects::UpdateEffect>,
    task: crate::engine::queries::TaskState,
    /// The workflow-outcome counter this change moves, if it closed the run.
    closed_as: Option<&'static str>,
    /// The state as written, its version and encoded size: the cache's entry once durable.
    state: MutableState,
    version: i64,
    encoded_len: usize,
}

/// The store write for a change, fenced by the shard's lease and the run's version.
fn into_write(output: Output, shard: Arc<Shard>) -> (ExecutionWrite, Durable) {
    let Output {
        key,
        expected_version,
        state,
        events,
        current,
        clear_buffered,
        new_buffered,
        effects,
    } = output;
    let version = expected_version.unwrap_or(0) + 1;
    let new_queue_tasks = effects
        .tasks
        .iter()
        .map(|t| QueueTaskRow {
            task_id: t.task_id,
            namespace_id: t.namespace_id.clone(),
            task_queue: t.task_queue.clone(),
            kind: t.kind,
            data: t.encode_to_vec(),
        })
        .collect();
    let new_timers = effects
        .timers
        .iter()
        .map(|(at, timer)| TimerRow {
            shard_id: shard.id,
            fire_time: time::unix_nanos(*at),
            task_id: shard.next_task_id(),
            data: TimerTask::new(&key, *timer).encode_to_vec(),
        })
        .collect();
    let progress = Progress {
        next_event_id: state.next_event_id,
        closed: !state.is_running(),
    };
    let write = ExecutionWrite {
        namespace_id: key.namespace_id.clone(),
        workflow_id: key.workflow_id.clone(),
        run_id: key.run_id.clone(),
        shard_id: shard.id,
        range_id: shard.range_id,
        expected_version,
        new_version: version,
        state: state.encode_to_vec(),
        current: Some(current),
        events: events
            .iter()
            .map(|e| (e.event_id, e.encode_to_vec()))
            .collect(),
        new_queue_tasks,
        done_queue_tasks: effects.finished_tasks,
        new_timers,
        clear_buffered,
        new_buffered: new_buffered
            .into_iter()
            .map(|(seq, e)| (seq, e.encode_to_vec()))
            .collect(),
        visibility: effects
            .visibility
            .map(|v| crate::visibility::record(&key, &state, version, v.search_attributes)),
    };
    let then = Durable {
        closed_as: events
            .iter()
            .rev()
            .find_map(|e| outcome_metric(e.event_type)),
        encoded_len: write.state.len(),
        task: crate::engine::queries::TaskState::of(&state),
        key,
        shard,
        tasks: effects.tasks,
        timers_added: !effects.timers.is_empty(),
        progress,
        updates: effects.updates,
        state,
        version,
    };
    (write, then)
}

/// Temporal's counter for a run closed by an event of `event_type`.
fn outcome_metric(event_type: i32) -> Option<&'static str> {
    use chronicle_api::enums::v1::EventType as E;
    Some(match E::try_from(event_type).ok()? {
        E::WorkflowExecutionCompleted => "workflow_success",
        E::WorkflowExecutionFailed => "workflow_failed",
        E::WorkflowExecutionTimedOut => "workflow_timeout",
        E::WorkflowExecutionTerminated => "workflow_terminate",
        E::WorkflowExecutionCanceled => "workflow_cancel",
        E::WorkflowExecutionContinuedAsNew => "workflow_continued_as_new",
        _ => return None,
    })
}
