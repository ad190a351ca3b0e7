//! The frontend's errors and the one place they become gRPC statuses.

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
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl From<PersistenceError> for FrontendError {
    fn from(e: PersistenceError) -> Self {
        Self::History(e.into())
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
            FrontendError::History(e) => e.into(),
        }
    }
}
