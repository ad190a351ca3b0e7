//! One state change of one run: the working copy of its mutable state plus everything the
//! change writes. `commit` persists it all in one store transaction, then tells matching, the
//! timer queue and history watchers about it.

use crate::buffer::Buffer;
use crate::engine::timer::{Timer, TimerTask};
use crate::events;
use crate::locks::WorkflowLock;
use crate::shard::Shard;
use crate::state::{MutableState, WorkflowTaskInfo};
use crate::watch::Progress;
use crate::{History, Result};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::enums::v1::WorkflowExecutionStatus;
use chronicle_api::history::v1::{
    HistoryEvent, WorkflowTaskScheduledEventAttributes, history_event::Attributes,
};
use chronicle_common::{DispatchTask, ExecutionKey, QueueKind, limits, time};
use chronicle_matching::Matching;
use chronicle_persistence::{
    CurrentRun, CurrentRunWrite, ExecutionWrite, PersistenceError, QueueTaskRow, TimerRow,
};
use prost::Message;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub(crate) struct Txn {
    pub key: ExecutionKey,
    pub state: MutableState,
    pub now: SystemTime,
    shard: Arc<Shard>,
    /// Read only: whether a sticky worker still polls decides where a workflow task goes.
    pub matching: Matching,
    expected_version: Option<i64>,
    events: Vec<HistoryEvent>,
    queue_tasks: Vec<DispatchTask>,
    done_queue_tasks: Vec<i64>,
    timers: Vec<(SystemTime, Timer)>,
    pub current: CurrentRunWrite,
    buffer: Buffer,
    /// Set when the change turned out to change nothing (a duplicate request): no write.
    unchanged: bool,
    /// Update progress to announce once the change is durable.
    pub update_effects: Vec<crate::updates::UpdateEffect>,
    /// The change alters what List and Count show (a new run always does).
    visibility_changed: bool,
    /// The change sets search attributes (a new run always does).
    search_attributes_changed: bool,
}

impl Txn {
    /// A brand-new run; its first write creates it.
    pub fn create(history: &History, key: ExecutionKey, state: MutableState) -> Self {
        let shard = history.shard_of(&key.namespace_id, &key.workflow_id);
        let buffer = Buffer::read(Vec::new(), Vec::new());
        Self::with(
            shard,
            history.inner.matching.clone(),
            key,
            state,
            (None, buffer),
        )
    }

    pub(crate) fn with(
        shard: Arc<Shard>,
        matching: Matching,
        key: ExecutionKey,
        state: MutableState,
        (expected_version, buffer): (Option<i64>, Buffer),
    ) -> Self {
        Self {
            key,
            state,
            now: time::now(),
            shard,
            matching,
            expected_version,
            events: Vec::new(),
            queue_tasks: Vec::new(),
            done_queue_tasks: Vec::new(),
            timers: Vec::new(),
            current: CurrentRunWrite::Unchanged,
            buffer,
            unchanged: false,
            update_effects: Vec::new(),
            visibility_changed: expected_version.is_none(),
            search_attributes_changed: expected_version.is_none(),
        }
    }

    /// The change alters what List and Count show: closing, search attributes, memo.
    pub fn touch_visibility(&mut self) {
        self.visibility_changed = true;
    }

    /// The change upserts search attributes, which List filters on.
    pub fn touch_search_attributes(&mut self) {
        self.visibility_changed = true;
        self.search_attributes_changed = true;
    }

    /// This change is a repeat of one already applied: nothing is written.
    pub fn nothing_to_write(&mut self) {
        self.unchanged = true;
    }

    pub fn info(&self) -> &crate::state::ExecutionInfo {
        self.state.info()
    }

    pub fn is_running(&self) -> bool {
        self.state.is_running()
    }

    /// Appends an event now, assigning it the next id.
    pub fn append(&mut self, attributes: impl Into<Attributes>) -> i64 {
        let mut event = events::event(attributes, self.now);
        let id = self.state.next_event_id;
        event.event_id = id;
        event.task_id = self.shard.next_task_id();
        self.state.next_event_id += 1;
        self.state.history_size_bytes += event.encoded_len() as i64;
        self.events.push(event);
        id
    }

    /// Writes events another run already numbered (reset copies a history prefix).
    pub fn copy_events(&mut self, events: Vec<HistoryEvent>) {
        self.events.extend(events);
    }

