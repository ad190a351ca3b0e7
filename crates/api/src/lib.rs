//! Generated server traits and clients, plus re-exports of the wire types, so the other crates name one path.

pub use temporalio_protos::google;
pub use temporalio_protos::temporal::api::*;

pub mod workflowservice {
    pub use temporalio_protos::temporal::api::workflowservice::v1::*;
    tonic::include_proto!("temporal.api.workflowservice.v1");
}

pub mod operatorservice {
    pub use temporalio_protos::temporal::api::operatorservice::v1::*;
    tonic::include_proto!("temporal.api.operatorservice.v1");
}

pub mod health {
    pub use temporalio_protos::grpc::health::v1::*;
    tonic::include_proto!("grpc.health.v1");
}

/// Chronicle's node-to-node protocol (`proto/chronicle/internal/v1/node.proto`).
pub mod internal {
    tonic::include_proto!("chronicle.internal.v1");
}

pub use prost_wkt_types as wkt;

/// One RPC of a service we serve, as its descriptor has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rpc {
    /// The HTTP/2 `:path` of a call, `/package.Service/Method`.
    pub path: &'static str,
    pub method: &'static str,
    /// The field number of the request's `namespace`; 0 when the request names none.
    pub namespace_field: u32,
}

/// Every RPC of WorkflowService, OperatorService and gRPC health, from the descriptor.
pub const RPCS: &[Rpc] = include!(concat!(env!("OUT_DIR"), "/rpcs.rs"));
