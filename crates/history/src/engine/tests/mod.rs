//! The engine driven as the service drives it, with no database: `TestEnv` holds one run's
//! state, its history, its buffered events, its backlog and its armed timers in memory, and a
//! clock the test moves. A test applies inputs — a start, a worker's poll and completion, a
//! signal, time passing — and checks the events and effects that come out.

mod activities;
mod activity_ops;
mod children;
mod closing;
mod commands;
mod policies;
mod queries_updates;
mod reset;
mod signals;
mod sticky;
mod timeouts;

use crate::engine::activity::{ActivityResponse, ActivityTarget};
use crate::engine::attributes::AttributeTypes;
use crate::engine::buffer::Buffer;
use crate::engine::change::{Change, Output};
use crate::engine::commands::{Commands, Inputs};
use crate::engine::context::{Context, Ids};
use crate::engine::effects::UpdateEffect;
use crate::engine::limits;
use crate::engine::start::NewRun;
use crate::engine::state::{ActivityInfo, MutableState, WorkflowTaskInfo};
use crate::engine::timer::Timer;
use crate::engine::updates::PendingUpdates;
use crate::engine::workflow_task::WorkflowTaskEnding;
use crate::{HistoryError, NamespaceRef, Result};
use chronicle_api::command::v1::{Command, command::Attributes as C};
use chronicle_api::common::v1::{Payload, Payloads, WorkflowType};
use chronicle_api::enums::v1::{EventType, WorkflowTaskFailedCause};
use chronicle_api::history::v1::{
    HistoryEvent, WorkflowExecutionSignaledEventAttributes, history_event::Attributes as A,
};
use chronicle_api::protocol::v1::Message;
use chronicle_api::taskqueue::v1::TaskQueue;
use chronicle_api::workflowservice::{
    RespondWorkflowTaskCompletedRequest, StartWorkflowExecutionRequest,
};
use chronicle_common::config::Limits;
use chronicle_common::token::TaskToken;
use chronicle_common::{DispatchTask, ExecutionKey, QueueKind};
use chronicle_persistence::{CurrentRun, CurrentRunWrite};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(super) const QUEUE: &str = "orders";
pub(super) const WORKER: &str = "worker-1";

/// Ids from one counter, so a test sees the same ids on every run.
#[derive(Default)]
struct TestIds(AtomicI64);

impl Ids for TestIds {
    fn task_id(&self) -> i64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn run_id(&self) -> String {
        format!("run-{}", self.task_id())
    }

    fn request_id(&self) -> String {
        format!("request-{}", self.task_id())
    }
}

pub(super) fn namespace() -> NamespaceRef {
    NamespaceRef {
        id: "ns-id".into(),
        name: "default".into(),
        retention: None,
    }
}

pub(super) fn start_request(workflow_id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(WorkflowType {
            name: "Checkout".into(),
        }),
        task_queue: Some(TaskQueue {
            name: QUEUE.into(),
            ..Default::default()
        }),
        request_id: format!("start-{workflow_id}"),
        ..Default::default()
    }
}

pub(super) fn payloads(text: &str) -> Option<Payloads> {
    Some(Payloads {
        payloads: vec![Payload {
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }],
    })
}

