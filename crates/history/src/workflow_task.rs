//! Workflow tasks: handing one to a poller, its completion with commands, its failure and its
//! timeout. Attempts after the first are transient (see [`WorkflowTaskInfo::is_transient`]):
//! their scheduled and started events exist only in the poll response until one completes.

use crate::commands::{Commands, Inputs};
use crate::engine::attributes::AttributeTypes;
use crate::engine::timer::{Attempt, Timer};
use crate::state::WorkflowTaskInfo;
use crate::txn::Txn;
use crate::updates::request_messages;
use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_api::enums::v1::{TimeoutType, WorkflowTaskFailedCause};
use chronicle_api::failure::v1::{Failure, ServerFailureInfo, failure::FailureInfo};
use chronicle_api::history::v1::{
    HistoryEvent, WorkflowTaskCompletedEventAttributes, WorkflowTaskFailedEventAttributes,
    WorkflowTaskScheduledEventAttributes, WorkflowTaskStartedEventAttributes,
    WorkflowTaskTimedOutEventAttributes,
};
use chronicle_api::workflowservice::{
    PollWorkflowTaskQueueRequest, PollWorkflowTaskQueueResponse,
    RespondWorkflowTaskCompletedRequest, RespondWorkflowTaskCompletedResponse,
    RespondWorkflowTaskFailedRequest,
};
use chronicle_common::token::{TOKEN_VERSION, TaskToken};
use chronicle_common::{DispatchTask, ExecutionKey, QueueKind, time};
use tokio::time::Instant;

/// Temporal suggests continue-as-new past these sizes (reference-notes.md).
const SUGGEST_CONTINUE_AS_NEW_EVENTS: i64 = 4096;
const SUGGEST_CONTINUE_AS_NEW_BYTES: i64 = 4 * 1024 * 1024;

/// A completed workflow task's result beyond its own events.
pub(crate) struct Completed {
    /// The chain's next run, to commit with this one (retry, cron, continue-as-new).
    pub successor: Option<Txn>,
    /// The next workflow task, started already: a workflow-task heartbeat's worker gets it in
    /// the response.
    pub inline: Option<WorkflowTaskInfo>,
}

impl Txn {
    /// The worker completed the started workflow task `wft` with `commands`: the task's
    /// completion, each command's events and effects, and the next workflow task if the run
    /// needs one. A bad command fails the whole completion (the caller rejects it).
    pub fn complete_workflow_task(
        &mut self,
        wft: &WorkflowTaskInfo,
        commands: Commands,
        r: RespondWorkflowTaskCompletedRequest,
        inputs: &Inputs,
    ) -> Result<Completed> {
        if commands.closes_run() && self.state.has_buffered() {
            // New events arrived while the worker decided to close: it must see them first.
            self.end_started_workflow_task(wft, unhandled_command(&r.identity));
            return Ok(Completed {
                successor: None,
                inline: None,
            });
        }
        self.materialize(wft);
        let completed_event_id = self.append(WorkflowTaskCompletedEventAttributes {
            scheduled_event_id: wft.scheduled_event_id,
            started_event_id: wft.started_event_id,
            identity: r.identity.clone(),
            sdk_metadata: r.sdk_metadata,
            metering_metadata: r.metering_metadata,
            ..Default::default()
        });
        self.state.workflow_task = None;
        self.state.last_completed_wft_started_event_id = wft.started_event_id;
        self.set_sticky(r.sticky_attributes);
        let outcome = commands.apply(self, inputs, completed_event_id, &r.identity)?;
        let force = r.force_create_new_workflow_task;
        let mut inline = None;
        let updates_waiting = inputs.updates.waiting_for_worker(self);
        if self.is_running()
            && (self.flush_buffered() > 0
                || outcome.needs_workflow_task
                || force
                || updates_waiting)
        {
            self.schedule_workflow_task(1);
            if force && r.return_new_workflow_task {
                // Workflow task heartbeat: the worker gets the next task in this response.
                let request_id = self.ctx.request_id();
                inline = Some(self.start_workflow_task(&r.identity, &request_id));
            }
        }
        Ok(Completed {
            successor: outcome.successor,
            inline,
        })
    }

