//! The one place errors become gRPC statuses: the frontend's own, and those of history, the
//! internal worker and persistence, which speak only their own enums. Statuses carry
//! Temporal's error details, which the SDKs decode into typed errors (e.g.
//! `WorkflowAlreadyStartedError` from `WorkflowExecutionAlreadyStartedFailure`).

use chronicle_api::enums::v1::{NamespaceState, ResourceExhaustedCause, ResourceExhaustedScope};
use chronicle_api::errordetails::v1 as details;
use chronicle_api::google::rpc::Status as RpcStatus;
use chronicle_api::wkt::Any;
use chronicle_history::HistoryError;
use chronicle_persistence::PersistenceError;
use chronicle_worker::WorkerError;
use prost::{Message, Name};
use tonic::{Code, Status};

pub type Result<T> = std::result::Result<T, FrontendError>;

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("Namespace {0} is not found.")]
    NamespaceNotFound(String),
    #[error("Namespace already exists.")]
    NamespaceAlreadyExists,
    /// Deprecated namespaces take no new workflows.
    #[error("Namespace {0} is deprecated: it accepts no new workflows.")]
    NamespaceDeprecated(String),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// Too many long polls of the namespace wait on this node.
    #[error("namespace concurrent poller limit exceeded")]
    ConcurrentPollLimit,
    /// The caller may not make the call (chronicle-auth says why).
    #[error("{0}")]
    PermissionDenied(String),
    /// The namespace (scope Namespace) or the node (scope System) is over its rate.
    #[error("{}", rate_limit_message(*.0))]
    RateLimited(ResourceExhaustedScope),
    /// Update-with-start failed at its start; the update was not attempted.
    #[error("MultiOperation could not be executed.")]
    StartOfMultiOperation(Box<HistoryError>),
    /// The TLS files do not make a usable certificate (at start; later, the old one is kept).
    #[error("TLS: {0}")]
    Tls(String),
}

impl From<PersistenceError> for FrontendError {
    fn from(e: PersistenceError) -> Self {
        Self::History(e.into())
    }
}

/// A status whose details hold one `temporal.api.errordetails.v1` message.
fn with_details<D: Message + Name>(code: Code, message: impl Into<String>, detail: &D) -> Status {
    let message = message.into();
    let status = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![Any {
            type_url: format!("type.googleapis.com/{}", D::full_name()),
            value: detail.encode_to_vec(),
        }],
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

fn not_found(message: String) -> Status {
    with_details(
        Code::NotFound,
        message,
        &details::NotFoundFailure::default(),
    )
}

/// Temporal's shape for a failed update-with-start: one status per operation, the ones not
/// attempted marked aborted.
fn multi_operation_failure(message: String, start: Status) -> Status {
    use chronicle_api::errordetails::v1::multi_operation_execution_failure::OperationStatus;
    let start_details = RpcStatus::decode(start.details())
        .map(|s| s.details)
        .unwrap_or_default();
    let aborted = chronicle_api::failure::v1::MultiOperationExecutionAborted {};
    let statuses = vec![
        OperationStatus { code: start.code() as i32, message: start.message().to_owned(), details: start_details },
        OperationStatus {
            code: Code::Aborted as i32,
            message: "Operation was aborted.".into(),
            details: vec![Any {
                type_url: format!("type.googleapis.com/{}", <chronicle_api::failure::v1::MultiOperationExecutionAborted as prost::Name>::full_name()),
                value: aborted.encode_to_vec(),
            }],
        },
    ];
    with_details(
        Code::Aborted,
        message,
        &details::MultiOperationExecutionFailure { statuses },
    )
}

/// Temporal's words for a refused call, by the limit that refused it.
fn rate_limit_message(scope: ResourceExhaustedScope) -> &'static str {
    match scope {
        ResourceExhaustedScope::Namespace => "namespace rate limit exceeded",
        _ => "service rate limit exceeded",
    }
}

pub fn invalid(message: impl Into<String>) -> FrontendError {
    FrontendError::InvalidArgument(message.into())
}

impl From<FrontendError> for Status {
    fn from(e: FrontendError) -> Self {
        let message = e.to_string();
        match e {
            FrontendError::InvalidArgument(_) => Status::invalid_argument(message),
            FrontendError::NamespaceNotFound(namespace) => with_details(
                Code::NotFound,
                message,
                &details::NamespaceNotFoundFailure { namespace },
            ),
            FrontendError::NamespaceAlreadyExists => with_details(
                Code::AlreadyExists,
                message,
                &details::NamespaceAlreadyExistsFailure {},
            ),
            FrontendError::NamespaceDeprecated(namespace) => with_details(
                Code::FailedPrecondition,
                message,
                &details::NamespaceInvalidStateFailure {
                    namespace,
                    state: NamespaceState::Deprecated as i32,
                    allowed_states: vec![NamespaceState::Registered as i32],
                },
            ),
            FrontendError::ConcurrentPollLimit => with_details(
                Code::ResourceExhausted,
                message,
                &details::ResourceExhaustedFailure {
                    cause: ResourceExhaustedCause::ConcurrentLimit as i32,
                    scope: ResourceExhaustedScope::Namespace as i32,
                },
            ),
            FrontendError::PermissionDenied(_) => with_details(
                Code::PermissionDenied,
                message,
                &details::PermissionDeniedFailure::default(),
            ),
            FrontendError::RateLimited(scope) => with_details(
                Code::ResourceExhausted,
                message,
                &details::ResourceExhaustedFailure {
                    cause: ResourceExhaustedCause::RpsLimit as i32,
                    scope: scope as i32,
                },
            ),
            FrontendError::History(e) => history_status(e),
            FrontendError::Worker(e) => worker_status(e),
            FrontendError::StartOfMultiOperation(start) => {
                multi_operation_failure(message, history_status(*start))
            }
            FrontendError::Tls(_) => Status::internal(message),
        }
    }
}

