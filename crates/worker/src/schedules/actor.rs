//! A running schedule: one task per schedule on the member that claimed its row. It takes
//! the spec's due times, starts workflows as the buffer and overlap policies decide, watches
//! the workflows it started until they close, applies the RPCs' changes, and stores its
//! state under its claim before anything it did is answered — so a restart, or another
//! member taking over, goes on from the stored state. Each start has an id and request id
//! made from its nominal time, so a start repeated after a crash finds the run it made.

use super::state::{BufferAction, BufferedStart, Closed, ScheduleJob};
use super::{Command, RETRY, identity, request_id_of, start_request};
use crate::{Result, WorkerError, Workflows};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::enums::v1::{HistoryEventFilterType, WorkflowExecutionStatus};
use chronicle_api::history::v1::history_event::Attributes;
use chronicle_api::workflowservice::{
    GetWorkflowExecutionHistoryRequest, RequestCancelWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
};
use chronicle_common::Supervisor;
use chronicle_common::supervisor::CancellationToken;
use chronicle_common::time;
use chronicle_persistence::{JobKey, JobRow, WorkerStore};
use chronicle_schedule_spec::Spec;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub(crate) struct Actor {
    pub key: JobKey,
    pub epoch: i64,
    pub job: ScheduleJob,
    pub spec: Spec,
    pub store: Arc<dyn WorkerStore>,
    pub workflows: Arc<dyn Workflows>,
    pub supervisor: Supervisor,
    pub commands: mpsc::Receiver<Command>,
    pub shutdown: CancellationToken,
    /// Stops the watchers of started workflows when the actor ends, whyever it ends.
    pub watchers: CancellationToken,
}

/// Whether the actor goes on after a command.
enum End {
    Continue,
    /// The claim went to another runner: the row stays for whoever runs next.
    Stopped,
    Deleted,
}

impl Actor {
    pub async fn run(mut self) {
        let _watchers = self.watchers.clone().drop_guard();
        let (closed_tx, mut closed_rx) = mpsc::channel(64);
        for execution in self.job.running().to_vec() {
            self.watch(execution, closed_tx.clone());
        }
        let mut retry_at = None;
        loop {
            let now = time::now();
            let behind = self.job.take_due(&self.spec, now);
            let action = self.job.process_buffer();
            if !self.act(action, &closed_tx).await {
                retry_at = Some(now + RETRY);
            }
            if !self.save().await {
                return;
            }
            let wake = if behind {
                Some(now)
            } else {
                [self.job.next_wake(&self.spec), retry_at.take()]
                    .into_iter()
                    .flatten()
                    .min()
            };
            let sleep = wake.map_or(Duration::from_secs(24 * 3600), |t| {
                t.duration_since(time::now()).unwrap_or_default()
            });
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return };
                    match self.command(command).await {
                        End::Continue => {}
                        End::Stopped | End::Deleted => return,
                    }
                }
                Some(closed) = closed_rx.recv() => self.job.closed(closed),
                () = tokio::time::sleep(sleep) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Applies one RPC's change; the loop then takes what it made due and stores the
    /// result before the next command. Changes are answered once stored.
    async fn command(&mut self, command: Command) -> End {
        match command {
            Command::Describe(reply) => {
                let _ = reply.send(Ok(super::describe(&self.job, &self.spec)));
                End::Continue
            }
            Command::Change(change, reply) => {
                let now = time::now();
                let outcome = change(&mut self.job, now).map(|spec| {
                    // Only an update is an update (a patch leaves the update time).
                    if let Some(spec) = spec {
                        self.spec = spec;
                        self.job.touch(now);
                    }
                });
                if outcome.is_ok() && !self.save().await {
                    let _ = reply.send(Err(moved()));
                    return End::Stopped;
                }
                let _ = reply.send(outcome);
                End::Continue
            }
            Command::Delete(reply) => {
                match self.store.delete_claimed_job(&self.key, self.epoch).await {
                    Ok(true) => {
                        let _ = reply.send(Ok(()));
                        End::Deleted
                    }
                    Ok(false) => {
                        let _ = reply.send(Err(moved()));
                        End::Stopped
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                        End::Continue
                    }
                }
            }
        }
    }

