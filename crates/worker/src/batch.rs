//! Batch operations: terminate, cancel or signal every workflow a visibility query selects.
//! A job's request and progress are stored after every page, so a restart resumes it where
//! it was; runs are visited in start order, which closing them does not change. A shutdown
//! stops a job between pages, still running in the store, for the next start to resume.

use crate::{Result, WorkerError};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::enums::v1::{BatchOperationState, BatchOperationType};
use chronicle_api::workflowservice::start_batch_operation_request::Operation;
use chronicle_api::workflowservice::{
    DescribeBatchOperationResponse, RequestCancelWorkflowExecutionRequest,
    SignalWorkflowExecutionRequest, StartBatchOperationRequest, TerminateWorkflowExecutionRequest,
};
use chronicle_common::supervisor::CancellationToken;
use chronicle_common::time;
use chronicle_history::History;
use chronicle_persistence::{JobRow, JobStore};
use prost::Message;
use std::sync::Arc;

/// What is stored of a job.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BatchJob {
    #[prost(message, optional, tag = "1")]
    pub request: Option<StartBatchOperationRequest>,
    #[prost(message, optional, tag = "2")]
    pub status: Option<DescribeBatchOperationResponse>,
    /// Where the next page of runs starts.
    #[prost(bytes = "vec", tag = "3")]
    pub page_token: Vec<u8>,
}

impl BatchJob {
    /// Jobs are made with their status, and a stored one without it is refused as corrupt
    /// when read (`decode`).
    #[allow(clippy::expect_used)] // cannot fail: see above
    pub fn status(&self) -> &DescribeBatchOperationResponse {
        self.status
            .as_ref()
            .expect("stored jobs carry their status")
    }

    fn status_mut(&mut self) -> &mut DescribeBatchOperationResponse {
        self.status.get_or_insert_with(Default::default)
    }

    pub fn running(&self) -> bool {
        self.status().state == BatchOperationState::Running as i32
    }
}

pub(crate) fn operation_type(operation: Option<&Operation>) -> Result<BatchOperationType> {
    match operation {
        Some(Operation::TerminationOperation(_)) => Ok(BatchOperationType::TerminateWorkflow),
        Some(Operation::CancellationOperation(_)) => Ok(BatchOperationType::CancelWorkflow),
        Some(Operation::SignalOperation(_)) => Ok(BatchOperationType::SignalWorkflow),
        Some(_) => Err(WorkerError::InvalidArgument(
            "This batch operation is not supported by Chronicle yet.".into(),
        )),
        None => Err(WorkerError::InvalidArgument(
            "Batch operation is not set on request.".into(),
        )),
    }
}

/// Runs a job to its end (or until it is stopped), storing progress page by page.
pub(crate) struct Runner {
    pub history: History,
    pub store: Arc<dyn JobStore>,
    pub namespace_id: String,
    pub shutdown: CancellationToken,
}

/// How a job's pages ended.
enum Pages {
    /// Every page is done, or StopBatchOperation ended the job.
    Ended,
    /// The node is shutting down: the job stays running for the next start.
    Interrupted,
}

impl Runner {
    pub async fn save(&self, job: &BatchJob) -> Result<()> {
        let row = JobRow {
            namespace_id: self.namespace_id.clone(),
            job_id: job.status().job_id.clone(),
            running: job.running(),
            data: job.encode_to_vec(),
        };
        Ok(self.store.put_job(&row).await?)
    }

    /// Whether the job was stopped meanwhile (its stored state is no longer running).
    async fn stopped(&self, job_id: &str) -> bool {
        let stored = self
            .store
            .job(&self.namespace_id, job_id)
            .await
            .ok()
            .flatten();
        stored.is_some_and(|row| !row.running)
    }

    pub async fn run(self, mut job: BatchJob) {
        let job_id = job.status().job_id.clone();
        let outcome = self.pages(&mut job).await;
        if matches!(outcome, Ok(Pages::Interrupted)) || self.stopped(&job_id).await {
            return;
        }
        let state = match &outcome {
            Ok(_) => BatchOperationState::Completed,
            Err(e) => {
                tracing::warn!(job_id, "batch operation failed: {e}");
                BatchOperationState::Failed
            }
        };
        let status = job.status_mut();
        status.state = state as i32;
        status.close_time = Some(time::timestamp(time::now()));
        if let Err(e) = self.save(&job).await {
            tracing::error!(job_id, "batch operation result not stored: {e}");
        }
    }

    async fn pages(&self, job: &mut BatchJob) -> Result<Pages> {
        let request = job.request.clone().unwrap_or_default();
        loop {
            let page = self
                .history
                .list_for_batch(
                    &self.namespace_id,
                    &request.visibility_query,
                    &job.page_token,
                )
                .await?;
            for info in &page.executions {
                self.apply(
                    job,
                    info.execution
                        .as_ref()
                        .unwrap_or(&WorkflowExecution::default()),
                )
                .await;
            }
            job.page_token = page.next_page_token;
            // A stop request wins over this page's progress.
            if self.stopped(&job.status().job_id).await {
                return Ok(Pages::Ended);
            }
            self.save(job).await?;
            if job.page_token.is_empty() {
                return Ok(Pages::Ended);
            }
            if self.shutdown.is_cancelled() {
                return Ok(Pages::Interrupted);
            }
        }
    }

    /// Applies the operation to one run; its outcome only counts.
    async fn apply(&self, job: &mut BatchJob, execution: &WorkflowExecution) {
        let request = job.request.clone().unwrap_or_default();
        let job_id = job.status().job_id.clone();
        let ns = &self.namespace_id;
        let target = Some(execution.clone());
        let applied = match request.operation {
            Some(Operation::TerminationOperation(op)) => {
                let r = TerminateWorkflowExecutionRequest {
                    workflow_execution: target,
                    reason: request.reason,
                    details: op.details,
                    identity: op.identity,
                    ..Default::default()
                };
                self.history.terminate(ns, r).await
            }
            Some(Operation::CancellationOperation(op)) => {
                let r = RequestCancelWorkflowExecutionRequest {
                    workflow_execution: target,
                    reason: request.reason,
                    identity: op.identity,
                    request_id: job_id,
                    ..Default::default()
                };
                self.history.request_cancel(ns, r).await
            }
            Some(Operation::SignalOperation(op)) => {
                let r = SignalWorkflowExecutionRequest {
                    workflow_execution: target,
                    signal_name: op.signal,
                    input: op.input,
                    header: op.header,
                    identity: op.identity,
                    request_id: format!("{job_id}:{}", execution.run_id),
                    ..Default::default()
                };
                self.history.signal(ns, r).await
            }
            _ => return,
        };
        let status = job.status_mut();
        match applied {
            Ok(()) => status.complete_operation_count += 1,
            Err(e) => {
                tracing::debug!(workflow_id = %execution.workflow_id, "batch operation step failed: {e}");
                status.failure_operation_count += 1;
            }
        }
    }
}
