//! Batch operations: terminate, cancel or signal every workflow a visibility query selects.
//! A job's request and progress are stored after every page, a second's work at the job's
//! pace, so whoever runs it next resumes it where it was; runs are visited in start order,
//! which closing them does not change. A shutdown
//! stops a job between pages, still running in the store, for the next start to resume.

use crate::{Result, WorkerError, Workflows, reset};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::enums::v1::{BatchOperationState, BatchOperationType};
use chronicle_api::workflowservice::start_batch_operation_request::Operation;
use chronicle_api::workflowservice::{
    DeleteWorkflowExecutionRequest, DescribeBatchOperationResponse,
    RequestCancelWorkflowExecutionRequest, ResetWorkflowExecutionRequest,
    SignalWorkflowExecutionRequest, StartBatchOperationRequest, TerminateWorkflowExecutionRequest,
};
use chronicle_common::supervisor::CancellationToken;
use chronicle_common::time;
use chronicle_history::History;
use chronicle_persistence::{JobKey, JobKind, JobRow, JobStore};
use prost::Message;
use std::sync::Arc;
use std::time::Duration;

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
        Some(Operation::DeletionOperation(_)) => Ok(BatchOperationType::DeleteWorkflow),
        Some(Operation::ResetOperation(op)) => {
            reset::point(op).map_err(WorkerError::InvalidArgument)?;
            Ok(BatchOperationType::ResetWorkflow)
        }
        Some(_) => Err(WorkerError::InvalidArgument(
            "This batch operation is not supported by Chronicle yet.".into(),
        )),
        None => Err(WorkerError::InvalidArgument(
            "Batch operation is not set on request.".into(),
        )),
    }
}

/// How fast a job applies its operation when its request does not say, and the most it may
/// ask for: Temporal's `worker.batcherRPS`, so a large job does not starve the workers' own
/// traffic.
const MAX_OPERATIONS_PER_SECOND: f64 = 50.0;

/// The pace of a job that asked for `requested` operations a second (0: the server's).
pub(crate) fn operations_per_second(requested: f32) -> f64 {
    let requested = f64::from(requested);
    if requested.is_finite() && requested > 0.0 {
        requested.min(MAX_OPERATIONS_PER_SECOND)
    } else {
        MAX_OPERATIONS_PER_SECOND
    }
}

/// How long one run's operation is retried while the cluster cannot take it, and how.
const RETRY_FOR: Duration = Duration::from_secs(30);
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The stored row of a batch job.
pub(crate) fn key(namespace_id: &str, job_id: &str) -> JobKey {
    JobKey {
        namespace_id: namespace_id.to_owned(),
        kind: JobKind::Batch,
        job_id: job_id.to_owned(),
    }
}

pub(crate) fn row(namespace_id: &str, job: &BatchJob) -> JobRow {
    JobRow {
        key: key(namespace_id, &job.status().job_id),
        running: job.running(),
        data: job.encode_to_vec(),
    }
}

/// Runs a claimed job to its end, storing progress page by page under its claim, until the
/// claim ends (StopBatchOperation, or another member claimed the job) or `shutdown`.
pub(crate) struct Runner {
    pub history: History,
    pub workflows: Arc<dyn Workflows>,
    pub store: Arc<dyn JobStore>,
    pub namespace_id: String,
    pub epoch: i64,
    /// Cancelled when the node stops or the job is another member's now.
    pub shutdown: CancellationToken,
}

/// How a job's pages ended.
enum Pages {
    /// Every page is done.
    Ended,
    /// Left running in the store, for its owner to claim: the node is shutting down, the job
    /// moved to another member, or StopBatchOperation ended it (stored as stopped already).
    Left,
}

impl Runner {
    /// Stores the job's progress; false once the claim no longer holds.
    async fn save(&self, job: &BatchJob) -> Result<bool> {
        let row = row(&self.namespace_id, job);
        Ok(self.store.save_claimed_job(&row, self.epoch).await?)
    }

    pub async fn run(self, mut job: BatchJob) {
        let job_id = job.status().job_id.clone();
        let outcome = self.pages(&mut job).await;
        let state = match &outcome {
            Ok(Pages::Left) => return,
            Ok(Pages::Ended) => BatchOperationState::Completed,
            Err(e) => {
                tracing::warn!(job_id, "batch operation failed: {e}");
                BatchOperationState::Failed
            }
        };
        let status = job.status_mut();
        status.state = state as i32;
        status.close_time = Some(time::timestamp(time::now()));
        match self.save(&job).await {
            Ok(true) => {}
            Ok(false) => tracing::info!(job_id, "batch operation ended elsewhere"),
            Err(e) => tracing::error!(job_id, "batch operation result not stored: {e}"),
        }
    }

