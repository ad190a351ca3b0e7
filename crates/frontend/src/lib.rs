//! The frontend: the gRPC gateway SDKs and the CLI talk to. It validates requests, resolves
//! namespaces and routes to history (which owns executions) and matching (task queues).

mod admission;
mod batch;
mod deadline;
mod error;
mod executions;
mod forward;
mod handler;
mod health;
mod long_polls;
mod message_size;
mod namespaces;
mod operator;
mod routing;
mod schedules;
mod service;
mod task_queues;
mod tasks;
pub mod tls;
mod validate;
mod visibility;

pub use error::FrontendError;
pub use handler::{ClusterFacts, SERVER_VERSION};
pub use namespaces::Namespaces;

use chronicle_api::health::health_server::HealthServer;
use chronicle_api::internal::node_service_server::NodeServiceServer;
use chronicle_api::internal::task_service_server::TaskServiceServer;
use chronicle_api::operatorservice::operator_service_server::OperatorServiceServer;
use chronicle_api::workflowservice::workflow_service_server::WorkflowServiceServer;
use chronicle_common::config::{LimitsTable, MemoryConfig};
use chronicle_common::limits::MAX_GRPC_MESSAGE;
use chronicle_history::History;
use chronicle_matching::Matching;
use chronicle_worker::Worker;
use handler::Handler;
use std::future::Future;
use std::sync::Arc;
use tonic::codec::CompressionEncoding;
use tonic::transport::Server;

/// Keepalive pings keep idle long-poll connections from being dropped by middleboxes.
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// The services behind one listening socket.
pub struct Frontend {
    handler: Handler,
    memory: MemoryConfig,
    /// Whether clients are served (WorkflowService, OperatorService), or only the other
    /// nodes (the internal services) and health probes.
    public: bool,
    authorizer: chronicle_auth::Authorizer,
}

/// The services a frontend calls.
pub struct Services {
    pub namespaces: Namespaces,
    pub history: History,
    pub matching: Matching,
    pub worker: Worker,
    pub nodes: chronicle_cluster::Nodes,
}

impl Frontend {
    pub fn new(
        services: Services,
        facts: ClusterFacts,
        limits: Arc<LimitsTable>,
        memory: MemoryConfig,
        authorizer: chronicle_auth::Authorizer,
    ) -> Self {
        let Services {
            namespaces,
            history,
            matching,
            worker,
            nodes,
        } = services;
        Self {
            handler: Handler {
                namespaces,
                history,
                matching,
                worker,
                nodes,
                facts,
                limits,
                long_polls: long_polls::LongPolls::default(),
            },
            memory,
            public: true,
            authorizer,
        }
    }

    /// What the internal worker's jobs call to act on workflows.
    pub fn workflows(&self) -> Arc<dyn chronicle_worker::Workflows> {
        Arc::new(self.handler.clone())
    }

    /// For a node that does not play the frontend role: it serves the other nodes only.
    pub fn internal_only(mut self) -> Self {
        self.public = false;
        self
    }

    /// Serves the connections of `incoming` (plaintext or TLS: `tls::Incoming::new`) until
    /// `shutdown` resolves, then lets in-flight calls finish. The health probe runs under
    /// `supervisor`.
    pub async fn serve(
        self,
        incoming: tls::Incoming,
        supervisor: &chronicle_common::Supervisor,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        // The SDKs compress requests with gzip; responses are compressed only for clients
        // that ask for it.
        let history = self.handler.history.clone();
        let limits = self.handler.limits.clone();
        let authorizer = self.authorizer;
        let public = self.public;
        let operator = OperatorServiceServer::new(operator::Operator(self.handler.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_GRPC_MESSAGE);
        // Calls other nodes pass on (routing.rs); their messages are the clients'.
        let node = NodeServiceServer::new(self.handler.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE);
        let tasks = TaskServiceServer::new(self.handler.clone())
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE);
        let workflow = WorkflowServiceServer::new(self.handler)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE);
        let health = HealthServer::new(health::HealthService::start(history, supervisor))
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip);
        Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE))
            .max_concurrent_streams(Some(self.memory.http2_streams_per_connection))
            .layer(tower::util::MapResponseLayer::new(message_size::rewrite))
            .layer(admission::AdmissionLayer::new(admission::Gate::new(
                limits, authorizer,
            )))
            .add_service(health)
            .add_optional_service(public.then_some(workflow))
            .add_optional_service(public.then_some(operator))
            .add_service(node)
            .add_service(tasks)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }
}
