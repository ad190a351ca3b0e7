//! Queries: a worker answers them from the workflow's state; nothing is recorded. For an
//! answer that reflects every event the server accepted before the query (a signal sent just
//! before it, say), a query to a run with a workflow task pending rides along with that task
//! and is answered in its completion. Otherwise the query becomes a query task on the
//! workflow's task queue, handed to a poller with the full history. Queries live in memory
//! only: the client's deadline bounds them, and a restart forgets them.

use crate::engine::queries::{Route, TaskState, rejected};
use crate::{History, HistoryError, Result};
use chronicle_api::common::v1::{Payloads, WorkflowType};
use chronicle_api::enums::v1::QueryResultType;
use chronicle_api::query::v1::{QueryRejected, WorkflowQuery, WorkflowQueryResult};
use chronicle_api::workflowservice::{
    PollWorkflowTaskQueueResponse, QueryWorkflowRequest, QueryWorkflowResponse,
    RespondQueryTaskCompletedRequest,
};
use chronicle_common::token::{TOKEN_VERSION, TaskToken};
use chronicle_common::{DispatchTask, ExecutionKey, QueueKind};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How a worker answered.
enum Answer {
    Result(Option<Payloads>),
    Failed(String),
}

struct PendingQuery {
    run: ExecutionKey,
    task_queue: String,
    query: WorkflowQuery,
    route: Route,
    answer: oneshot::Sender<Answer>,
}

impl PendingQuery {
    /// What the query holds in memory: its arguments and names, and a fixed share for the
    /// rest.
    fn bytes(&self) -> u64 {
        const OVERHEAD: u64 = 256;
        let names = self.run.workflow_id.len() + self.run.run_id.len() + self.task_queue.len();
        prost::Message::encoded_len(&self.query) as u64 + names as u64 + OVERHEAD
    }
}

/// Queries waiting for a worker's answer, by query id, within a budget of bytes.
#[derive(Default)]
pub(crate) struct Queries(Mutex<Registry>);

#[derive(Default)]
struct Registry {
    queries: HashMap<String, PendingQuery>,
    bytes: u64,
}

impl Registry {
    fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut PendingQuery)> {
        self.queries.iter_mut()
    }

    fn get(&self, id: &str) -> Option<&PendingQuery> {
        self.queries.get(id)
    }

    /// Registers the query unless the registry would grow past its budget.
    fn admit(&mut self, id: String, query: PendingQuery, budget: u64) -> Result<()> {
        let bytes = query.bytes();
        if self.bytes + bytes > budget {
            return Err(HistoryError::overloaded(
                "Too many queries are waiting for workers on this node.".into(),
            ));
        }
        self.bytes += bytes;
        self.queries.insert(id, query);
        Ok(())
    }

    fn remove(&mut self, id: &str) -> Option<PendingQuery> {
        let query = self.queries.remove(id)?;
        self.bytes -= query.bytes();
        Some(query)
    }
}

fn query_task(id: &str, pending: &PendingQuery) -> DispatchTask {
    DispatchTask {
        namespace_id: pending.run.namespace_id.clone(),
        workflow_id: pending.run.workflow_id.clone(),
        run_id: pending.run.run_id.clone(),
        task_queue: pending.task_queue.clone(),
        kind: QueueKind::Workflow as i32,
        query_id: id.to_owned(),
        ..Default::default()
    }
}