pub(super) fn command(attributes: C) -> Command {
    Command {
        attributes: Some(attributes),
        ..Default::default()
    }
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One run as the store and the queues would hold it, and the clock.
pub(super) struct TestEnv {
    pub now: SystemTime,
    ids: Arc<TestIds>,
    pub key: ExecutionKey,
    pub state: MutableState,
    version: Option<i64>,
    pub history: Vec<HistoryEvent>,
    buffered: Vec<HistoryEvent>,
    /// Tasks dispatched to task queues and not yet started or withdrawn.
    pub backlog: Vec<DispatchTask>,
    pub timers: Vec<(SystemTime, Timer)>,
    /// Due timers that act on other runs (children, external requests, parent close
    /// policies) or on the stored run (its deletion): the service's to carry out, left here
    /// for the test to look at.
    pub cross_run: Vec<Timer>,
    pub current: Option<CurrentRun>,
    /// Sticky queues a worker polls, as matching would report them.
    pub polled_sticky: Vec<String>,
    pub limits: Limits,
    pub updates: PendingUpdates,
    /// Update progress the changes announced, in order.
    pub announced: Vec<UpdateEffect>,
    /// How many changes asked for a visibility write.
    pub visibility_writes: usize,
    /// The chain's next run, once a change made one (retry, cron, continue-as-new).
    pub next_run: Option<Box<TestEnv>>,
    /// How many history events `new_events` has handed out already.
    seen: usize,
}

impl TestEnv {
    /// A clock that starts at a fixed, ordinary instant.
    pub fn epoch() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    pub fn start(request: StartWorkflowExecutionRequest) -> Self {
        Self::try_start(request).expect("the start request is valid")
    }

    pub fn try_start(request: StartWorkflowExecutionRequest) -> Result<Self> {
        Self::try_start_in(&namespace(), request)
    }

    pub fn start_in(namespace: &NamespaceRef, request: StartWorkflowExecutionRequest) -> Self {
        Self::try_start_in(namespace, request).expect("the start request is valid")
    }

    fn try_start_in(
        namespace: &NamespaceRef,
        request: StartWorkflowExecutionRequest,
    ) -> Result<Self> {
        let now = Self::epoch();
        let ids = Arc::new(TestIds::default());
        let limits = Limits::default();
        limits::check_start(&request, &limits)?;
        let new_run = NewRun::from_request(namespace, request, now)?;
        let ctx = Context::new(now, ids.clone());
        Ok(Self::created(new_run.into_change(ctx, None), ids, limits))
    }

    /// A run whose first change `change` is (a start, a reset, the chain's next run).
    fn created(change: Change, ids: Arc<TestIds>, limits: Limits) -> Self {
        let mut env = Self {
            now: change.now,
            ids,
            key: change.key.clone(),
            state: MutableState::default(),
            version: None,
            history: Vec::new(),
            buffered: Vec::new(),
            backlog: Vec::new(),
            timers: Vec::new(),
            cross_run: Vec::new(),
            current: None,
            polled_sticky: Vec::new(),
            limits,
            updates: PendingUpdates::default(),
            announced: Vec::new(),
            visibility_writes: 0,
            next_run: None,
            seen: 0,
        };
        env.absorb(change);
        env
    }

    /// The child run this run's initiated event `initiated_event_id` asks for, started as
    /// the service starts it.
    pub fn start_child(&self, initiated_event_id: i64) -> TestEnv {
        let initiated = self
            .history
            .iter()
            .find(|e| e.event_id == initiated_event_id)
            .and_then(|e| e.attributes.clone());
        let Some(A::StartChildWorkflowExecutionInitiatedEventAttributes(initiated)) = initiated
        else {
            panic!("event {initiated_event_id} initiates no child");
        };
        let run = NewRun::child(self.state.info(), initiated_event_id, initiated, self.now)
            .expect("the child's start is valid");
        let mut ctx = self.context();
        ctx.now = self.now;
        Self::created(
            run.into_change(ctx, None),
            self.ids.clone(),
            self.limits.clone(),
        )
    }

    pub fn context(&self) -> Context {
        let mut ctx = Context::new(self.now, self.ids.clone());
        for queue in &self.polled_sticky {
            ctx.note_sticky_poller(queue);
        }
        ctx
    }

    /// The run loaded for a change, as the service's `load` does (buffer read).
    pub fn load(&self) -> Change {
        let buffer = Buffer::read(Vec::new(), self.buffered.clone());
        Change::with(
            self.context(),
            self.key.clone(),
            self.state.clone(),
            (self.version, buffer),
        )
    }

    /// One change of the running run, committed if `edit` succeeds — the service's `update`.
    pub fn change<T>(&mut self, edit: impl FnOnce(&mut Change) -> Result<T>) -> Result<T> {
        let mut change = self.load();
        if !change.is_running() {
            return Err(HistoryError::WorkflowCompleted);
        }
        let out = edit(&mut change)?;
        self.absorb(change);
        Ok(out)
    }

    /// Commits a change: what the store and the queues would hold after it.
    pub fn absorb(&mut self, change: Change) {
        if let Some(output) = change.finish() {
            self.write(output);
        }
    }

    fn write(&mut self, output: Output) {
        self.version = Some(self.version.map_or(1, |v| v + 1));
        self.state = output.state;
        self.history.extend(output.events);
        if output.clear_buffered {
            self.buffered.clear();
        }
        self.buffered
            .extend(output.new_buffered.into_iter().map(|(_, e)| e));
        match output.current {
            CurrentRunWrite::Claim { row, .. } | CurrentRunWrite::Update(row) => {
                self.current = Some(row);
            }
            CurrentRunWrite::Unchanged => {}
        }
        let effects = output.effects;
        self.backlog.extend(effects.tasks);
        self.backlog
            .retain(|t| !effects.finished_tasks.contains(&t.task_id));
        self.timers.extend(effects.timers);
        self.announced.extend(effects.updates);
        self.visibility_writes += usize::from(effects.visibility.is_some());
    }

    /// The chain's next run, made by a change of this one, as a run of its own.
    fn follow(&mut self, successor: Option<Change>) {
        if let Some(next) = successor {
            let mut env = Self::created(next, self.ids.clone(), self.limits.clone());
            env.polled_sticky.clone_from(&self.polled_sticky);
            self.next_run = Some(Box::new(env));
        }
    }

    pub fn take_next_run(&mut self) -> TestEnv {
        *self
            .next_run
            .take()
            .expect("the change started the chain's next run")
    }

    /// Event types appended since the last call.
    pub fn new_events(&mut self) -> Vec<EventType> {
        let new = self.history[self.seen..].iter().map(event_type).collect();
        self.seen = self.history.len();
        new
    }

    pub fn event_types(&self) -> Vec<EventType> {
        self.history.iter().map(event_type).collect()
    }

    pub fn last_event(&self) -> &A {
        self.history
            .last()
            .and_then(|e| e.attributes.as_ref())
            .expect("an event with attributes")
    }

    pub fn buffered_types(&self) -> Vec<EventType> {
        self.buffered.iter().map(event_type).collect()
    }

    pub fn queued(&self, kind: QueueKind) -> Vec<&DispatchTask> {
        self.backlog
            .iter()
            .filter(|t| t.kind == kind as i32)
            .collect()
    }

    pub fn armed(&self, wanted: impl Fn(&Timer) -> bool) -> Option<SystemTime> {
        self.timers
            .iter()
            .find(|(_, t)| wanted(t))
            .map(|(at, _)| *at)
    }

    /// A worker polls the workflow task queue and starts the task waiting there.
    pub fn poll_workflow_task(&mut self) -> WorkflowTaskInfo {
        let waiting = self.queued(QueueKind::Workflow);
        assert_eq!(waiting.len(), 1, "one workflow task waits for a poller");
        let task_id = waiting[0].task_id;
        let suggest = crate::engine::workflow_task::SuggestAt::of(&self.limits);
        self.change(|change| {
            let scheduled = change.state.workflow_task.clone();
            let scheduled = scheduled.filter(|w| w.task_id == task_id && !w.is_started());
            let scheduled = scheduled.expect("the queued task is the scheduled one");
            Ok(change.start_workflow_task(scheduled, WORKER, "poll-request", suggest))
        })
        .expect("the workflow task starts")
    }

    /// Answers the activities started for the worker (eager execution).
    pub fn complete(
        &mut self,
        wft: &WorkflowTaskInfo,
        commands: Vec<Command>,
    ) -> Result<Vec<ActivityInfo>> {
        self.complete_with(
            wft,
            commands,
            Vec::new(),
            RespondWorkflowTaskCompletedRequest::default(),
        )
    }

    /// The worker completes `wft`; inputs read as the service's `completion_inputs` reads them.
    pub fn complete_with(
        &mut self,
        wft: &WorkflowTaskInfo,
        commands: Vec<Command>,
        messages: Vec<Message>,
        mut request: RespondWorkflowTaskCompletedRequest,
    ) -> Result<Vec<ActivityInfo>> {
        request.identity = WORKER.into();
        let commands = Commands::new(commands, messages);
        let mut change = self.load();
        let first_event = commands
            .closing()
            .filter(|c| c.needs_first_event(change.info()))
            .map(|_| self.started_event());
        let inputs = Inputs {
            limits: self.limits.clone(),
            attribute_types: AttributeTypes::default(),
            first_event,
            updates: self.updates.clone(),
        };
        let completed = change.complete_workflow_task(wft, commands, request, &inputs)?;
        self.absorb(change);
        self.follow(completed.successor);
        Ok(completed.eager_activities)
    }

    fn started_event(&self) -> crate::engine::close::Started {
        match self.history.first().and_then(|e| e.attributes.clone()) {
            Some(A::WorkflowExecutionStartedEventAttributes(a)) => a,
            _ => panic!("the first event is WorkflowExecutionStarted"),
        }
    }

    pub fn fail_workflow_task(&mut self, wft: &WorkflowTaskInfo) {
        self.change(|change| {
            let ending = WorkflowTaskEnding::Failed {
                cause: WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
                failure: None,
                identity: WORKER.into(),
            };
            change.end_started_workflow_task(wft, ending);
            Ok(())
        })
        .expect("the run is running");
    }

    /// A worker polls the activity task queue and starts the attempt waiting there.
    pub fn poll_activity(&mut self) -> ActivityInfo {
        let waiting = self.queued(QueueKind::Activity);
        let task = waiting
            .first()
            .copied()
            .cloned()
            .expect("an activity task waits");
        self.change(|change| {
            let ai = change.state.activities.get(&task.scheduled_event_id);
            assert!(ai.is_some_and(|a| a.task_id == task.task_id && !a.is_started()));
            change
                .start_activity(task.scheduled_event_id, WORKER, "poll-request")
                .ok_or(HistoryError::StaleTask)
        })
        .expect("the activity starts")
    }

    pub fn token(&self, ai: &ActivityInfo) -> ActivityTarget {
        ActivityTarget::Token(TaskToken {
            namespace_id: self.key.namespace_id.clone(),
            workflow_id: self.key.workflow_id.clone(),
            run_id: self.key.run_id.clone(),
            scheduled_event_id: ai.scheduled_event_id,
            attempt: ai.attempt,
            activity_id: ai.activity_id.clone(),
            ..Default::default()
        })
    }

    /// The worker reports how the attempt `ai` ended, as `RespondActivityTask*` does.
    pub fn respond_activity(
        &mut self,
        ai: &ActivityInfo,
        response: ActivityResponse,
    ) -> Result<()> {
        let target = self.token(ai);
        self.change(|change| {
            let ai = change.target_activity(&target)?;
            change.respond_activity(&ai, response, WORKER.to_owned());
            Ok(())
        })
    }

    /// A heartbeat; answers whether cancellation was requested.
    pub fn heartbeat(&mut self, ai: &ActivityInfo, details: Option<Payloads>) -> Result<bool> {
        let target = self.token(ai);
        self.change(|change| {
            let ai = change.target_activity(&target)?;
            change.record_heartbeat(ai.scheduled_event_id, details);
            Ok(ai.cancel_requested)
        })
    }

    pub fn signal(&mut self, name: &str, request_id: &str) -> Result<()> {
        let limits = self.limits.clone();
        self.change(|change| {
            limits::may_signal(&change.state, &limits)?;
            let signal = WorkflowExecutionSignaledEventAttributes {
                signal_name: name.into(),
                input: payloads(name),
                identity: "client".into(),
                request_id: request_id.into(),
                ..Default::default()
            };
            if !change.apply_signal(signal) {
                change.nothing_to_write();
            }
            Ok(())
        })
    }

    /// Moves the clock and fires every timer due by then, in time order, as the timer queue
    /// does (a timer whose reason went away does nothing).
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, (at, _))| *at <= until)
                .min_by_key(|(_, (at, _))| *at)
                .map(|(i, _)| i);
            let Some(index) = due else { break };
            let (at, timer) = self.timers.remove(index);
            // Each timer fires on time: what it arms counts from its own deadline.
            self.now = self.now.max(at);
            match self.fire(timer) {
                Err(e) if e.is_stale() => {}
                other => other.expect("the timer fires"),
            }
        }
        self.now = until;
    }

    fn fire(&mut self, timer: Timer) -> Result<()> {
        match timer {
            Timer::User { started_event_id } => {
                self.change(|change| change.fire_timer(started_event_id))
            }
            Timer::ActivityTimeout { attempt, timeout } => {
                self.change(|change| change.time_out_activity_attempt(attempt, timeout))
            }
            Timer::ActivityScheduleToClose { scheduled_event_id } => {
                self.change(|change| change.time_out_activity_overall(scheduled_event_id))
            }
            Timer::ActivityRetry(attempt) => {
                self.change(|change| change.end_activity_backoff(attempt))
            }
            Timer::ActivityHeartbeat(attempt) => {
                self.change(|change| change.check_activity_heartbeat(attempt))
            }
            Timer::WorkflowTaskTimeout(attempt) => {
                self.change(|change| change.time_out_workflow_task(attempt))
            }
            Timer::StickyScheduleToStart(attempt) => {
                self.change(|change| change.sticky_timed_out(attempt))
            }
            Timer::WorkflowBackoff => self.change(Change::end_backoff),
            Timer::WorkflowRunTimeout => self.time_out(false),
            Timer::WorkflowExecutionTimeout => self.time_out(true),
            Timer::StartChild { .. }
            | Timer::RecordChildClosed
            | Timer::ParentClosePolicy { .. }
            | Timer::ExternalRequest { .. }
            | Timer::DeleteRun => {
                self.cross_run.push(timer);
                Ok(())
            }
        }
    }

    fn time_out(&mut self, execution_expired: bool) -> Result<()> {
        let first = self.started_event();
        let successor =
            self.change(|change| change.time_out_run(execution_expired, Some(&first)))?;
        self.follow(successor);
        Ok(())
    }
}

fn event_type(event: &HistoryEvent) -> EventType {
    EventType::try_from(event.event_type).unwrap_or(EventType::Unspecified)
}

/// The cause the first WorkflowTaskFailed event of `history` gives.
pub(super) fn workflow_task_failure_cause(history: &[HistoryEvent]) -> WorkflowTaskFailedCause {
    match find(history, EventType::WorkflowTaskFailed) {
        A::WorkflowTaskFailedEventAttributes(failed) => {
            WorkflowTaskFailedCause::try_from(failed.cause).unwrap_or_default()
        }
        _ => unreachable!("find returns the event asked for"),
    }
}

/// The attributes of the first event of `ty` in `history`.
pub(super) fn find(history: &[HistoryEvent], ty: EventType) -> &A {
    history
        .iter()
        .find(|e| e.event_type == ty as i32)
        .and_then(|e| e.attributes.as_ref())
        .unwrap_or_else(|| panic!("no {ty:?} event"))
}
