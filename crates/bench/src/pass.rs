//! One pass: a batch of identical workflows on a fresh task queue, started by concurrent
//! closed-loop starters (each starts a workflow, sends its signals, waits for the worker to
//! complete it, then starts the next) and run by the synthetic worker.

use crate::driver::LoadArgs;
use crate::rpc::{self, CALL_TIMEOUT, Client};
use crate::scenario::{Plan, SIGNAL_NAME, WORKFLOW_TYPE};
use crate::stats::ErrorLog;
use crate::worker::{Completions, Worker, WorkerConfig, WorkerStats};
use chronicle_api::common::v1::{WorkflowExecution, WorkflowType};
use chronicle_api::workflowservice::{
    SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const IDENTITY: &str = "chronicle-bench";
/// Temporal's default, stated so both servers certainly use the same: a task our worker lost
/// (an error answering it) is retried after this long.
const WORKFLOW_TASK_TIMEOUT: Duration = Duration::from_secs(10);

/// One batch of identical workflows on a fresh task queue.
pub struct Pass {
    pub plan: Plan,
    pub sticky: bool,
    pub workflow_pollers: usize,
    pub activity_pollers: usize,
    pub workflows: usize,
    pub concurrency: usize,
    /// Keep per-step samples (the long scenario).
    pub record_steps: bool,
    /// How long a workflow may take before the pass gives up on the server.
    pub timeout: Duration,
}

impl Pass {
    pub fn new(plan: Plan, workflows: usize, concurrency: usize, args: &LoadArgs) -> Pass {
        Pass {
            plan,
            sticky: !args.no_sticky,
            workflow_pollers: args.workflow_pollers.max(1),
            activity_pollers: args.activity_pollers.max(1),
            workflows,
            concurrency: concurrency.max(1),
            record_steps: false,
            timeout: Duration::from_secs(args.workflow_timeout_s),
        }
    }
}

#[derive(Default)]
pub struct PassOutcome {
    /// Per completed workflow: when it completed (since the pass began) and its latency.
    pub completions: Vec<(Duration, Duration)>,
    /// Per signal: when its call returned (since the pass began) and its latency.
    pub signals: Vec<(Duration, Duration)>,
    /// Started but not seen completing within the timeout.
    pub incomplete: usize,
    pub elapsed: Duration,
    pub stats: Arc<WorkerStats>,
}

/// The shared state of a pass's starters.
struct Starters {
    pass_started: Instant,
    namespace: String,
    task_queue: String,
    workflows: usize,
    signals: u32,
    timeout: Duration,
    next: AtomicUsize,
    /// Set when a workflow timed out: the server is stalled, starting more only waits longer.
    give_up: AtomicBool,
    completions: Arc<Completions>,
    errors: Arc<ErrorLog>,
    outcome: Mutex<PassOutcome>,
}

pub async fn run_pass(
    address: &str,
    namespace: &str,
    pass: &Pass,
    errors: &Arc<ErrorLog>,
) -> anyhow::Result<PassOutcome> {
    let task_queue = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let completions = Arc::new(Completions::default());
    let stats = Arc::new(WorkerStats::default());
    let worker_cfg = WorkerConfig {
        namespace: namespace.to_owned(),
        task_queue: task_queue.clone(),
        sticky: pass.sticky,
        workflow_pollers: pass.workflow_pollers,
        activity_pollers: pass.activity_pollers,
        plan: pass.plan,
        record_steps: pass.record_steps,
    };
    let worker = Worker::start(
        address,
        worker_cfg,
        completions.clone(),
        stats.clone(),
        errors.clone(),
    )
    .await?;
    let client = rpc::connect(address).await?;
    let starters = Arc::new(Starters {
        pass_started: Instant::now(),
        namespace: namespace.to_owned(),
        task_queue,
        workflows: pass.workflows,
        signals: pass.plan.signals,
        timeout: pass.timeout,
        next: AtomicUsize::new(0),
        give_up: AtomicBool::new(false),
        completions,
        errors: errors.clone(),
        outcome: Mutex::new(PassOutcome {
            stats,
            ..Default::default()
        }),
    });
    let handles: Vec<_> = (0..pass.concurrency.min(pass.workflows))
        .map(|_| tokio::spawn(starters.clone().run(client.clone())))
        .collect();
    for handle in handles {
        handle.await?;
    }
    drop(worker);
    let mut outcome = std::mem::take(
        &mut *starters
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    outcome.elapsed = starters.pass_started.elapsed();
    Ok(outcome)
}

impl Starters {
    async fn run(self: Arc<Self>, mut client: Client) {
        while !self.give_up.load(Ordering::Relaxed) {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.workflows {
                return;
            }
            let workflow_id = format!("{}-{i}", self.task_queue);
            // Registered before the start, so even an instant completion finds its waiter.
            let completed = self.completions.register(&workflow_id);
            let started = Instant::now();
            let Some(run_id) = self.start(&mut client, &workflow_id).await else {
                self.completions.forget(&workflow_id);
                continue;
            };
            let mut signalled = true;
            for _ in 0..self.signals {
                signalled = signalled && self.signal(&mut client, &workflow_id, &run_id).await;
            }
            if !signalled {
                // It waits for a signal that will not come: not worth waiting for.
                self.completions.forget(&workflow_id);
                self.outcome().incomplete += 1;
                continue;
            }
            match tokio::time::timeout(self.timeout, completed).await {
                Ok(Ok(at)) => self.outcome().completions.push((
                    at.saturating_duration_since(self.pass_started),
                    at.saturating_duration_since(started),
                )),
                _ => {
                    self.completions.forget(&workflow_id);
                    self.outcome().incomplete += 1;
                    self.give_up.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    async fn start(&self, client: &mut Client, workflow_id: &str) -> Option<String> {
        let request = StartWorkflowExecutionRequest {
            namespace: self.namespace.clone(),
            workflow_id: workflow_id.to_owned(),
            workflow_type: Some(WorkflowType {
                name: WORKFLOW_TYPE.to_owned(),
            }),
            task_queue: Some(rpc::normal_queue(&self.task_queue)),
            workflow_task_timeout: Some(rpc::duration(WORKFLOW_TASK_TIMEOUT)),
            identity: IDENTITY.to_owned(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        let call = rpc::with_timeout(request, CALL_TIMEOUT);
        match client.start_workflow_execution(call).await {
            Ok(response) => Some(response.into_inner().run_id),
            Err(status) => {
                self.errors.record("StartWorkflowExecution", &status);
                None
            }
        }
    }

    /// Whether the signal was accepted.
    async fn signal(&self, client: &mut Client, workflow_id: &str, run_id: &str) -> bool {
        let request = SignalWorkflowExecutionRequest {
            namespace: self.namespace.clone(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: workflow_id.to_owned(),
                run_id: run_id.to_owned(),
            }),
            signal_name: SIGNAL_NAME.to_owned(),
            identity: IDENTITY.to_owned(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        let sent = Instant::now();
        let call = rpc::with_timeout(request, CALL_TIMEOUT);
        match client.signal_workflow_execution(call).await {
            Ok(_) => {
                let now = Instant::now();
                let since_start = now.saturating_duration_since(self.pass_started);
                self.outcome().signals.push((since_start, now - sent));
                true
            }
            Err(status) => {
                self.errors.record("SignalWorkflowExecution", &status);
                false
            }
        }
    }

    fn outcome(&self) -> std::sync::MutexGuard<'_, PassOutcome> {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