    /// The started workflow task a token names, or `TaskNotFound`.
    pub fn started_workflow_task(&self, token: &TaskToken) -> Result<WorkflowTaskInfo> {
        self.state
            .workflow_task
            .clone()
            .filter(|w| {
                w.is_started()
                    && w.scheduled_event_id == token.scheduled_event_id
                    && w.started_event_id == token.started_event_id
                    && w.attempt == token.attempt
            })
            .ok_or_else(|| HistoryError::TaskNotFound("Workflow task not found.".into()))
    }

    /// Starts the scheduled workflow task on a worker and arms its start-to-close timeout.
    fn start_workflow_task(&mut self, identity: &str, request_id: &str) -> WorkflowTaskInfo {
        let mut wft = self
            .state
            .workflow_task
            .clone()
            .expect("a scheduled workflow task");
        let size = self.state.history_size_bytes;
        let started = WorkflowTaskStartedEventAttributes {
            scheduled_event_id: wft.scheduled_event_id,
            identity: identity.to_owned(),
            request_id: request_id.to_owned(),
            suggest_continue_as_new: self.state.next_event_id > SUGGEST_CONTINUE_AS_NEW_EVENTS
                || size > SUGGEST_CONTINUE_AS_NEW_BYTES,
            history_size_bytes: size,
            ..Default::default()
        };
        wft.started_event_id = if wft.is_transient() {
            wft.scheduled_event_id + 1
        } else {
            self.append(started)
        };
        wft.started_time = Some(time::timestamp(self.now));
        wft.identity = identity.to_owned();
        wft.request_id = request_id.to_owned();
        self.finish_dispatch(wft.task_id);
        let timeout = time::optional_duration(wft.timeout.as_ref(), "timeout")
            .ok()
            .flatten()
            .unwrap_or(chronicle_common::limits::DEFAULT_WORKFLOW_TASK_TIMEOUT);
        self.add_timer(timeout, Timer::WorkflowTaskTimeout(wft.current_attempt()));
        self.state.workflow_task = Some(wft.clone());
        wft
    }

    /// The scheduled and started events of a transient task, as its poller sees them.
    fn transient_events(&self, wft: &WorkflowTaskInfo) -> Vec<HistoryEvent> {
        if !wft.is_transient() {
            return Vec::new();
        }
        let (scheduled, started) = self.workflow_task_events(wft);
        let at = |t: &Option<chronicle_api::wkt::Timestamp>| {
            t.as_ref().map(time::from_timestamp).unwrap_or(self.now)
        };
        let mut scheduled = crate::events::event(scheduled, at(&wft.scheduled_time));
        scheduled.event_id = wft.scheduled_event_id;
        let mut started = crate::events::event(started, at(&wft.started_time));
        started.event_id = wft.started_event_id;
        vec![scheduled, started]
    }

    fn workflow_task_events(
        &self,
        wft: &WorkflowTaskInfo,
    ) -> (
        WorkflowTaskScheduledEventAttributes,
        WorkflowTaskStartedEventAttributes,
    ) {
        (
            WorkflowTaskScheduledEventAttributes {
                task_queue: Some(self.task_queue_named(&wft.task_queue)),
                start_to_close_timeout: wft.timeout,
                attempt: wft.attempt,
            },
            WorkflowTaskStartedEventAttributes {
                scheduled_event_id: wft.scheduled_event_id,
                identity: wft.identity.clone(),
                request_id: wft.request_id.clone(),
                history_size_bytes: self.state.history_size_bytes,
                ..Default::default()
            },
        )
    }

    /// A transient task that ends (completes, or fails with new events behind it) is written
    /// to history after all, so the events that follow reference real ids.
    fn materialize(&mut self, wft: &WorkflowTaskInfo) {
        if wft.is_transient() {
            let (scheduled, started) = self.workflow_task_events(wft);
            self.append(scheduled);
            self.append(started);
        }
    }

