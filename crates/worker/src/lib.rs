//! The internal worker: system jobs that run inside the server, beside the services that
//! serve clients: batch operations (what `temporal workflow terminate --query` uses),
//! namespace deletions and schedules. Each job is stored before it starts, and runs on one member at a
//! time, claimed by the member that owns it (`claims`): after a restart or a member's loss,
//! the job's owner goes on from its stored progress.

mod batch;
mod claims;
mod deletion;
mod reset;
mod schedules;

use batch::{BatchJob, operation_type};
use chronicle_api::batch::v1::BatchOperationInfo;
use chronicle_api::enums::v1::BatchOperationState;
use chronicle_api::workflowservice::{
    DeleteWorkflowExecutionRequest, DescribeBatchOperationResponse,
    GetWorkflowExecutionHistoryRequest, GetWorkflowExecutionHistoryResponse,
    ListBatchOperationsResponse, RequestCancelWorkflowExecutionRequest,
    ResetWorkflowExecutionRequest, SignalWorkflowExecutionRequest, StartBatchOperationRequest,
    StartWorkflowExecutionRequest, TerminateWorkflowExecutionRequest,
};
use chronicle_common::Supervisor;
use chronicle_common::time;
use chronicle_history::{History, HistoryError};
use chronicle_persistence::{JobKind, PersistenceError, WorkerStore};
use deletion::NamespaceDeletion;
use prost::Message;
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, WorkerError>;

/// How jobs act on workflows: as a client would, through the frontend, which routes each
/// call to the node owning the workflow. Requests name their namespace.
#[tonic::async_trait]
pub trait Workflows: Send + Sync + 'static {
    async fn terminate(
        &self,
        r: TerminateWorkflowExecutionRequest,
    ) -> std::result::Result<(), tonic::Status>;
    async fn request_cancel(
        &self,
        r: RequestCancelWorkflowExecutionRequest,
    ) -> std::result::Result<(), tonic::Status>;
    async fn signal(
        &self,
        r: SignalWorkflowExecutionRequest,
    ) -> std::result::Result<(), tonic::Status>;
    async fn delete(
        &self,
        r: DeleteWorkflowExecutionRequest,
    ) -> std::result::Result<(), tonic::Status>;
    async fn reset(
        &self,
        r: ResetWorkflowExecutionRequest,
    ) -> std::result::Result<(), tonic::Status>;
    /// Answers the run id.
    async fn start(
        &self,
        r: StartWorkflowExecutionRequest,
    ) -> std::result::Result<String, tonic::Status>;
    async fn history(
        &self,
        r: GetWorkflowExecutionHistoryRequest,
    ) -> std::result::Result<GetWorkflowExecutionHistoryResponse, tonic::Status>;
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// As Temporal's, whose schedules are workflows: the SDKs read the error's details.
    #[error("schedule {0:?} is already registered")]
    ScheduleExists(String),
    /// The job is on its way between members, or the cluster could not take a step now.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl From<PersistenceError> for WorkerError {
    fn from(e: PersistenceError) -> Self {
        Self::History(e.into())
    }
}

/// Cheap-to-clone handle to the internal worker.
#[derive(Clone)]
pub struct Worker {
    history: History,
    store: Arc<dyn WorkerStore>,
    supervisor: Supervisor,
    local: claims::Local,
    /// Set when the worker follows the cluster (`follow`).
    workflows: Arc<std::sync::OnceLock<Arc<dyn Workflows>>>,
    /// Tells the follower a job was stored here, to claim it without waiting.
    wake: Arc<tokio::sync::Notify>,
    actors: schedules::Actors,
    /// Claims are made one at a time on a node (`claims::claim_and_run`).
    claiming: Arc<tokio::sync::Mutex<()>>,
}

/// A job row that does not decode, or has no status, is corrupt stored data, the same kind
/// history reports.
fn decode(data: &[u8]) -> Result<BatchJob> {
    let job =
        BatchJob::decode(data).map_err(|e| PersistenceError::Corrupt(format!("batch job: {e}")))?;
    if job.status.is_none() {
        return Err(PersistenceError::Corrupt("batch job without its status".into()).into());
    }
    Ok(job)
}

impl Worker {
    /// Jobs run under `supervisor`, and stop at a safe point when it shuts down. A worker
    /// stores jobs; it runs them once it follows the cluster (`follow`).
    pub fn new(history: History, store: Arc<dyn WorkerStore>, supervisor: Supervisor) -> Self {
        Self {
            history,
            store,
            supervisor,
            local: claims::Local::default(),
            workflows: Arc::default(),
            wake: Arc::default(),
            actors: Arc::default(),
            claiming: Arc::default(),
        }
    }

    /// The job just stored may be this node's to run: its follower looks at once.
    fn wake(&self) {
        self.wake.notify_one();
    }