impl Queries {
    fn pending(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands the run's buffered queries to the workflow task that is starting.
    pub fn take_buffered(
        &self,
        run: &ExecutionKey,
        task: (i64, i32),
    ) -> HashMap<String, WorkflowQuery> {
        let mut pending = self.pending();
        let mut taken = HashMap::new();
        for (id, query) in pending
            .iter_mut()
            .filter(|(_, q)| q.run == *run && q.route == Route::Buffered)
        {
            query.route = Route::WithTask(task.0, task.1);
            taken.insert(id.clone(), query.query.clone());
        }
        taken
    }

    /// After a change to the run: queries whose workflow task ended unanswered, or that wait
    /// for a task that will not come, go to the next task or become query tasks.
    pub fn settle(&self, run: &ExecutionKey, task: TaskState, dispatch: impl Fn(DispatchTask)) {
        let mut pending = self.pending();
        for (id, query) in pending.iter_mut().filter(|(_, q)| q.run == *run) {
            let Some(next) = query.route.after(task) else {
                continue;
            };
            query.route = next;
            if next == Route::Dispatched {
                dispatch(query_task(id, query));
            }
        }
    }

    /// Answers given in a completed workflow task.
    pub fn answer_all(&self, results: HashMap<String, WorkflowQueryResult>) {
        let mut pending = self.pending();
        for (id, result) in results {
            if let Some(query) = pending.remove(&id) {
                let answer = answer(
                    result.result_type,
                    result.answer,
                    result.failure.map(|f| f.message),
                    result.error_message,
                );
                // The caller may have given up meanwhile; then nobody needs the answer.
                let _ = query.answer.send(answer);
            }
        }
    }
}

fn answer(
    result_type: i32,
    result: Option<Payloads>,
    failure: Option<String>,
    error_message: String,
) -> Answer {
    if result_type == QueryResultType::Answered as i32 {
        Answer::Result(result)
    } else {
        Answer::Failed(failure.filter(|m| !m.is_empty()).unwrap_or(error_message))
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

impl History {
    pub async fn query(
        &self,
        namespace_id: &str,
        r: QueryWorkflowRequest,
        deadline: Instant,
    ) -> Result<QueryWorkflowResponse> {
        let execution = r.execution.unwrap_or_default();
        let id = uuid::Uuid::new_v4().to_string();
        let (answer, answered) = oneshot::channel();
        {
            // Under the workflow's lock no task starts or ends while the query is routed.
            let (_lock, key) = self.lock_named(namespace_id, &execution).await?;
            let (state, _) = self.snapshot(&key).await?;
            if let Some(status) = rejected(&state, r.query_reject_condition) {
                let query_rejected = Some(QueryRejected { status });
                return Ok(QueryWorkflowResponse {
                    query_rejected,
                    ..Default::default()
                });
            }
            let query = PendingQuery {
                run: key,
                task_queue: state.info().task_queue.clone(),
                query: r.query.unwrap_or_default(),
                route: Route::Buffered,
                answer,
            };
            let run = query.run.clone();
            let budget = self.inner.memory.pending_queries_bytes;
            self.inner
                .queries
                .pending()
                .admit(id.clone(), query, budget)?;
            self.inner
                .queries
                .settle(&run, TaskState::of(&state), |task| self.dispatch(task));
        }
        let _registration = Registration {
            queries: &self.inner.queries,
            id,
        };
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
        let key = task.execution_key();
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
            workflow_execution_task_queue: Some(crate::engine::events::normal_queue(
                &info.task_queue,
            )),
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
        let failure = r.failure.map(|f| f.message);
        // The caller may have given up meanwhile; then nobody needs the answer.
        let _ = pending.answer.send(answer(
            r.completed_type,
            r.query_result,
            failure,
            r.error_message,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(args: usize) -> PendingQuery {
        PendingQuery {
            run: ExecutionKey::new("ns", "wf", "run"),
            task_queue: "tq".into(),
            query: WorkflowQuery {
                query_type: "q".into(),
                query_args: Some(Payloads {
                    payloads: vec![chronicle_api::common::v1::Payload {
                        data: vec![0; args],
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            },
            route: Route::Buffered,
            answer: oneshot::channel().0,
        }
    }

    #[test]
    fn the_registry_refuses_queries_past_its_budget_and_frees_their_bytes() {
        let one = query(10_000).bytes();
        let queries = Queries::default();
        let mut registry = queries.pending();
        registry.admit("a".into(), query(10_000), 2 * one).unwrap();
        registry.admit("b".into(), query(10_000), 2 * one).unwrap();
        let refused = registry.admit("c".into(), query(10_000), 2 * one);
        assert!(matches!(
            refused,
            Err(HistoryError::ResourceExhausted { .. })
        ));
        assert!(registry.remove("a").is_some());
        assert_eq!(registry.bytes, one);
        registry.admit("c".into(), query(10_000), 2 * one).unwrap();
        assert_eq!(registry.bytes, 2 * one);
    }
}
