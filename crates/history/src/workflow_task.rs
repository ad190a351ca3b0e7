//! Workflow tasks: handing one to a poller, its completion with commands, its failure and its
//! timeout. Attempts after the first are transient (see [`WorkflowTaskInfo::is_transient`]):
//! their scheduled and started events exist only in the poll response until one completes.

use crate::engine::attributes::AttributeTypes;
use crate::engine::change::Change;
use crate::engine::commands::{Commands, Inputs};
use crate::engine::state::WorkflowTaskInfo;
use crate::engine::timer::Attempt;
use crate::engine::updates::request_messages;
use crate::engine::workflow_task::{SuggestAt, WorkflowTaskEnding};
use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_api::enums::v1::WorkflowTaskFailedCause;
use chronicle_api::failure::v1::{Failure, ServerFailureInfo, failure::FailureInfo};
use chronicle_api::history::v1::HistoryEvent;
use chronicle_api::workflowservice::{
    PollWorkflowTaskQueueRequest, PollWorkflowTaskQueueResponse,
    RespondWorkflowTaskCompletedRequest, RespondWorkflowTaskCompletedResponse,
    RespondWorkflowTaskFailedRequest,
};
use chronicle_common::token::{TOKEN_VERSION, TaskToken};
use chronicle_common::{DispatchTask, ExecutionKey, QueueKind};
use tokio::time::Instant;

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

    pub(crate) async fn record_workflow_task_started(
        &self,
        task: DispatchTask,
        identity: &str,
        request_id: &str,
    ) -> Result<PollWorkflowTaskQueueResponse> {
        // The run, and its queries, live with the shard's owner.
        if let Some(owner) = self.remote_owner_of(&task) {
            return self
                .start_remotely(&owner, &task, "", identity, request_id)
                .await;
        }
        if !task.query_id.is_empty() {
            return self.start_query_task(task).await;
        }
        let key = chronicle_common::ExecutionKey::new(
            &task.namespace_id,
            &task.workflow_id,
            &task.run_id,
        );
        let (response, events, namespace) = self
            .update(&key, |change| {
                let scheduled = change.state.workflow_task.as_ref();
                let Some(scheduled) = scheduled
                    .filter(|w| w.task_id == task.task_id && !w.is_started())
                    .cloned()
                else {
                    return Err(HistoryError::StaleTask);
                };
                let suggest = SuggestAt::of(self.limits(&change.info().namespace_name));
                let wft = change.start_workflow_task(scheduled, identity, request_id, suggest);
                let response = workflow_task_response(change, &wft, self);
                // A sticky worker has the workflow cached: it needs only what is new.
                let sticky = wft.task_queue != change.info().task_queue;
                let from = if sticky {
                    response.previous_started_event_id + 1
                } else {
                    1
                };
                let events = (
                    from,
                    change.state.next_event_id,
                    change.state.transient_events(&wft, change.now),
                );
                Ok((response, events, change.info().namespace_name.clone()))
            })
            .await?;
        crate::poll::record_schedule_to_start(
            &namespace,
            "Workflow",
            &task.task_queue,
            response.scheduled_time.as_ref(),
            response.started_time.as_ref(),
        );
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

    /// A task handed out by a change, with its whole history, read once the change committed.
    pub(crate) async fn hand_over(
        &self,
        handed: Option<Handed>,
        key: &chronicle_common::ExecutionKey,
    ) -> Result<Option<PollWorkflowTaskQueueResponse>> {
        let Some(Handed(task, next_event_id)) = handed else {
            return Ok(None);
        };
        let task = self
            .with_history(task, key, (1, next_event_id, Vec::new()))
            .await?;
        Ok(Some(task))
    }

    pub async fn complete_workflow_task(
        &self,
        token: TaskToken,
        mut r: RespondWorkflowTaskCompletedRequest,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        let key = token.execution_key();
        let _lock = self.lock_run(&key).await;
        let mut change = self.load_running(&key).await?;
        let wft = change.started_workflow_task(&token)?;
        self.inner
            .queries
            .answer_all(std::mem::take(&mut r.query_results));
        let commands = Commands::new(
            std::mem::take(&mut r.commands),
            std::mem::take(&mut r.messages),
        );
        let inputs = self.completion_inputs(&mut change, &commands, &r).await?;
        let identity = r.identity.clone();
        let completed = match change.complete_workflow_task(&wft, commands, r, &inputs) {
            Ok(completed) => completed,
            Err(HistoryError::BadCommand { cause, message }) => {
                drop(change);
                return self
                    .reject_commands(&key, &token, cause, message, &identity, false)
                    .await;
            }
            Err(HistoryError::RunLimitExceeded { cause, message }) => {
                drop(change);
                return self
                    .reject_commands(&key, &token, cause, message, &identity, true)
                    .await;
            }
            Err(HistoryError::HistoryLimitExceeded(limit)) => {
                drop(change);
                return self.terminate_over_history_limit(&key, limit).await;
            }
            Err(e) => return Err(e),
        };
        let inline = completed.inline.map(|wft| Handed::of(&change, &wft, self));
        let info = change.info();
        let (namespace_name, workflow_type) =
            (info.namespace_name.clone(), info.workflow_type.clone());
        let mut changes = vec![change];
        changes.extend(completed.successor);
        self.commit_all(changes).await?;
        // Eager activities, started by the commit: the worker that asked runs them.
        let mut activity_tasks = Vec::with_capacity(completed.eager_activities.len());
        for ai in completed.eager_activities {
            let task = self
                .activity_task(&namespace_name, &key, ai, workflow_type.clone())
                .await?;
            activity_tasks.push(task);
        }
        let workflow_task = self.hand_over(inline, &key).await?;
        Ok(RespondWorkflowTaskCompletedResponse {
            workflow_task,
            activity_tasks,
            ..Default::default()
        })
    }

    /// Reads what applying a completion's commands needs: the namespace's limits and
    /// attribute types, the started event if the run may continue, the run's pending
    /// updates, and whether the worker's sticky queue is polled.
    async fn completion_inputs(
        &self,
        change: &mut Change,
        commands: &Commands,
        r: &RespondWorkflowTaskCompletedRequest,
    ) -> Result<Inputs> {
        let sticky = r.sticky_attributes.as_ref();
        if let Some(queue) = sticky.and_then(|s| s.worker_task_queue.as_ref()) {
            self.note_sticky_poller(&mut change.ctx, &change.key.namespace_id, &queue.name);
        }
        let first_event = match commands.closing() {
            Some(closing) => self.first_event_for(change, &closing).await?,
            None => None,
        };
        let names = commands.attribute_names();
        let attribute_types = if names.clone().next().is_some() {
            self.attribute_types(&change.key.namespace_id, names)
                .await?
        } else {
            AttributeTypes::default()
        };
        Ok(Inputs {
            limits: self.limits(&change.info().namespace_name).clone(),
            attribute_types,
            first_event,
            updates: self.inner.updates.pending(&change.key),
        })
    }

    /// A bad command fails the workflow task instead of completing it: nothing the commands
    /// did is kept, and the worker is told why. A command over a limit that ends the run
    /// (`terminate`) also terminates it, the message as reason, as Temporal's history does.
    /// A retry that fails again is only refused, as Temporal refuses it: the task stays
    /// started until its (growing) timeout, so a workflow that cannot progress is retried
    /// slowly instead of at once, and its history does not grow.
    async fn reject_commands(
        &self,
        key: &chronicle_common::ExecutionKey,
        token: &TaskToken,
        cause: WorkflowTaskFailedCause,
        message: String,
        identity: &str,
        terminate: bool,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        let mut change = self.load_running(key).await?;
        let wft = change.started_workflow_task(token)?;
        if wft.attempt > 1 {
            return Err(HistoryError::BadCommand { cause, message });
        }
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
        change.end_started_workflow_task(&wft, ending);
        if terminate {
            tracing::warn!(key = %key, reason = %message, "terminating a run over a limit");
            change.terminate(&message, None, "history-service");
        }
        self.commit(change).await?;
        Err(HistoryError::BadCommand { cause, message })
    }

    /// As in Temporal, the server ends the run: the workflow task is force-closed and the run
    /// terminated by "history-service".
    async fn terminate_over_history_limit(
        &self,
        key: &chronicle_common::ExecutionKey,
        limit: crate::engine::limits::HistoryLimit,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        let mut change = self.load_running(key).await?;
        tracing::warn!(key = %key, reason = limit.reason(), "terminating a run over a limit");
        change.terminate(limit.reason(), None, "history-service");
        self.commit(change).await?;
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
        self.update(&token.execution_key(), |change| {
            let wft = change.started_workflow_task(&token)?;
            change.end_started_workflow_task(&wft, ending);
            Ok(())
        })
        .await
    }

    pub(crate) async fn fire_workflow_task_timeout(
        &self,
        key: &ExecutionKey,
        attempt: Attempt,
    ) -> Result<()> {
        self.update(key, |change| change.time_out_workflow_task(attempt))
            .await
    }

    pub(crate) async fn fire_workflow_backoff(&self, key: &ExecutionKey) -> Result<()> {
        self.update(key, Change::end_backoff).await
    }
}

