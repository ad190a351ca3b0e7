//! History's errors. They become gRPC statuses only at the edge (`chronicle-frontend`).

use chronicle_api::enums::v1::{
    ResourceExhaustedCause, ResourceExhaustedScope, WorkflowTaskFailedCause,
};
use chronicle_persistence::PersistenceError;

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
    /// The workflow's shard is not this node's (it moved, or is moving): the caller retries,
    /// and reaches the owner.
    #[error("history shard {0} is not owned by this node")]
    ShardNotOwned(u32),
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

    /// Whether the same operation may succeed if run again soon: only an outage of the
    /// database or a lost race. Corrupt data and refused statements fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Persistence(e) => e.is_retryable(),
            Self::ShardNotOwned(_) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HistoryError;
    use chronicle_persistence::PersistenceError;

    #[test]
    fn corrupt_data_is_one_kind_and_never_retried() {
        let from_store = HistoryError::from(PersistenceError::Corrupt("state".into()));
        assert!(matches!(from_store, HistoryError::Corrupt(_)));
        assert!(!from_store.is_retryable());
        assert!(!HistoryError::Corrupt("event".into()).is_retryable());
        assert!(!HistoryError::Persistence(PersistenceError::Corrupt("row".into())).is_retryable());
    }

    #[test]
    fn only_outages_and_lost_races_are_retried() {
        let retried = [
            PersistenceError::Unavailable("down".into()),
            PersistenceError::CommitInDoubt("reset".into()),
            PersistenceError::Conflict("version".into()),
        ];
        for e in retried {
            assert!(HistoryError::from(e).is_retryable());
        }
        let refused = [
            HistoryError::from(PersistenceError::Database("too large".into())),
            HistoryError::InvalidArgument("bad".into()),
            HistoryError::WorkflowCompleted,
        ];
        for e in &refused {
            assert!(!e.is_retryable(), "{e}");
        }
    }
}