fn worker_status(e: WorkerError) -> Status {
    match e {
        WorkerError::InvalidArgument(m) => Status::invalid_argument(m),
        WorkerError::NotFound(m) => not_found(m),
        WorkerError::AlreadyExists(m) => Status::already_exists(m),
        WorkerError::Unavailable(m) => Status::unavailable(m),
        e @ WorkerError::ScheduleExists(_) => with_details(
            Code::AlreadyExists,
            e.to_string(),
            &details::WorkflowExecutionAlreadyStartedFailure::default(),
        ),
        WorkerError::History(e) => history_status(e),
    }
}

fn history_status(e: HistoryError) -> Status {
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
        // Temporal answers a request that reached a host not owning its shard so too: the
        // SDKs retry UNAVAILABLE.
        HistoryError::ShardNotOwned(_) => Status::unavailable(message),
        HistoryError::Persistence(p) => persistence_status(p),
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
        PersistenceError::Schema(_) | PersistenceError::InUse(_) => {
            Status::failed_precondition(message)
        }
        PersistenceError::InvalidArgument(_) => Status::invalid_argument(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full name of the one error detail a status carries, and its bytes.
    fn detail(status: &Status) -> (String, Vec<u8>) {
        let mut details = RpcStatus::decode(status.details()).unwrap().details;
        assert_eq!(details.len(), 1, "{status:?}");
        let any = details.remove(0);
        let name = any.type_url.trim_start_matches("type.googleapis.com/");
        (name.to_owned(), any.value)
    }

    fn status(e: impl Into<FrontendError>) -> Status {
        Status::from(e.into())
    }

    #[test]
    fn corrupt_data_is_internal_whichever_layer_found_it() {
        let from_store = status(PersistenceError::Corrupt("row".into()));
        assert_eq!(from_store.code(), Code::Internal);
        assert_eq!(from_store.message(), "corrupt history: row");
        let wrapped = status(HistoryError::Persistence(PersistenceError::Corrupt(
            "row".into(),
        )));
        assert_eq!(wrapped.code(), Code::Internal);
        assert_eq!(wrapped.message(), "corrupt stored data: row");
    }

    #[test]
    fn not_found_carries_its_failure_from_every_layer() {
        let name = details::NotFoundFailure::full_name();
        for s in [
            status(HistoryError::WorkflowNotFound("gone".into())),
            status(WorkerError::NotFound("Batch job j not found.".into())),
            status(PersistenceError::NotFound("row".into())),
        ] {
            assert_eq!(s.code(), Code::NotFound);
            assert_eq!(detail(&s).0, name);
        }
    }

    #[test]
    fn an_already_started_run_names_itself() {
        let s = status(HistoryError::AlreadyStarted {
            start_request_id: "req".into(),
            run_id: "run".into(),
        });
        assert_eq!(s.code(), Code::AlreadyExists);
        assert_eq!(s.message(), "workflow execution is already running");
        let (name, bytes) = detail(&s);
        assert_eq!(
            name,
            details::WorkflowExecutionAlreadyStartedFailure::full_name()
        );
        let failure = details::WorkflowExecutionAlreadyStartedFailure::decode(&*bytes).unwrap();
        assert_eq!(
            (failure.start_request_id.as_str(), failure.run_id.as_str()),
            ("req", "run")
        );
    }

    #[test]
    fn outages_are_unavailable_and_plain() {
        let s = status(PersistenceError::Unavailable("down".into()));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "database unavailable: down");
        assert!(s.details().is_empty());
    }

    #[test]
    fn a_failed_start_aborts_the_update() {
        let start = Box::new(HistoryError::AlreadyStarted {
            start_request_id: "req".into(),
            run_id: "run".into(),
        });
        let s = Status::from(FrontendError::StartOfMultiOperation(start));
        assert_eq!(s.code(), Code::Aborted);
        assert_eq!(s.message(), "MultiOperation could not be executed.");
        let (name, bytes) = detail(&s);
        assert_eq!(name, details::MultiOperationExecutionFailure::full_name());
        let failure = details::MultiOperationExecutionFailure::decode(&*bytes).unwrap();
        let codes: Vec<i32> = failure.statuses.iter().map(|s| s.code).collect();
        assert_eq!(codes, [Code::AlreadyExists as i32, Code::Aborted as i32]);
    }
}
