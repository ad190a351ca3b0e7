//! gRPC health: every service this server hosts is SERVING while the process runs.

use chronicle_api::health::health_server::Health;
use chronicle_api::health::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

/// Services a health check may name; "" asks about the server as a whole.
const SERVICES: &[&str] = &[
    "",
    "temporal.api.workflowservice.v1.WorkflowService",
    "temporal.api.operatorservice.v1.OperatorService",
];

pub struct HealthService;

fn check(service: &str) -> Result<HealthCheckResponse, Status> {
    if SERVICES.contains(&service) {
        Ok(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        })
    } else {
        Err(Status::not_found(format!("unknown service {service}")))
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        check(&request.into_inner().service).map(Response::new)
    }

    /// The status never changes while the process lives, so the stream sends it once and
    /// stays open; an unknown service is reported as such, as the protocol asks.
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<BoxStream<HealthCheckResponse>>, Status> {
        let status = check(&request.into_inner().service).unwrap_or(HealthCheckResponse {
            status: ServingStatus::ServiceUnknown as i32,
        });
        let stream =
            tokio_stream::StreamExt::chain(tokio_stream::once(Ok(status)), tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}