/// A workflow task a change started for a worker that gets it in a response (a workflow task
/// heartbeat, an eager start): the poll response without its history, and where the history
/// ends.
pub(crate) struct Handed(PollWorkflowTaskQueueResponse, i64);

impl Handed {
    pub(crate) fn of(change: &Change, wft: &WorkflowTaskInfo, history: &History) -> Self {
        Self(
            workflow_task_response(change, wft, history),
            change.state.next_event_id,
        )
    }
}

/// Everything of the poll response but the history; the run's buffered queries and
/// undecided updates ride along.
fn workflow_task_response(
    change: &Change,
    wft: &WorkflowTaskInfo,
    history: &History,
) -> PollWorkflowTaskQueueResponse {
    let inner = &history.inner;
    let queries = inner
        .queries
        .take_buffered(&change.key, (wft.scheduled_event_id, wft.attempt));
    let info = change.info();
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
        workflow_execution: Some(change.key.execution()),
        workflow_type: Some(chronicle_api::common::v1::WorkflowType {
            name: info.workflow_type.clone(),
        }),
        previous_started_event_id: change.state.last_completed_wft_started_event_id,
        started_event_id: wft.started_event_id,
        attempt: wft.attempt,
        workflow_execution_task_queue: Some(change.state.task_queue_named(&info.task_queue)),
        scheduled_time: wft.scheduled_time,
        started_time: wft.started_time,
        messages: request_messages(inner.updates.undecided(&change.key), wft.started_event_id),
        queries,
        ..Default::default()
    }
}
