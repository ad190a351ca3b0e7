//! The frontend's errors and the one place they become gRPC statuses.

use chronicle_api::enums::v1::{NamespaceState, ResourceExhaustedCause, ResourceExhaustedScope};
use chronicle_api::errordetails::v1 as details;
use chronicle_common::status::with_details;
use chronicle_history::HistoryError;
use chronicle_persistence::PersistenceError;
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
    Worker(#[from] chronicle_worker::WorkerError),
    /// Too many long polls of the namespace wait on this node.
    #[error("namespace concurrent poller limit exceeded")]
    ConcurrentPollLimit,
    /// Update-with-start failed at its start; the update was not attempted.
    #[error("MultiOperation could not be executed.")]
    StartOfMultiOperation(Box<Status>),
}

impl From<PersistenceError> for FrontendError {
    fn from(e: PersistenceError) -> Self {
        Self::History(e.into())
    }
}

/// Temporal's shape for a failed update-with-start: one status per operation, the ones not
/// attempted marked aborted.
fn multi_operation_failure(message: String, start: Status) -> Status {
    use chronicle_api::errordetails::v1::multi_operation_execution_failure::OperationStatus;
    use chronicle_api::google::rpc::Status as RpcStatus;
    use prost::Message;
    let start_details = RpcStatus::decode(start.details())
        .map(|s| s.details)
        .unwrap_or_default();
    let aborted = chronicle_api::failure::v1::MultiOperationExecutionAborted {};
    let statuses = vec![
        OperationStatus { code: start.code() as i32, message: start.message().to_owned(), details: start_details },
        OperationStatus {
            code: Code::Aborted as i32,
            message: "Operation was aborted.".into(),
            details: vec![chronicle_api::wkt::Any {
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
            FrontendError::History(e) => e.into(),
            FrontendError::Worker(e) => e.into(),
            FrontendError::StartOfMultiOperation(start) => multi_operation_failure(message, *start),
        }
    }
}