    /// Appends an event caused from outside the workflow (signal, activity result, timer).
    pub fn append_external(&mut self, attributes: impl Into<Attributes>) {
        self.append_external_all([attributes.into()]);
    }

    /// Appends events caused from outside the workflow, adjacent to each other. While a
    /// workflow task runs they wait in the buffer; a transient workflow task that is scheduled
    /// but not started becomes an ordinary one behind them.
    pub fn append_external_all(&mut self, batch: impl IntoIterator<Item = Attributes>) {
        if self.state.wft_in_flight() {
            for attributes in batch {
                self.buffer.push(events::event(attributes, self.now));
                self.state.buffered_count += 1;
            }
            return;
        }
        for attributes in batch {
            self.append(attributes);
        }
        if self
            .state
            .workflow_task
            .as_ref()
            .is_some_and(WorkflowTaskInfo::is_transient)
        {
            self.reschedule_as_new_workflow_task();
        }
    }

    /// A transient workflow task's scheduled event id is the next event id; once an event
    /// takes that id, the task is replaced by an ordinary one that is written to history.
    pub fn reschedule_as_new_workflow_task(&mut self) {
        if let Some(old) = self.state.workflow_task.take() {
            self.finish_dispatch(old.task_id);
        }
        self.schedule_workflow_task(1);
    }

    /// Writes out buffered events; returns how many there were. Events that name an event
    /// buffered with them (an activity result naming its started event) get the real id here.
    pub fn flush_buffered(&mut self) -> usize {
        let Some(buffered) = self.buffer.take_all() else {
            // A change that ends a workflow task loads with `load`, which reads the buffer.
            tracing::error!(key = %self.key, "buffered events not read: they stay buffered");
            return 0;
        };
        self.state.buffered_count = 0;
        let count = buffered.len();
        let mut started_ids = events::StartedIds::default();
        for event in buffered {
            let Some(mut attributes) = event.attributes else {
                continue;
            };
            started_ids.wire(&mut attributes);
            let id = self.append(attributes);
            let Some(last) = self.events.last_mut() else {
                continue;
            };
            last.event_time = event.event_time;
            if let Some(initiated) = started_ids.record(last, id)
                && let Some(child) = self.state.children.get_mut(&initiated)
            {
                child.started_event_id = id;
            }
        }
        count
    }

    /// The buffered events this change knows of, in arrival order.
    pub fn buffered(&self) -> impl Iterator<Item = &HistoryEvent> {
        self.buffer.events()
    }

    /// Removes the first buffered event `matches` accepts (the workflow never saw it).
    pub fn take_buffered(
        &mut self,
        matches: impl Fn(&HistoryEvent) -> bool,
    ) -> Option<HistoryEvent> {
        let taken = self.buffer.remove_first(matches)?;
        self.state.buffered_count -= 1;
        Some(taken)
    }

    /// Schedules a workflow task unless one is pending, the run is closed, or the run is still
    /// in its start delay / retry backoff (the backoff timer schedules the first task).
    pub fn schedule_workflow_task_if_needed(&mut self) {
        let in_backoff = self
            .info()
            .execution_time
            .as_ref()
            .is_some_and(|t| time::from_timestamp(t) > self.now);
        if self.is_running() && self.state.workflow_task.is_none() && !in_backoff {
            self.schedule_workflow_task(1);
        }
    }

    pub fn schedule_workflow_task(&mut self, attempt: i32) {
        let info = self.info().clone();
        let timeout = info
            .workflow_task_timeout
            .unwrap_or_else(|| time::duration(limits::DEFAULT_WORKFLOW_TASK_TIMEOUT));
        let queue = self.next_workflow_task_queue();
        let target = self.dispatch_queue(queue.clone());
        let mut task = WorkflowTaskInfo {
            attempt,
            task_queue: target.name.clone(),
            scheduled_time: Some(time::timestamp(self.now)),
            timeout: Some(timeout),
            ..Default::default()
        };
        task.scheduled_event_id = if task.is_transient() {
            self.state.next_event_id
        } else {
            self.append(WorkflowTaskScheduledEventAttributes {
                task_queue: Some(queue.clone()),
                start_to_close_timeout: Some(timeout),
                attempt,
            })
        };
        task.task_id = self.dispatch(
            QueueKind::Workflow,
            &target.name,
            task.scheduled_event_id,
            attempt,
        );
        self.arm_sticky_timeout(&target, task.scheduled_event_id, attempt);
        self.state.workflow_task = Some(task);
    }