    /// Ends the started workflow task as failed or timed out and schedules the next attempt.
    /// New events that arrived meanwhile make the next task an ordinary first attempt.
    fn end_started_workflow_task(&mut self, wft: &WorkflowTaskInfo, ending: WorkflowTaskEnding) {
        if !wft.is_transient() {
            match ending {
                WorkflowTaskEnding::Failed {
                    cause,
                    failure,
                    identity,
                } => {
                    self.append(WorkflowTaskFailedEventAttributes {
                        scheduled_event_id: wft.scheduled_event_id,
                        started_event_id: wft.started_event_id,
                        cause: cause as i32,
                        failure: failure.map(|f| *f),
                        identity,
                        ..Default::default()
                    });
                }
                WorkflowTaskEnding::TimedOut => {
                    self.append(WorkflowTaskTimedOutEventAttributes {
                        scheduled_event_id: wft.scheduled_event_id,
                        started_event_id: wft.started_event_id,
                        timeout_type: TimeoutType::StartToClose as i32,
                    });
                }
            }
        }
        self.state.workflow_task = None;
        // The worker may have lost the workflow: the next attempt carries the full history.
        self.set_sticky(None);
        let attempt = if self.flush_buffered() > 0 {
            1
        } else {
            wft.attempt + 1
        };
        self.schedule_workflow_task(attempt);
    }

    /// Fails the workflow task a worker is running (the run is being closed from outside) so
    /// the history stays well formed; a merely scheduled task is withdrawn.
    pub fn fail_in_flight_workflow_task(
        &mut self,
        cause: WorkflowTaskFailedCause,
        failure: Option<Failure>,
        identity: &str,
    ) {
        let Some(wft) = self.state.workflow_task.take() else {
            return;
        };
        if wft.is_started() && !wft.is_transient() {
            self.append(WorkflowTaskFailedEventAttributes {
                scheduled_event_id: wft.scheduled_event_id,
                started_event_id: wft.started_event_id,
                cause: cause as i32,
                failure,
                identity: identity.to_owned(),
                ..Default::default()
            });
        } else if !wft.is_started() {
            self.finish_dispatch(wft.task_id);
        }
    }
}

enum WorkflowTaskEnding {
    Failed {
        cause: WorkflowTaskFailedCause,
        failure: Option<Box<Failure>>,
        identity: String,
    },
    TimedOut,
}

impl History {
    /// Long-polls a workflow task queue; an empty response means the deadline passed.
    pub async fn poll_workflow_task(
        &self,
        namespace: &NamespaceRef,
        r: PollWorkflowTaskQueueRequest,
        deadline: Instant,
    ) -> Result<PollWorkflowTaskQueueResponse> {
        let queue = r.task_queue.map(|q| q.name).unwrap_or_default();
        let request_id = uuid::Uuid::new_v4().to_string();
        let started = self
            .poll_queue(
                namespace,
                &queue,
                QueueKind::Workflow,
                &r.identity,
                deadline,
                |task| self.record_workflow_task_started(task, &r.identity, &request_id),
            )
            .await?;
        Ok(started.unwrap_or_default())
    }

    async fn record_workflow_task_started(
        &self,
        task: DispatchTask,
        identity: &str,
        request_id: &str,
    ) -> Result<PollWorkflowTaskQueueResponse> {
        if !task.query_id.is_empty() {
            return self.start_query_task(task).await;
        }
        let key = chronicle_common::ExecutionKey::new(
            &task.namespace_id,
            &task.workflow_id,
            &task.run_id,
        );
        let (response, events) = self
            .update(&key, |txn| {
                let scheduled = txn.state.workflow_task.as_ref();
                if !scheduled.is_some_and(|w| w.task_id == task.task_id && !w.is_started()) {
                    return Err(HistoryError::StaleTask);
                }
                let wft = txn.start_workflow_task(identity, request_id);
                let response = workflow_task_response(txn, &wft, self);
                // A sticky worker has the workflow cached: it needs only what is new.
                let sticky = wft.task_queue != txn.info().task_queue;
                let from = if sticky {
                    response.previous_started_event_id + 1
                } else {
                    1
                };
                let events = (from, txn.state.next_event_id, txn.transient_events(&wft));
                Ok((response, events))
            })
            .await?;
        self.with_history(response, &key, events).await
    }

    /// Fills in the first page of the history the worker needs to run the task.
    pub(crate) async fn with_history(
        &self,
        mut response: PollWorkflowTaskQueueResponse,
        key: &chronicle_common::ExecutionKey,
        (from, to, transient): (i64, i64, Vec<HistoryEvent>),
    ) -> Result<PollWorkflowTaskQueueResponse> {
        let page = self
            .history_page(key, from, to, transient, usize::MAX)
            .await?;
        response.history = Some(chronicle_api::history::v1::History {
            events: page.events,
        });
        response.next_page_token = page.next_page_token;
        Ok(response)
    }