    /// Writes the state under the claim; false once another runner holds it.
    async fn save(&mut self) -> bool {
        let row = JobRow {
            key: self.key.clone(),
            running: true,
            data: self.job.encode_to_vec(),
        };
        loop {
            match self.store.save_claimed_job(&row, self.epoch).await {
                Ok(saved) => {
                    if !saved {
                        tracing::info!(schedule_id = %self.job.schedule_id, "schedule moved to another runner");
                    }
                    return saved;
                }
                Err(e) => {
                    tracing::warn!(schedule_id = %self.job.schedule_id, "schedule state not stored: {e}");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => {}
                        () = self.shutdown.cancelled() => return false,
                    }
                }
            }
        }
    }

    /// Makes the starts, cancels and terminations the buffer asked for. A start the cluster
    /// cannot take now goes back to the front of the buffer; answers false then.
    async fn act(&mut self, action: BufferAction, closed: &mpsc::Sender<Closed>) -> bool {
        if action.terminate_running || action.cancel_running {
            for execution in self.job.running().to_vec() {
                self.stop_running(execution, action.terminate_running).await;
            }
        }
        let mut starts = action.starts.into_iter();
        while let Some(start) = starts.next() {
            match self.start(&start).await {
                Ok(Some(execution)) => {
                    self.job.started(&start, execution.clone(), time::now());
                    self.watch(execution, closed.clone());
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(schedule_id = %self.job.schedule_id, "scheduled start retried: {e}");
                    let mut rest = vec![start];
                    rest.extend(starts);
                    rest.append(&mut self.job.buffer);
                    self.job.buffer = rest;
                    return false;
                }
            }
        }
        true
    }

    /// Starts one workflow; None when its id is taken by a run this start did not make.
    async fn start(&self, start: &BufferedStart) -> Result<Option<WorkflowExecution>> {
        let request = start_request(&self.job, start);
        let workflow_id = request.workflow_id.clone();
        match self.workflows.start(request).await {
            Ok(run_id) => Ok(Some(WorkflowExecution {
                workflow_id,
                run_id,
            })),
            Err(status) if status.code() == tonic::Code::AlreadyExists => {
                tracing::info!(schedule_id = %self.job.schedule_id, workflow_id, "scheduled workflow already running");
                Ok(None)
            }
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::NotFound
                        | tonic::Code::FailedPrecondition
                ) =>
            {
                tracing::warn!(schedule_id = %self.job.schedule_id, workflow_id, "scheduled start refused: {}", status.message());
                Ok(None)
            }
            Err(status) => Err(WorkerError::Unavailable(status.message().to_owned())),
        }
    }

    async fn stop_running(&self, execution: WorkflowExecution, terminate: bool) {
        let namespace = self.job.namespace.clone();
        let request_id = request_id_of(&self.job, &execution.run_id);
        let outcome = if terminate {
            self.workflows
                .terminate(TerminateWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: Some(execution.clone()),
                    reason: "terminated by schedule overlap policy".into(),
                    identity: identity(&self.job),
                    ..Default::default()
                })
                .await
        } else {
            self.workflows
                .request_cancel(RequestCancelWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: Some(execution.clone()),
                    identity: identity(&self.job),
                    request_id,
                    reason: "cancelled by schedule overlap policy".into(),
                    ..Default::default()
                })
                .await
        };
        if let Err(e) = outcome {
            tracing::info!(workflow_id = %execution.workflow_id, "overlap policy: {}", e.message());
        }
    }

    /// Waits, on its own task, for a started workflow's chain to close, and tells the actor.
    fn watch(&self, execution: WorkflowExecution, closed: mpsc::Sender<Closed>) {
        let workflows = self.workflows.clone();
        let namespace = self.job.namespace.clone();
        let stop = self.watchers.clone();
        let name = format!(
            "schedule {} watches {}",
            self.job.schedule_id, execution.workflow_id
        );
        self.supervisor.spawn(name, async move {
            tokio::select! {
                outcome = wait_closed(workflows.as_ref(), namespace, execution) => {
                    let _ = closed.send(outcome).await;
                }
                () = stop.cancelled() => {}
            }
        });
    }
}

fn moved() -> WorkerError {
    WorkerError::Unavailable("the schedule moved to another member; retry".into())
}

/// Long-polls a workflow's close event, following its chain across continue-as-new, until
/// the chain ends; a workflow that is gone (deleted) counts as terminated.
async fn wait_closed(
    workflows: &dyn Workflows,
    namespace: String,
    started: WorkflowExecution,
) -> Closed {
    let mut current = started.clone();
    loop {
        let request = GetWorkflowExecutionHistoryRequest {
            namespace: namespace.clone(),
            execution: Some(current.clone()),
            wait_new_event: true,
            history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
            ..Default::default()
        };
        let event = match workflows.history(request).await {
            Ok(response) => response.history.and_then(|h| h.events.into_iter().last()),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return closed(started, WorkflowExecutionStatus::Terminated, None, None);
            }
            Err(_) => {
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let Some(attributes) = event.and_then(|e| e.attributes) else {
            continue;
        };
        let status = match attributes {
            Attributes::WorkflowExecutionCompletedEventAttributes(a) => {
                return closed(started, WorkflowExecutionStatus::Completed, a.result, None);
            }
            Attributes::WorkflowExecutionFailedEventAttributes(a) => {
                return closed(started, WorkflowExecutionStatus::Failed, None, a.failure);
            }
            Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a) => {
                current.run_id = a.new_execution_run_id;
                continue;
            }
            Attributes::WorkflowExecutionTimedOutEventAttributes(_) => {
                WorkflowExecutionStatus::TimedOut
            }
            Attributes::WorkflowExecutionCanceledEventAttributes(_) => {
                WorkflowExecutionStatus::Canceled
            }
            Attributes::WorkflowExecutionTerminatedEventAttributes(_) => {
                WorkflowExecutionStatus::Terminated
            }
            _ => continue,
        };
        return closed(started, status, None, None);
    }
}

fn closed(
    execution: WorkflowExecution,
    status: WorkflowExecutionStatus,
    result: Option<chronicle_api::common::v1::Payloads>,
    failure: Option<chronicle_api::failure::v1::Failure>,
) -> Closed {
    Closed {
        execution,
        status,
        result,
        failure,
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;
