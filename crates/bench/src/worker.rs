//! The synthetic worker: long-polls workflow and activity tasks and answers each at once
//! with the commands its scenario's `Plan` decides, like an SDK worker whose code does
//! nothing. Sticky execution as SDKs do it: every completed workflow task names this
//! worker's sticky queue, the worker polls it, and keeps each open run's state so a task
//! carrying only new events can be continued.

use crate::rpc::{self, CALL_TIMEOUT, Client, POLL_TIMEOUT};
use crate::scenario::{self, Decision, Plan, RunState};
use crate::stats::ErrorLog;
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::history::v1::{History, HistoryEvent};
use chronicle_api::taskqueue::v1::{StickyExecutionAttributes, TaskQueue};
use chronicle_api::wkt::Timestamp;
use chronicle_api::workflowservice::{
    PollActivityTaskQueueRequest, PollActivityTaskQueueResponse, PollWorkflowTaskQueueRequest,
    PollWorkflowTaskQueueResponse, RespondActivityTaskCompletedRequest,
    RespondWorkflowTaskCompletedRequest,
};
use prost::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a task may wait on the sticky queue before the server hands it to the normal
/// queue (SDKs use 5–10 s); our pollers are always there, so it never runs out.
const STICKY_SCHEDULE_TO_START: Duration = Duration::from_secs(10);
/// Pause after a failed poll, so a server that refuses polls is not hammered in a loop.
const POLL_ERROR_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub namespace: String,
    pub task_queue: String,
    pub sticky: bool,
    pub workflow_pollers: usize,
    pub activity_pollers: usize,
    pub plan: Plan,
    pub record_steps: bool,
}

/// One workflow task of a sequential workflow, for the `long` scenario's per-step report.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Activities completed when the task came (step 0 is the first task).
    pub step: u32,
    /// Since the worker answered the previous task of the run (None for the first).
    pub latency: Option<Duration>,
    /// Size of the history the task carried (all its pages).
    pub history_bytes: usize,
}

/// What the worker did, read by the driver at the end of a run.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub workflow_tasks: AtomicU64,
    /// Workflow tasks that came through the sticky queue.
    pub sticky_tasks: AtomicU64,
    pub activity_tasks: AtomicU64,
    pub history_bytes: AtomicU64,
    /// Sticky tasks that did not follow on from the cached state, so the full history was
    /// read (an SDK's cache miss). Should stay 0.
    pub full_history_reads: AtomicU64,
    /// Polls that ended in their own deadline instead of an empty answer.
    pub poll_expiries: AtomicU64,
    pub timer_delays: Mutex<Vec<Duration>>,
    /// Scheduled to started, by the server's clock: how long tasks waited in matching
    /// although a poller was always waiting.
    pub workflow_task_waits: Mutex<Vec<Duration>>,
    pub activity_task_waits: Mutex<Vec<Duration>>,
    pub steps: Mutex<Vec<Step>>,
}

/// Who is waiting for which workflow to complete. The worker knows a workflow completed
/// when its CompleteWorkflowExecution is accepted, so no client-side polling is needed.
#[derive(Debug, Default)]
pub struct Completions(Mutex<HashMap<String, oneshot::Sender<Instant>>>);

