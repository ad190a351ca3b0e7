//! History's errors and the one place they become gRPC statuses.

use chronicle_api::enums::v1::{
    ResourceExhaustedCause, ResourceExhaustedScope, WorkflowTaskFailedCause,
};
use chronicle_api::errordetails::v1 as details;
use chronicle_common::status::with_details;
use chronicle_persistence::PersistenceError;
use tonic::{Code, Status};

pub type Result<T> = std::result::Result<T, HistoryError>;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    InvalidArgument(String),
    /// The workflow execution (or run) does not exist.
    #[error("{0}")]
    WorkflowNotFound(String),
    /// The task named by a token or id is gone: completed, timed out, or never existed.
    #[error("{0}")]
    TaskNotFound(String),
    /// The run is closed, so the operation no longer applies.
    #[error("workflow execution already completed")]
    WorkflowCompleted,
    #[error("workflow execution is already running")]
    AlreadyStarted {
        start_request_id: String,
        run_id: String,
    },
    /// A dispatched task no longer matches the state (already started, retried, closed). The
    /// poller drops it and polls again; it never reaches a client.
    #[error("task is stale")]
    StaleTask,
    /// A command in a completed workflow task is invalid; the task is failed with `cause`.
    #[error("{message}")]
    BadCommand {
        cause: WorkflowTaskFailedCause,
        message: String,
    },
    /// A per-run or per-node bound is reached; the client may retry later.
    #[error("{message}")]
    ResourceExhausted {
        cause: ResourceExhaustedCause,
        scope: ResourceExhaustedScope,
        message: String,
    },
    /// The run can take no more of this in its life (continue-as-new starts afresh).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A command breaks a size limit that ends the run (Temporal's "fail workflow"): the
    /// workflow task fails with `cause` and the run is terminated with `message` as reason.
    #[error("{message}")]
    RunLimitExceeded {
        cause: WorkflowTaskFailedCause,
        message: String,
    },
    /// The run's history crossed a limit while a workflow task completed: the run is
    /// terminated and the task's commands are not kept.
    #[error("{}", .0.reason())]
    HistoryLimitExceeded(crate::HistoryLimit),
    /// The worker answered a query with an error.
    #[error("{0}")]
    QueryFailed(String),
    #[error("query timed out before a worker answered it")]
    QueryTimedOut,
    /// Stored data that cannot be what it should be (an undecodable event, a missing one).
    #[error("corrupt history: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Persistence(PersistenceError),
}

impl HistoryError {
    /// A bound on what this node holds in memory is reached; the client may retry later.
    pub(crate) fn overloaded(message: String) -> Self {
        Self::ResourceExhausted {
            cause: ResourceExhaustedCause::SystemOverloaded,
            scope: ResourceExhaustedScope::System,
            message,
        }
    }
}

/// Corrupt data is one kind whichever layer found it.
impl From<PersistenceError> for HistoryError {
    fn from(e: PersistenceError) -> Self {
        match e {
            PersistenceError::Corrupt(message) => Self::Corrupt(message),
            other => Self::Persistence(other),
        }
    }
}

impl HistoryError {
    /// The task a poller matched no longer applies; the poller drops it and polls on.
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            Self::StaleTask | Self::WorkflowNotFound(_) | Self::WorkflowCompleted
        )
    }
}

pub fn not_found(message: String) -> Status {
    with_details(
        Code::NotFound,
        message,
        &details::NotFoundFailure::default(),
    )
}

impl From<HistoryError> for Status {
    fn from(e: HistoryError) -> Self {
        let message = e.to_string();
        match e {
            HistoryError::InvalidArgument(_)
            | HistoryError::BadCommand { .. }
            | HistoryError::RunLimitExceeded { .. }
            | HistoryError::HistoryLimitExceeded(_) => Status::invalid_argument(message),
            HistoryError::Corrupt(_) => Status::internal(message),
            HistoryError::FailedPrecondition(_) => Status::failed_precondition(message),
            HistoryError::ResourceExhausted { cause, scope, .. } => with_details(
                Code::ResourceExhausted,
                message,
                &details::ResourceExhaustedFailure {
                    cause: cause as i32,
                    scope: scope as i32,
                },
            ),
            HistoryError::QueryFailed(_) => with_details(
                Code::InvalidArgument,
                message,
                &details::QueryFailedFailure::default(),
            ),
            HistoryError::QueryTimedOut => Status::deadline_exceeded(message),
            HistoryError::WorkflowNotFound(_)
            | HistoryError::TaskNotFound(_)
            | HistoryError::WorkflowCompleted
            | HistoryError::StaleTask => not_found(message),
            HistoryError::AlreadyStarted {
                start_request_id,
                run_id,
            } => with_details(
                Code::AlreadyExists,
                message,
                &details::WorkflowExecutionAlreadyStartedFailure {
                    start_request_id,
                    run_id,
                    ..Default::default()
                },
            ),
            HistoryError::Persistence(p) => persistence_status(p),
        }
    }
}

fn persistence_status(e: PersistenceError) -> Status {
    let message = e.to_string();
    match e {
        PersistenceError::ShardOwnershipLost { .. }
        | PersistenceError::Conflict(_)
        | PersistenceError::Unavailable(_)
        | PersistenceError::CommitInDoubt(_) => Status::unavailable(message),
        PersistenceError::AlreadyExists(_) => Status::already_exists(message),
        PersistenceError::NotFound(_) => not_found(message),
        PersistenceError::Database(_) | PersistenceError::Corrupt(_) => Status::internal(message),
        PersistenceError::Schema(_) => Status::failed_precondition(message),
        PersistenceError::InvalidArgument(_) => Status::invalid_argument(message),
    }
}
