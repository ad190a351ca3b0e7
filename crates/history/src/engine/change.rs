//! One change of one run, in the engine: the working copy of its mutable state plus the
//! events, tasks and timers the change produces. `finish` hands them over as plain data; the
//! service commits them (`commit.rs`).

use crate::engine::buffer::Buffer;
use crate::engine::context::Context;
use crate::engine::effects::{Effects, UpdateEffect, VisibilityChange};
use crate::engine::events;
use crate::engine::state::{MutableState, WorkflowTaskInfo};
use crate::engine::timer::Timer;
use crate::engine::workflow_task;
use chronicle_api::common::v1::Priority;
use chronicle_api::enums::v1::WorkflowExecutionStatus;
use chronicle_api::history::v1::{
    HistoryEvent, WorkflowTaskScheduledEventAttributes, history_event::Attributes,
};
use chronicle_common::{DispatchTask, ExecutionKey, QueueKind, limits, time};
use chronicle_persistence::{CurrentRun, CurrentRunWrite};
use prost::Message;
use std::time::{Duration, SystemTime};

pub(crate) struct Change {
    pub key: ExecutionKey,
    pub state: MutableState,
    pub now: SystemTime,
    pub ctx: Context,
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
    pub update_effects: Vec<UpdateEffect>,
    /// The change alters what List and Count show (a new run always does).
    visibility_changed: bool,
    /// The change sets search attributes (a new run always does).
    search_attributes_changed: bool,
    /// The summary and details the next appended event carries: those of the command or
    /// start request that causes it.
    pub event_metadata: Option<chronicle_api::sdk::v1::UserMetadata>,
}

impl Change {
    /// A brand-new run; its first write creates it.
    pub fn create(ctx: Context, key: ExecutionKey, state: MutableState) -> Self {
        Self::with(
            ctx,
            key,
            state,
            (None, Buffer::read(Vec::new(), Vec::new())),
        )
    }

    pub(crate) fn with(
        ctx: Context,
        key: ExecutionKey,
        state: MutableState,
        (expected_version, buffer): (Option<i64>, Buffer),
    ) -> Self {
        Self {
            key,
            state,
            now: ctx.now,
            ctx,
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
            event_metadata: None,
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

    pub fn info(&self) -> &crate::engine::state::ExecutionInfo {
        self.state.info()
    }

    pub fn is_running(&self) -> bool {
        self.state.is_running()
    }

    /// Appends an event now, assigning it the next id.
    pub fn append(&mut self, attributes: impl Into<Attributes>) -> i64 {
        self.append_at(attributes, self.now)
    }

    /// Appends an event that records something which happened at `at`, earlier than now.
    fn append_at(&mut self, attributes: impl Into<Attributes>, at: SystemTime) -> i64 {
        let mut event = events::event(attributes, at);
        event.user_metadata = self.event_metadata.take();
        let id = self.state.next_event_id;
        event.event_id = id;
        event.task_id = self.ctx.task_id();
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
        let now = self.now;
        self.append_external_timed(batch.into_iter().map(|a| (a, now)));
    }

    /// `append_external_all` of events each stamped with when it happened (an activity's
    /// start is written when the attempt ends, at the time it started).
    pub fn append_external_timed(
        &mut self,
        batch: impl IntoIterator<Item = (Attributes, SystemTime)>,
    ) {
        if self.state.wft_in_flight() {
            for (attributes, at) in batch {
                self.buffer.push(events::event(attributes, at));
                self.state.buffered_count += 1;
            }
            return;
        }
        for (attributes, at) in batch {
            self.append_at(attributes, at);
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

    /// Schedules a workflow task; returns it as the run now holds it.
    pub fn schedule_workflow_task(&mut self, attempt: i32) -> &WorkflowTaskInfo {
        let base = time::stored_duration(self.info().workflow_task_timeout.as_ref())
            .unwrap_or(limits::DEFAULT_WORKFLOW_TASK_TIMEOUT);
        let timeout = time::duration(workflow_task::attempt_timeout(
            base,
            attempt,
            self.ctx.workflow_task_retry_max,
        ));
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
        self.state.workflow_task.insert(task)
    }

    /// Puts a task on a task queue (durably, with this transaction); returns its id.
    pub fn dispatch(
        &mut self,
        kind: QueueKind,
        task_queue: &str,
        scheduled_event_id: i64,
        attempt: i32,
    ) -> i64 {
        let task_id = self.ctx.task_id();
        let priority = self.task_priority(kind, scheduled_event_id);
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
            priority: priority.priority_key,
            fairness_key: priority.fairness_key,
            fairness_weight: priority.fairness_weight,
        });
        task_id
    }

    /// A task's priority: an activity's own, each unset field the run's (as in Temporal).
    fn task_priority(&self, kind: QueueKind, scheduled_event_id: i64) -> Priority {
        let run = self.info().priority.clone().unwrap_or_default();
        let own = match kind {
            QueueKind::Activity => self
                .state
                .activities
                .get(&scheduled_event_id)
                .and_then(|a| a.priority.clone()),
            QueueKind::Workflow => None,
        };
        let Some(own) = own else {
            return run;
        };
        Priority {
            priority_key: if own.priority_key > 0 {
                own.priority_key
            } else {
                run.priority_key
            },
            fairness_key: if own.fairness_key.is_empty() {
                run.fairness_key
            } else {
                own.fairness_key
            },
            fairness_weight: if own.fairness_weight > 0.0 {
                own.fairness_weight
            } else {
                run.fairness_weight
            },
        }
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
        if let Some(retention) = time::stored_duration(self.state.info().retention.as_ref()) {
            self.add_timer_at(time::after(now, retention), Timer::DeleteRun);
        }
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

    /// The change as plain data, or none when it turned out to change nothing.
    pub fn finish(mut self) -> Option<Output> {
        if self.unchanged {
            return None;
        }
        let (clear_buffered, buffered) = std::mem::take(&mut self.buffer).into_write();
        let first_seq = self.state.next_buffered_seq;
        self.state.next_buffered_seq += buffered.len() as i64;
        let visibility = self.visibility_changed.then_some(VisibilityChange {
            search_attributes: self.search_attributes_changed,
        });
        Some(Output {
            key: self.key,
            expected_version: self.expected_version,
            state: self.state,
            events: self.events,
            current: self.current,
            clear_buffered,
            new_buffered: (first_seq..).zip(buffered).collect(),
            effects: Effects {
                tasks: self.queue_tasks,
                finished_tasks: self.done_queue_tasks,
                timers: self.timers,
                updates: self.update_effects,
                visibility,
            },
        })
    }
}

/// One run's change, to be written in one transaction (with any other run's it belongs to).
pub(crate) struct Output {
    pub key: ExecutionKey,
    /// The version the change read; none for a new run.
    pub expected_version: Option<i64>,
    pub state: MutableState,
    pub events: Vec<HistoryEvent>,
    pub current: CurrentRunWrite,
    /// The buffered rows are written out (or discarded) by this change.
    pub clear_buffered: bool,
    /// Events buffered by this change, with their sequence numbers.
    pub new_buffered: Vec<(i64, HistoryEvent)>,
    pub effects: Effects,
}