impl Completions {
    pub fn register(&self, workflow_id: &str) -> oneshot::Receiver<Instant> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(workflow_id.to_owned(), tx);
        rx
    }

    pub fn forget(&self, workflow_id: &str) {
        self.lock().remove(workflow_id);
    }

    fn complete(&self, workflow_id: &str, at: Instant) {
        if let Some(tx) = self.lock().remove(workflow_id) {
            let _ = tx.send(at);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Instant>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A run between two of its workflow tasks.
struct Cached {
    state: RunState,
    answered_at: Instant,
}

struct Shared {
    cfg: WorkerConfig,
    identity: String,
    sticky_queue: Option<TaskQueue>,
    cache: Mutex<HashMap<String, Cached>>,
    completions: Arc<Completions>,
    stats: Arc<WorkerStats>,
    errors: Arc<ErrorLog>,
}

/// The running pollers; dropping the worker stops them.
pub struct Worker {
    pollers: Vec<JoinHandle<()>>,
}

impl Worker {
    pub async fn start(
        address: &str,
        cfg: WorkerConfig,
        completions: Arc<Completions>,
        stats: Arc<WorkerStats>,
        errors: Arc<ErrorLog>,
    ) -> anyhow::Result<Self> {
        let workflow_client = rpc::connect(address).await?;
        let activity_client = rpc::connect(address).await?;
        let normal = rpc::normal_queue(&cfg.task_queue);
        let sticky_queue = cfg.sticky.then(|| {
            let name = format!("{}-sticky-{}", cfg.task_queue, std::process::id());
            rpc::sticky_queue(&name, &cfg.task_queue)
        });
        let shared = Arc::new(Shared {
            identity: format!("{}@chronicle-bench", std::process::id()),
            sticky_queue: sticky_queue.clone(),
            cache: Mutex::default(),
            completions,
            stats,
            errors,
            cfg,
        });
        let mut pollers = Vec::new();
        // The sticky queue gets as many pollers as the normal one: after its first task a
        // workflow's tasks all come through it.
        for queue in std::iter::once(&normal).chain(sticky_queue.as_ref()) {
            for _ in 0..shared.cfg.workflow_pollers {
                let (s, c, q) = (shared.clone(), workflow_client.clone(), queue.clone());
                pollers.push(tokio::spawn(s.poll_workflow_tasks(c, q)));
            }
        }
        if shared.cfg.plan.activities > 0 {
            for _ in 0..shared.cfg.activity_pollers {
                let (s, c) = (shared.clone(), activity_client.clone());
                pollers.push(tokio::spawn(s.poll_activity_tasks(c, normal.clone())));
            }
        }
        Ok(Worker { pollers })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Dropping a poll resets its HTTP/2 stream; the server forgets the poller.
        self.pollers.iter().for_each(JoinHandle::abort);
    }
}

/// Keeps how long a task waited between being scheduled and started, by the server's clock.
fn record_wait(
    waits: &Mutex<Vec<Duration>>,
    scheduled: Option<&Timestamp>,
    started: Option<&Timestamp>,
) {
    if let (Some(scheduled), Some(started)) = (scheduled, started) {
        let wait = scenario::system_time(started).duration_since(scenario::system_time(scheduled));
        // A clock step backwards makes the wait negative; it is not a wait then.
        if let Ok(wait) = wait {
            waits
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(wait);
        }
    }
}

impl Shared {
    async fn poll_workflow_tasks(self: Arc<Self>, mut client: Client, queue: TaskQueue) {
        let request = PollWorkflowTaskQueueRequest {
            namespace: self.cfg.namespace.clone(),
            task_queue: Some(queue),
            identity: self.identity.clone(),
            ..Default::default()
        };
        let sticky = self.sticky_queue.as_ref() == request.task_queue.as_ref();
        loop {
            let poll = rpc::with_timeout(request.clone(), POLL_TIMEOUT);
            match client.poll_workflow_task_queue(poll).await {
                // Answered on its own task, so this poller is back in line at once.
                Ok(task) if !task.get_ref().task_token.is_empty() => {
                    if sticky {
                        self.stats.sticky_tasks.fetch_add(1, Ordering::Relaxed);
                    }
                    let (shared, client) = (self.clone(), client.clone());
                    tokio::spawn(shared.workflow_task(client, task.into_inner()));
                }
                Ok(_) => {}
                Err(status) => self.poll_failed("PollWorkflowTaskQueue", &status).await,
            }
        }
    }

    async fn poll_activity_tasks(self: Arc<Self>, mut client: Client, queue: TaskQueue) {
        let request = PollActivityTaskQueueRequest {
            namespace: self.cfg.namespace.clone(),
            task_queue: Some(queue),
            identity: self.identity.clone(),
            ..Default::default()
        };
        loop {
            let poll = rpc::with_timeout(request.clone(), POLL_TIMEOUT);
            match client.poll_activity_task_queue(poll).await {
                Ok(task) if !task.get_ref().task_token.is_empty() => {
                    let (shared, client) = (self.clone(), client.clone());
                    tokio::spawn(shared.activity_task(client, task.into_inner()));
                }
                Ok(_) => {}
                Err(status) => self.poll_failed("PollActivityTaskQueue", &status).await,
            }
        }
    }

    async fn poll_failed(&self, call: &str, status: &tonic::Status) {
        if rpc::is_poll_expiry(status) {
            self.stats.poll_expiries.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.record(call, status);
            tokio::time::sleep(POLL_ERROR_BACKOFF).await;
        }
    }

    async fn activity_task(
        self: Arc<Self>,
        mut client: Client,
        task: PollActivityTaskQueueResponse,
    ) {
        self.stats.activity_tasks.fetch_add(1, Ordering::Relaxed);
        let scheduled = task.current_attempt_scheduled_time.as_ref();
        record_wait(
            &self.stats.activity_task_waits,
            scheduled,
            task.started_time.as_ref(),
        );
        let request = RespondActivityTaskCompletedRequest {
            task_token: task.task_token,
            identity: self.identity.clone(),
            namespace: self.cfg.namespace.clone(),
            ..Default::default()
        };
        let respond = rpc::with_timeout(request, CALL_TIMEOUT);
        if let Err(status) = client.respond_activity_task_completed(respond).await {
            self.errors.record("RespondActivityTaskCompleted", &status);
        }
    }

    async fn workflow_task(
        self: Arc<Self>,
        mut client: Client,
        task: PollWorkflowTaskQueueResponse,
    ) {
        self.stats.workflow_tasks.fetch_add(1, Ordering::Relaxed);
        let scheduled = task.scheduled_time.as_ref();
        record_wait(
            &self.stats.workflow_task_waits,
            scheduled,
            task.started_time.as_ref(),
        );
        let execution = task.workflow_execution.clone().unwrap_or_default();
        let (events, history_bytes) = match self
            .task_history(&mut client, &execution, task.history, task.next_page_token)
            .await
        {
            Ok(history) => history,
            Err(status) => return self.errors.record("GetWorkflowExecutionHistory", &status),
        };
        let cached = self.lock_cache().remove(&execution.run_id);
        let answered_before = cached.as_ref().map(|c| c.answered_at);
        let state = match RunState::resume(cached.map(|c| c.state), &events) {
            Some(state) => state,
            None => match self.full_state(&mut client, &execution).await {
                Ok(state) => state,
                Err(status) => return self.errors.record("GetWorkflowExecutionHistory", &status),
            },
        };
        let decision = self.cfg.plan.decide(&state);
        let request = RespondWorkflowTaskCompletedRequest {
            task_token: task.task_token,
            commands: decision.commands(&self.cfg.task_queue),
            identity: self.identity.clone(),
            namespace: self.cfg.namespace.clone(),
            sticky_attributes: self
                .sticky_queue
                .clone()
                .map(|q| StickyExecutionAttributes {
                    worker_task_queue: Some(q),
                    schedule_to_start_timeout: Some(rpc::duration(STICKY_SCHEDULE_TO_START)),
                }),
            ..Default::default()
        };
        let respond = rpc::with_timeout(request, CALL_TIMEOUT);
        if let Err(status) = client.respond_workflow_task_completed(respond).await {
            // Not cached: the server will time the task out and send the full history again.
            return self.errors.record("RespondWorkflowTaskCompleted", &status);
        }
        let now = Instant::now();
        if self.cfg.record_steps {
            self.stats
                .steps
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Step {
                    step: state.activities_completed,
                    latency: answered_before.map(|t| now - t),
                    history_bytes,
                });
        }
        if decision == Decision::Complete {
            if let Some(delay) = self.cfg.plan.timer.and_then(|t| state.timer_delay(t)) {
                self.stats
                    .timer_delays
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(delay);
            }
            self.completions.complete(&execution.workflow_id, now);
        } else {
            let cached = Cached {
                state,
                answered_at: now,
            };
            self.lock_cache().insert(execution.run_id, cached);
        }
    }

    /// The events a task carried, all pages of them, and their size on the wire.
    async fn task_history(
        &self,
        client: &mut Client,
        execution: &WorkflowExecution,
        first_page: Option<History>,
        next_page_token: Vec<u8>,
    ) -> Result<(Vec<HistoryEvent>, usize), tonic::Status> {
        let first_page = first_page.unwrap_or_default();
        let mut bytes = first_page.encoded_len();
        let mut events = first_page.events;
        if !next_page_token.is_empty() {
            let namespace = &self.cfg.namespace;
            let (rest, rest_bytes) =
                rpc::history_pages(client, namespace, execution, next_page_token).await?;
            events.extend(rest);
            bytes += rest_bytes;
        }
        self.stats
            .history_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        Ok((events, bytes))
    }

    /// The state from the run's whole history, for a sticky task we cannot continue.
    async fn full_state(
        &self,
        client: &mut Client,
        execution: &WorkflowExecution,
    ) -> Result<RunState, tonic::Status> {
        self.stats
            .full_history_reads
            .fetch_add(1, Ordering::Relaxed);
        let namespace = &self.cfg.namespace;
        let (events, _) = rpc::history_pages(client, namespace, execution, Vec::new()).await?;
        Ok(RunState::resume(None, &events).unwrap_or_default())
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