    /// Deletes a namespace's workflows as a stored job: the job is stored, then `mark`
    /// marks the namespace deleted, then the job's owner is told. The job deletes nothing
    /// unless the namespace is marked deleted when it runs, so it stays stored whatever
    /// `mark` answers (a mark whose outcome is unknown may have landed); its owner may also
    /// find it before the mark lands, and then finds nothing to delete.
    pub async fn delete_namespace<T>(
        &self,
        namespace_id: &str,
        mark: impl Future<Output = T>,
    ) -> Result<T> {
        let job = NamespaceDeletion {
            namespace_id: namespace_id.to_owned(),
            created: time::unix_nanos(time::now()),
            ..Default::default()
        };
        self.store.put_job(&deletion::row(&job)).await?;
        let marked = mark.await;
        self.wake();
        Ok(marked)
    }

    pub async fn start_batch(
        &self,
        namespace_id: &str,
        r: StartBatchOperationRequest,
    ) -> Result<()> {
        let operation_type = operation_type(r.operation.as_ref())?;
        if r.job_id.is_empty() {
            return Err(WorkerError::InvalidArgument(
                "JobId is not set on request.".into(),
            ));
        }
        if r.visibility_query.is_empty() {
            return Err(WorkerError::InvalidArgument(
                "VisibilityQuery is not set on request.".into(),
            ));
        }
        if self
            .store
            .job(&batch::key(namespace_id, &r.job_id))
            .await?
            .is_some()
        {
            return Err(WorkerError::AlreadyExists(format!(
                "Batch job {} already exists.",
                r.job_id
            )));
        }
        let total = self
            .history
            .count_workflows(namespace_id, &r.visibility_query)
            .await?
            .count;
        let identity = match &r.operation {
            Some(chronicle_api::workflowservice::start_batch_operation_request::Operation::TerminationOperation(op)) => op.identity.clone(),
            _ => String::new(),
        };
        let status = DescribeBatchOperationResponse {
            operation_type: operation_type as i32,
            job_id: r.job_id.clone(),
            state: BatchOperationState::Running as i32,
            start_time: Some(time::timestamp(time::now())),
            total_operation_count: total,
            identity,
            reason: r.reason.clone(),
            query: r.visibility_query.clone(),
            ..Default::default()
        };
        let job = BatchJob {
            request: Some(r),
            status: Some(status),
            page_token: Vec::new(),
        };
        self.store.put_job(&batch::row(namespace_id, &job)).await?;
        self.wake();
        Ok(())
    }

    pub async fn describe_batch(
        &self,
        namespace_id: &str,
        job_id: &str,
    ) -> Result<DescribeBatchOperationResponse> {
        let row = self.store.job(&batch::key(namespace_id, job_id)).await?;
        let row =
            row.ok_or_else(|| WorkerError::NotFound(format!("Batch job {job_id} not found.")))?;
        Ok(decode(&row.data)?.status().clone())
    }

    pub async fn list_batches(&self, namespace_id: &str) -> Result<ListBatchOperationsResponse> {
        let mut operation_info = Vec::new();
        for row in self.store.jobs(namespace_id, JobKind::Batch).await? {
            let status = decode(&row.data)?.status().clone();
            operation_info.push(BatchOperationInfo {
                job_id: status.job_id,
                state: status.state,
                start_time: status.start_time,
                close_time: status.close_time,
                operation_type: status.operation_type,
            });
        }
        Ok(ListBatchOperationsResponse {
            operation_info,
            next_page_token: Vec::new(),
        })
    }

    /// Stops a running job: no further run is touched after its current one.
    pub async fn stop_batch(&self, namespace_id: &str, job_id: &str, reason: &str) -> Result<()> {
        let row = self.store.job(&batch::key(namespace_id, job_id)).await?;
        let row =
            row.ok_or_else(|| WorkerError::NotFound(format!("Batch job {job_id} not found.")))?;
        let mut job = decode(&row.data)?;
        if !job.running() {
            return Ok(());
        }
        let status = job.status.get_or_insert_with(Default::default);
        status.state = BatchOperationState::Failed as i32;
        status.close_time = Some(time::timestamp(time::now()));
        status.reason = format!("stopped: {reason}");
        // Replacing the job ends its runner's claim: it stops before its next run.
        Ok(self.store.put_job(&batch::row(namespace_id, &job)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::{BatchJob, HistoryError, WorkerError, decode};
    use prost::Message;

    #[test]
    fn an_undecodable_job_is_corrupt_and_not_retried() {
        let e = decode(b"\xff\xff\xff").unwrap_err();
        let WorkerError::History(e) = e else {
            panic!("{e}")
        };
        assert!(
            matches!(e, HistoryError::Corrupt(_)) && !e.is_retryable(),
            "{e}"
        );
    }

    #[test]
    fn a_job_without_its_status_is_corrupt() {
        let job = BatchJob {
            request: None,
            status: None,
            page_token: Vec::new(),
        };
        let e = decode(&job.encode_to_vec()).unwrap_err();
        let WorkerError::History(e) = e else {
            panic!("{e}")
        };
        assert!(matches!(e, HistoryError::Corrupt(_)), "{e}");
    }
}
