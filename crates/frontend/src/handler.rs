//! The state every RPC handler shares, and the calls about the server itself.

use crate::error::{FrontendError, Result};
use crate::long_polls::{LongPollPermit, LongPolls};
use crate::namespaces::{CLUSTER_NAME, Namespaces};
use crate::validate::Blobs;
use chronicle_api::workflowservice::get_system_info_response::Capabilities;
use chronicle_api::workflowservice::{GetClusterInfoResponse, GetSystemInfoResponse};
use chronicle_common::config::LimitsTable;
use chronicle_history::History;
use chronicle_history::NamespaceRef;
use chronicle_matching::Matching;
use chronicle_worker::Worker;
use std::sync::Arc;

/// The Temporal server version whose API Chronicle serves; SDKs and the CLI read it.
pub const SERVER_VERSION: &str = "1.29.0";

/// Facts about this deployment that GetClusterInfo reports.
#[derive(Clone, Debug)]
pub struct ClusterFacts {
    pub cluster_id: String,
    pub persistence_store: String,
}

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct Handler {
    pub namespaces: Namespaces,
    pub history: History,
    pub matching: Matching,
    pub worker: Worker,
    pub nodes: chronicle_cluster::Nodes,
    pub facts: ClusterFacts,
    pub limits: Arc<LimitsTable>,
    pub long_polls: LongPolls,
}

impl Handler {
    /// The blob size limits of `namespace` (by name).
    pub fn blobs<'a>(&'a self, namespace: &'a str) -> Blobs<'a> {
        Blobs {
            namespace,
            limits: self.limits.for_namespace(namespace),
        }
    }

    /// Admits one more long poll in the namespace, or refuses it as Temporal does.
    pub fn long_poll(&self, namespace: &NamespaceRef) -> Result<LongPollPermit> {
        let limit = self
            .limits
            .for_namespace(&namespace.name)
            .long_polls_per_namespace;
        self.long_polls
            .try_acquire(&namespace.id, limit)
            .ok_or(FrontendError::ConcurrentPollLimit)
    }

    /// Only what Chronicle really does is claimed: SDKs change behaviour on these flags.
    pub fn system_info(&self) -> GetSystemInfoResponse {
        GetSystemInfoResponse {
            server_version: SERVER_VERSION.into(),
            capabilities: Some(Capabilities {
                signal_and_query_header: true,
                internal_error_differentiation: true,
                activity_failure_include_heartbeat: true,
                encoded_failure_attributes: true,
                upsert_memo: true,
                sdk_metadata: true,
                count_group_by_execution_status: true,
                supports_schedules: true,
                eager_workflow_start: true,
                ..Default::default()
            }),
        }
    }

    pub fn cluster_info(&self) -> GetClusterInfoResponse {
        GetClusterInfoResponse {
            supported_clients: [
                ("temporal-cli", ">=0.1.0"),
                ("temporal-go", ">=1.0.0"),
                ("temporal-java", ">=1.0.0"),
                ("temporal-typescript", ">=0.1.0"),
                ("temporal-python", ">=0.1.0"),
                ("temporal-dotnet", ">=0.1.0"),
                ("temporal-server", ">=1.0.0"),
            ]
            .into_iter()
            .map(|(client, range)| (client.to_owned(), range.to_owned()))
            .collect(),
            server_version: SERVER_VERSION.into(),
            cluster_id: self.facts.cluster_id.clone(),
            cluster_name: CLUSTER_NAME.into(),
            history_shard_count: self.history.shard_count() as i32,
            persistence_store: self.facts.persistence_store.clone(),
            visibility_store: self.facts.persistence_store.clone(),
            initial_failover_version: 1,
            failover_version_increment: 10,
            ..Default::default()
        }
    }
}