    /// Puts a task on a task queue (durably, with this transaction); returns its id.
    pub fn dispatch(
        &mut self,
        kind: QueueKind,
        task_queue: &str,
        scheduled_event_id: i64,
        attempt: i32,
    ) -> i64 {
        let task_id = self.shard.next_task_id();
        self.queue_tasks.push(DispatchTask {
            task_id,
            namespace_id: self.key.namespace_id.clone(),
            workflow_id: self.key.workflow_id.clone(),
            run_id: self.key.run_id.clone(),
            scheduled_event_id,
            attempt,
            task_queue: task_queue.to_owned(),
            kind: kind as i32,
            query_id: String::new(),
        });
        task_id
    }

    /// The task's dispatch is over (it started, or will never start): dropped from this
    /// change if dispatched in it, its backlog row deleted otherwise (matching drops its copy
    /// as stale when a poller gets it).
    pub fn finish_dispatch(&mut self, task_id: i64) {
        let before = self.queue_tasks.len();
        self.queue_tasks.retain(|t| t.task_id != task_id);
        if self.queue_tasks.len() == before && task_id != 0 {
            self.done_queue_tasks.push(task_id);
        }
    }

    pub fn add_timer(&mut self, after: Duration, timer: Timer) {
        self.add_timer_at(time::after(self.now, after), timer);
    }

    pub fn add_timer_at(&mut self, at: SystemTime, timer: Timer) {
        self.timers.push((at, timer));
    }

    /// Marks the run closed by the event just appended and points the workflow id's current
    /// row at the closed status.
    pub fn close(&mut self, status: WorkflowExecutionStatus) {
        let close_event_id = self.state.next_event_id - 1;
        let now = self.now;
        let info = self.state.info_mut();
        info.status = status as i32;
        info.close_event_id = close_event_id;
        info.close_time = Some(time::timestamp(now));
        let row = CurrentRun {
            run_id: info.run_id.clone(),
            running: false,
            status: status as i32,
            start_request_id: info.start_request_id.clone(),
        };
        // Tasks still waiting for a poller will never start: their backlog rows go.
        if let Some(wft) = self.state.workflow_task.take().filter(|w| !w.is_started()) {
            self.finish_dispatch(wft.task_id);
        }
        let waiting: Vec<i64> = self
            .state
            .activities
            .values()
            .filter(|a| !a.is_started())
            .map(|a| a.task_id)
            .collect();
        for task_id in waiting {
            self.finish_dispatch(task_id);
        }
        self.buffer.discard();
        self.state.buffered_count = 0;
        if !matches!(self.current, CurrentRunWrite::Claim { .. }) {
            self.current = CurrentRunWrite::Update(row);
        }
        self.touch_visibility();
        self.after_close();
    }

    fn into_write(mut self) -> Result<(ExecutionWrite, Effects)> {
        let (clear_buffered, buffered) = std::mem::take(&mut self.buffer).into_write();
        let first_seq = self.state.next_buffered_seq;
        self.state.next_buffered_seq += buffered.len() as i64;
        let new_buffered = (first_seq..).zip(buffered.iter().map(|e| e.encode_to_vec()));
        let version = self.expected_version.unwrap_or(0) + 1;
        let shard_id = self.shard.id;
        let queue_rows = self
            .queue_tasks
            .iter()
            .map(|t| QueueTaskRow {
                task_id: t.task_id,
                namespace_id: t.namespace_id.clone(),
                task_queue: t.task_queue.clone(),
                kind: t.kind,
                data: t.encode_to_vec(),
            })
            .collect();
        let timer_rows = self
            .timers
            .iter()
            .map(|(at, timer)| TimerRow {
                shard_id,
                fire_time: time::unix_nanos(*at),
                task_id: self.shard.next_task_id(),
                data: TimerTask::new(&self.key, *timer).encode_to_vec(),
            })
            .collect();
        let progress = Progress {
            next_event_id: self.state.next_event_id,
            closed: !self.state.is_running(),
        };
        let write = ExecutionWrite {
            namespace_id: self.key.namespace_id.clone(),
            workflow_id: self.key.workflow_id.clone(),
            run_id: self.key.run_id.clone(),
            shard_id,
            range_id: self.shard.range_id,
            expected_version: self.expected_version,
            new_version: version,
            state: self.state.encode_to_vec(),
            current: Some(self.current),
            events: self
                .events
                .iter()
                .map(|e| (e.event_id, e.encode_to_vec()))
                .collect(),
            new_queue_tasks: queue_rows,
            done_queue_tasks: self.done_queue_tasks,
            new_timers: timer_rows,
            clear_buffered,
            new_buffered: new_buffered.collect(),
            visibility: self.visibility_changed.then(|| {
                crate::visibility::record(
                    &self.key,
                    &self.state,
                    version,
                    self.search_attributes_changed,
                )
            }),
        };
        let effects = Effects {
            encoded_len: write.state.len(),
            task: crate::queries::TaskState::of(&self.state),
            key: self.key,
            shard: self.shard,
            tasks: self.queue_tasks,
            timers_added: !self.timers.is_empty(),
            progress,
            updates: self.update_effects,
            state: self.state,
            version,
        };
        Ok((write, effects))
    }
}