    async fn pages(&self, job: &mut BatchJob) -> Result<Pages> {
        let request = job.request.clone().unwrap_or_default();
        let rate = operations_per_second(request.max_operations_per_second);
        let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        // A page a second: what a job's next runner repeats is at most a second's work.
        let page_size = rate.ceil() as usize;
        let resets = matches!(request.operation, Some(Operation::ResetOperation(_)));
        loop {
            let page = self
                .history
                .list_for_batch(
                    &self.namespace_id,
                    &request.visibility_query,
                    &job.page_token,
                    page_size,
                )
                .await?;
            for info in &page.executions {
                // A reset starts new runs, which the query may select too: only the runs
                // that started before the job are its to reset.
                if resets
                    && started_after(info.start_time.as_ref(), job.status().start_time.as_ref())
                {
                    continue;
                }
                // Whoever runs the job next repeats this page: each operation is one a run
                // applies once (by request id), or refuses once it is closed.
                tokio::select! {
                    _ = pace.tick() => {}
                    () = self.shutdown.cancelled() => return Ok(Pages::Left),
                }
                let execution = info.execution.clone().unwrap_or_default();
                if !self.apply(job, execution).await {
                    return Ok(Pages::Left);
                }
            }
            job.page_token = page.next_page_token;
            if job.page_token.is_empty() {
                return Ok(Pages::Ended);
            }
            if !self.save(job).await? || self.shutdown.is_cancelled() {
                return Ok(Pages::Left);
            }
        }
    }

    /// Applies the operation to one run, retrying while the cluster cannot take it yet (its
    /// shard moving, say); its outcome only counts. False when the job stopped meanwhile.
    async fn apply(&self, job: &mut BatchJob, execution: WorkflowExecution) -> bool {
        let began = tokio::time::Instant::now();
        let mut retry = RETRY_FIRST;
        let outcome = loop {
            match self.call(job, execution.clone()).await {
                Err(status) if retryable(status.code()) && began.elapsed() < RETRY_FOR => {
                    tokio::select! {
                        () = tokio::time::sleep(retry) => retry = (retry * 2).min(RETRY_MAX),
                        () = self.shutdown.cancelled() => return false,
                    }
                }
                outcome => break outcome,
            }
        };
        let status = job.status_mut();
        match outcome {
            Ok(()) => status.complete_operation_count += 1,
            Err(e) => {
                tracing::debug!(workflow_id = %execution.workflow_id, "batch operation step failed: {e}");
                status.failure_operation_count += 1;
            }
        }
        true
    }

    async fn call(
        &self,
        job: &BatchJob,
        execution: WorkflowExecution,
    ) -> std::result::Result<(), tonic::Status> {
        let request = job.request.clone().unwrap_or_default();
        let job_id = &job.status().job_id;
        let namespace = request.namespace;
        let request_id = format!("{job_id}:{}", execution.run_id);
        let target = Some(execution.clone());
        match request.operation {
            Some(Operation::TerminationOperation(op)) => {
                let r = TerminateWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: target,
                    reason: request.reason,
                    details: op.details,
                    identity: op.identity,
                    ..Default::default()
                };
                self.workflows.terminate(r).await
            }
            Some(Operation::CancellationOperation(op)) => {
                let r = RequestCancelWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: target,
                    reason: request.reason,
                    identity: op.identity,
                    request_id: job_id.clone(),
                    ..Default::default()
                };
                self.workflows.request_cancel(r).await
            }
            Some(Operation::SignalOperation(op)) => {
                let r = SignalWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: target,
                    signal_name: op.signal,
                    input: op.input,
                    header: op.header,
                    identity: op.identity,
                    request_id,
                    ..Default::default()
                };
                self.workflows.signal(r).await
            }
            Some(Operation::DeletionOperation(_)) => {
                let r = DeleteWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: target,
                };
                self.workflows.delete(r).await
            }
            Some(Operation::ResetOperation(op)) => {
                let r = reset::request(self.workflows.as_ref(), &namespace, execution, op).await?;
                let r = ResetWorkflowExecutionRequest {
                    reason: request.reason,
                    request_id,
                    ..r
                };
                self.workflows.reset(r).await
            }
            _ => Err(tonic::Status::invalid_argument(
                "This batch operation is not supported by Chronicle yet.",
            )),
        }
    }
}

fn started_after(
    run: Option<&chronicle_api::wkt::Timestamp>,
    job: Option<&chronicle_api::wkt::Timestamp>,
) -> bool {
    match (run, job) {
        (Some(run), Some(job)) => time::from_timestamp(run) > time::from_timestamp(job),
        _ => false,
    }
}

/// Errors that a later attempt may not meet: the owner of the run moving or out of reach, or
/// the namespace's rate limit.
pub(crate) fn retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::DeadlineExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_goes_at_the_pace_it_asks_for_up_to_the_servers() {
        assert_eq!(operations_per_second(5.0), 5.0);
        assert_eq!(operations_per_second(0.5), 0.5);
        assert_eq!(operations_per_second(0.0), MAX_OPERATIONS_PER_SECOND);
        assert_eq!(operations_per_second(1e9), MAX_OPERATIONS_PER_SECOND);
        for unusable in [-1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(operations_per_second(unusable), MAX_OPERATIONS_PER_SECOND);
        }
    }

    #[test]
    fn a_run_out_of_reach_is_tried_again_and_a_refusal_is_final() {
        for code in [tonic::Code::Unavailable, tonic::Code::ResourceExhausted] {
            assert!(retryable(code), "{code:?}");
        }
        for code in [
            tonic::Code::NotFound,
            tonic::Code::InvalidArgument,
            tonic::Code::FailedPrecondition,
        ] {
            assert!(!retryable(code), "{code:?}");
        }
    }
}