    pub async fn complete_workflow_task(
        &self,
        token: TaskToken,
        mut r: RespondWorkflowTaskCompletedRequest,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        let key = token.execution_key();
        let _lock = self.lock_run(&key).await;
        let mut txn = self.load_running(&key).await?;
        let wft = txn.started_workflow_task(&token)?;
        self.inner
            .queries
            .answer_all(std::mem::take(&mut r.query_results));
        let commands = Commands::new(
            std::mem::take(&mut r.commands),
            std::mem::take(&mut r.messages),
        );
        let inputs = self.completion_inputs(&mut txn, &commands, &r).await?;
        let identity = r.identity.clone();
        let completed = match txn.complete_workflow_task(&wft, commands, r, &inputs) {
            Ok(completed) => completed,
            Err(HistoryError::BadCommand { cause, message }) => {
                drop(txn);
                return self
                    .reject_commands(&key, &token, cause, message, &identity, false)
                    .await;
            }
            Err(HistoryError::RunLimitExceeded { cause, message }) => {
                drop(txn);
                return self
                    .reject_commands(&key, &token, cause, message, &identity, true)
                    .await;
            }
            Err(HistoryError::HistoryLimitExceeded(limit)) => {
                drop(txn);
                return self.terminate_over_history_limit(&key, limit).await;
            }
            Err(e) => return Err(e),
        };
        let inline = completed.inline.map(|wft| {
            (
                workflow_task_response(&txn, &wft, self),
                txn.state.next_event_id,
            )
        });
        let mut txns = vec![txn];
        txns.extend(completed.successor);
        self.commit_all(txns).await?;
        let workflow_task = match inline {
            Some((task, next_event_id)) => Some(
                self.with_history(task, &key, (1, next_event_id, Vec::new()))
                    .await?,
            ),
            None => None,
        };
        Ok(RespondWorkflowTaskCompletedResponse {
            workflow_task,
            ..Default::default()
        })
    }

    /// Reads what applying a completion's commands needs: the namespace's limits and
    /// attribute types, the started event if the run may continue, the run's pending
    /// updates, and whether the worker's sticky queue is polled.
    async fn completion_inputs(
        &self,
        txn: &mut Txn,
        commands: &Commands,
        r: &RespondWorkflowTaskCompletedRequest,
    ) -> Result<Inputs> {
        let sticky = r.sticky_attributes.as_ref();
        if let Some(queue) = sticky.and_then(|s| s.worker_task_queue.as_ref())
            && self.sticky_polled(&txn.key.namespace_id, &queue.name)
        {
            txn.ctx.note_sticky_poller(&queue.name);
        }
        let first_event = match commands.closing() {
            Some(closing) => self.first_event_for(txn, &closing).await?,
            None => None,
        };
        let names = commands.attribute_names();
        let attribute_types = if names.clone().next().is_some() {
            self.attribute_types(&txn.key.namespace_id, names).await?
        } else {
            AttributeTypes::default()
        };
        Ok(Inputs {
            limits: self.limits(&txn.info().namespace_name).clone(),
            attribute_types,
            first_event,
            updates: self.inner.updates.pending(&txn.key),
        })
    }

    /// A bad command fails the workflow task instead of completing it: nothing the commands
    /// did is kept, and the worker is told why. A command over a limit that ends the run
    /// (`terminate`) also terminates it, the message as reason, as Temporal's history does.
    async fn reject_commands(
        &self,
        key: &chronicle_common::ExecutionKey,
        token: &TaskToken,
        cause: WorkflowTaskFailedCause,
        message: String,
        identity: &str,
        terminate: bool,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        let mut txn = self.load_running(key).await?;
        let wft = txn.started_workflow_task(token)?;
        // The server found the fault, as Temporal marks it.
        let failure = Failure {
            message: message.clone(),
            failure_info: Some(FailureInfo::ServerFailureInfo(ServerFailureInfo {
                non_retryable: false,
            })),
            ..Default::default()
        };
        let ending = WorkflowTaskEnding::Failed {
            cause,
            failure: Some(Box::new(failure)),
            identity: identity.to_owned(),
        };
        txn.end_started_workflow_task(&wft, ending);
        if terminate {
            tracing::warn!(key = %key, reason = %message, "terminating a run over a limit");
            txn.terminate(&message, None, "history-service");
        }
        self.commit(txn).await?;
        Err(HistoryError::BadCommand { cause, message })
    }