/// What the rest of the node learns once a write is durable.
struct Effects {
    key: ExecutionKey,
    shard: Arc<Shard>,
    tasks: Vec<DispatchTask>,
    timers_added: bool,
    progress: Progress,
    updates: Vec<crate::updates::UpdateEffect>,
    task: crate::queries::TaskState,
    /// The state as written, its version and encoded size: the cache's entry once durable.
    state: MutableState,
    version: i64,
    encoded_len: usize,
}

impl History {
    pub(crate) async fn commit(&self, txn: Txn) -> Result<()> {
        self.commit_all(vec![txn]).await
    }

    /// Locks the workflow, loads the run (which must be running), applies `change` and
    /// commits it: the shape of every change to one run.
    pub(crate) async fn update<T>(
        &self,
        key: &ExecutionKey,
        change: impl FnOnce(&mut Txn) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock_run(key).await;
        self.apply(self.load(key).await?, change).await
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
        change: impl FnOnce(&mut Txn) -> Result<T>,
    ) -> Result<T> {
        let (_lock, key) = self.lock_named(namespace_id, execution).await?;
        self.apply(self.load(&key).await?, change).await
    }

    /// `update` for a change that only appends or buffers events (`load_to_append`).
    pub(crate) async fn append_to<T>(
        &self,
        key: &ExecutionKey,
        change: impl FnOnce(&mut Txn) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock_run(key).await;
        self.apply(self.load_to_append(key).await?, change).await
    }

    /// `update_named` for a change that only appends or buffers events (`load_to_append`).
    pub(crate) async fn append_named<T>(
        &self,
        namespace_id: &str,
        execution: &WorkflowExecution,
        change: impl FnOnce(&mut Txn) -> Result<T>,
    ) -> Result<T> {
        let (_lock, key) = self.lock_named(namespace_id, execution).await?;
        self.apply(self.load_to_append(&key).await?, change).await
    }

    async fn apply<T>(&self, txn: Txn, change: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        let mut txn = crate::load::running(txn)?;
        let out = change(&mut txn)?;
        self.commit(txn).await?;
        Ok(out)
    }

    /// Commits several runs' changes in one transaction (a run and its successor).
    pub(crate) async fn commit_all(&self, txns: Vec<Txn>) -> Result<()> {
        let mut writes = Vec::with_capacity(txns.len());
        let mut effects = Vec::with_capacity(txns.len());
        for txn in txns.into_iter().filter(|t| !t.unchanged) {
            let (write, effect) = txn.into_write()?;
            writes.push(write);
            effects.push(effect);
        }
        if writes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store().write_executions(writes).await {
            if e.may_have_committed() {
                self.commit_in_doubt();
            }
            if let PersistenceError::ShardOwnershipLost { shard_id, .. } = e {
                self.shard_lost(shard_id);
            }
            return Err(e.into());
        }
        for effect in effects {
            for task in effect.tasks {
                self.inner.matching.add(task);
            }
            if effect.timers_added {
                effect.shard.timer_added.notify_one();
            }
            self.inner.updates.announce(&effect.key, effect.updates);
            if effect.progress.closed {
                self.inner.updates.fail_all(&effect.key);
            }
            self.inner
                .queries
                .settle(&effect.key, effect.task, &self.inner.matching);
            self.inner.watch.publish(&effect.key, effect.progress);
            self.inner
                .cache
                .put(effect.key, effect.state, effect.version, effect.encoded_len);
        }
        Ok(())
    }
}
