//! gRPC statuses carrying Temporal's error details, which the SDKs decode into typed errors
//! (e.g. `WorkflowAlreadyStartedError` from `WorkflowExecutionAlreadyStartedFailure`).

use chronicle_api::google::rpc::Status as RpcStatus;
use chronicle_api::wkt::Any;
use prost::{Message, Name};
use tonic::{Code, Status};

/// A status whose details hold one `temporal.api.errordetails.v1` message.
pub fn with_details<D: Message + Name>(
    code: Code,
    message: impl Into<String>,
    detail: &D,
) -> Status {
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