    /// As in Temporal, the server ends the run: the workflow task is force-closed and the run
    /// terminated by "history-service".
    async fn terminate_over_history_limit(
        &self,
        key: &chronicle_common::ExecutionKey,
        limit: crate::limits::HistoryLimit,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        let mut txn = self.load_running(key).await?;
        tracing::warn!(key = %key, reason = limit.reason(), "terminating a run over a limit");
        txn.terminate(limit.reason(), None, "history-service");
        self.commit(txn).await?;
        Err(HistoryError::HistoryLimitExceeded(limit))
    }

    pub async fn fail_workflow_task(
        &self,
        token: TaskToken,
        r: RespondWorkflowTaskFailedRequest,
    ) -> Result<()> {
        let cause = WorkflowTaskFailedCause::try_from(r.cause)
            .unwrap_or(WorkflowTaskFailedCause::Unspecified);
        let ending = WorkflowTaskEnding::Failed {
            cause,
            failure: r.failure.map(Box::new),
            identity: r.identity,
        };
        self.update(&token.execution_key(), |txn| {
            let wft = txn.started_workflow_task(&token)?;
            txn.end_started_workflow_task(&wft, ending);
            Ok(())
        })
        .await
    }

    pub(crate) async fn fire_workflow_task_timeout(
        &self,
        key: &ExecutionKey,
        attempt: Attempt,
    ) -> Result<()> {
        self.update(key, |txn| txn.time_out_workflow_task(attempt))
            .await
    }

    pub(crate) async fn fire_workflow_backoff(&self, key: &ExecutionKey) -> Result<()> {
        self.update(key, Txn::end_backoff).await
    }
}

impl Txn {
    /// The started workflow task's start-to-close timeout fired.
    pub fn time_out_workflow_task(&mut self, attempt: Attempt) -> Result<()> {
        let wft = self.state.workflow_task.clone();
        let wft = wft.filter(|w| w.is_started() && w.is_attempt(attempt));
        let wft = wft.ok_or(HistoryError::StaleTask)?;
        self.end_started_workflow_task(&wft, WorkflowTaskEnding::TimedOut);
        Ok(())
    }

    /// The first workflow task of a run that started after a delay or retry backoff.
    pub fn end_backoff(&mut self) -> Result<()> {
        if self.state.workflow_task.is_some() {
            return Err(HistoryError::StaleTask);
        }
        self.schedule_workflow_task_if_needed();
        Ok(())
    }
}

fn unhandled_command(identity: &str) -> WorkflowTaskEnding {
    WorkflowTaskEnding::Failed {
        cause: WorkflowTaskFailedCause::UnhandledCommand,
        failure: Some(Box::new(Failure {
            message: "UnhandledCommand: new events arrived while the workflow task ran".into(),
            ..Default::default()
        })),
        identity: identity.to_owned(),
    }
}

/// Everything of the poll response but the history; the run's buffered queries and
/// undecided updates ride along.
fn workflow_task_response(
    txn: &Txn,
    wft: &WorkflowTaskInfo,
    history: &History,
) -> PollWorkflowTaskQueueResponse {
    let inner = &history.inner;
    let queries = inner
        .queries
        .take_buffered(&txn.key, (wft.scheduled_event_id, wft.attempt));
    let info = txn.info();
    let token = TaskToken {
        namespace_id: info.namespace_id.clone(),
        workflow_id: info.workflow_id.clone(),
        run_id: info.run_id.clone(),
        scheduled_event_id: wft.scheduled_event_id,
        started_event_id: wft.started_event_id,
        attempt: wft.attempt,
        activity_id: String::new(),
        version: TOKEN_VERSION,
        query_id: String::new(),
    };
    PollWorkflowTaskQueueResponse {
        task_token: token.to_bytes(),
        workflow_execution: Some(txn.key.execution()),
        workflow_type: Some(chronicle_api::common::v1::WorkflowType {
            name: info.workflow_type.clone(),
        }),
        previous_started_event_id: txn.state.last_completed_wft_started_event_id,
        started_event_id: wft.started_event_id,
        attempt: wft.attempt,
        workflow_execution_task_queue: Some(txn.task_queue_named(&info.task_queue)),
        scheduled_time: wft.scheduled_time,
        started_time: wft.started_time,
        messages: request_messages(inner.updates.undecided(&txn.key), wft.started_event_id),
        queries,
        ..Default::default()
    }
}
