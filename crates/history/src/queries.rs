//! Queries: a worker answers them from the workflow's state; nothing is recorded. A query
//! becomes a query task on the workflow's task queue, handed to a poller with the full
//! history, and the worker's answer completes the waiting QueryWorkflow call. Query tasks
//! live in memory only: the client's deadline bounds them, and a restart forgets them.

use crate::state::MutableState;
use crate::{History, HistoryError, Result};
use chronicle_api::common::v1::{Payloads, WorkflowType};
use chronicle_api::enums::v1::{QueryRejectCondition, QueryResultType, WorkflowExecutionStatus};
use chronicle_api::query::v1::{QueryRejected, WorkflowQuery};
use chronicle_api::taskqueue::v1::TaskQueue;
use chronicle_api::workflowservice::{
    PollWorkflowTaskQueueResponse, QueryWorkflowRequest, QueryWorkflowResponse,
    RespondQueryTaskCompletedRequest,
};
use chronicle_common::token::{TOKEN_VERSION, TaskToken};
use chronicle_common::{DispatchTask, ExecutionKey, QueueKind};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How a worker answered.
enum Answer {
    Result(Option<Payloads>),
    Failed(String),
}

struct PendingQuery {
    query: WorkflowQuery,
    answer: oneshot::Sender<Answer>,
}

/// Queries waiting for a worker's answer, by query id.
#[derive(Default)]
pub(crate) struct Queries(Mutex<HashMap<String, PendingQuery>>);

impl Queries {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingQuery>> {
        self.0.lock().expect("query registry")
    }
}

/// Forgets the query when the QueryWorkflow call ends, however it ends.
struct Registration<'a> {
    queries: &'a Queries,
    id: String,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.queries.pending().remove(&self.id);
    }
}

/// The status a closed run is rejected with, if the condition rejects it.
fn rejected(state: &MutableState, condition: i32) -> Option<i32> {
    let status = state.info().status;
    let reject = match QueryRejectCondition::try_from(condition) {
        Ok(QueryRejectCondition::NotOpen) => !state.is_running(),
        Ok(QueryRejectCondition::NotCompletedCleanly) => {
            !state.is_running() && status != WorkflowExecutionStatus::Completed as i32
        }
        _ => false,
    };
    reject.then_some(status)
}

impl History {
    pub async fn query(
        &self,
        namespace_id: &str,
        r: QueryWorkflowRequest,
        deadline: Instant,
    ) -> Result<QueryWorkflowResponse> {
        let execution = r.execution.unwrap_or_default();
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, &execution.run_id)
            .await?;
        let (state, _) = self.snapshot(&key).await?;
        if let Some(status) = rejected(&state, r.query_reject_condition) {
            let query_rejected = Some(QueryRejected { status });
            return Ok(QueryWorkflowResponse {
                query_rejected,
                ..Default::default()
            });
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (answer, answered) = oneshot::channel();
        let query = r.query.unwrap_or_default();
        self.inner
            .queries
            .pending()
            .insert(id.clone(), PendingQuery { query, answer });
        let _registration = Registration {
            queries: &self.inner.queries,
            id: id.clone(),
        };
        self.inner.matching.add(DispatchTask {
            namespace_id: key.namespace_id.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            task_queue: state.info().task_queue.clone(),
            kind: QueueKind::Workflow as i32,
            query_id: id,
            ..Default::default()
        });
        match tokio::time::timeout_at(deadline, answered).await {
            Ok(Ok(Answer::Result(query_result))) => Ok(QueryWorkflowResponse {
                query_result,
                ..Default::default()
            }),
            Ok(Ok(Answer::Failed(message))) => Err(HistoryError::QueryFailed(message)),
            Ok(Err(_)) | Err(_) => Err(HistoryError::QueryTimedOut),
        }
    }

    /// Hands a query task to a poller: the query and the run's whole history.
    pub(crate) async fn start_query_task(
        &self,
        task: DispatchTask,
    ) -> Result<PollWorkflowTaskQueueResponse> {
        let query = self
            .inner
            .queries
            .pending()
            .get(&task.query_id)
            .map(|p| p.query.clone());
        let query = query.ok_or(HistoryError::StaleTask)?;
        let key = ExecutionKey::new(&task.namespace_id, &task.workflow_id, &task.run_id);
        let (state, _) = self.snapshot(&key).await?;
        let token = TaskToken {
            namespace_id: key.namespace_id.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            query_id: task.query_id,
            version: TOKEN_VERSION,
            ..Default::default()
        };
        let info = state.info();
        let response = PollWorkflowTaskQueueResponse {
            task_token: token.to_bytes(),
            workflow_execution: Some(key.execution()),
            workflow_type: Some(WorkflowType {
                name: info.workflow_type.clone(),
            }),
            previous_started_event_id: state.last_completed_wft_started_event_id,
            attempt: 1,
            query: Some(query),
            workflow_execution_task_queue: Some(TaskQueue {
                name: info.task_queue.clone(),
                kind: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.with_history(response, &key, (1, state.next_event_id, Vec::new()))
            .await
    }

    pub async fn answer_query(
        &self,
        token: TaskToken,
        r: RespondQueryTaskCompletedRequest,
    ) -> Result<()> {
        let pending = self.inner.queries.pending().remove(&token.query_id);
        let pending =
            pending.ok_or_else(|| HistoryError::TaskNotFound("Query task not found.".into()))?;
        let answer = if r.completed_type == QueryResultType::Answered as i32 {
            Answer::Result(r.query_result)
        } else {
            let message = r
                .failure
                .map(|f| f.message)
                .filter(|m| !m.is_empty())
                .unwrap_or(r.error_message);
            Answer::Failed(message)
        };
        // The caller may have given up meanwhile; then nobody needs the answer.
        let _ = pending.answer.send(answer);
        Ok(())
    }
}
