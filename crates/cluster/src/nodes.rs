//! Reaching the other members: one NodeService and one TaskService client per member
//! address, connected lazily and kept.

use crate::{ClusterError, Membership};
use chronicle_api::internal::node_service_client::NodeServiceClient;
use chronicle_api::internal::task_service_client::TaskServiceClient;
use chronicle_api::internal::{AddTasksRequest, StartTaskRequest};
use chronicle_common::cluster::{Member, Members, job_owner, queue_owner};
use chronicle_common::config::ClusterTlsConfig;
use chronicle_common::limits::MAX_GRPC_MESSAGE;
use chronicle_common::{DispatchTask, QueueKind};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tonic::Status;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// This node's way to the others: who owns what, and a channel to each.
#[derive(Clone)]
pub struct Nodes {
    membership: Membership,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Set when the members' ports speak TLS (`[cluster.tls]`).
    tls: Option<ClientTlsConfig>,
}

impl Nodes {
    pub fn new(membership: Membership) -> Self {
        Self {
            membership,
            channels: Arc::default(),
            tls: None,
        }
    }

    /// Calls the other members over TLS.
    pub fn with_tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The member owning history shard `shard`, when it is another node.
    pub fn remote_shard_owner(&self, shard: u32) -> Option<Member> {
        self.remote(|live| live.shard_owner(shard))
    }

    /// The member owning a task queue, when it is another node.
    pub fn remote_queue_owner(
        &self,
        namespace_id: &str,
        queue: &str,
        kind: QueueKind,
    ) -> Option<Member> {
        self.remote(|live| queue_owner(live.list(), namespace_id, queue, kind))
    }

    /// The member running an internal worker job (a schedule), when it is another node.
    pub fn remote_job_owner(&self, namespace_id: &str, job_id: &str) -> Option<Member> {
        self.remote(|live| job_owner(live.list(), namespace_id, job_id))
    }

    fn remote(&self, owner: impl FnOnce(&Members) -> Option<&Member>) -> Option<Member> {
        let me = &self.membership.me().id;
        self.membership
            .with_live(|live| owner(live).filter(|o| &o.id != me).cloned())
    }

    pub fn node_client(&self, member: &Member) -> Result<NodeServiceClient<Channel>, Status> {
        Ok(NodeServiceClient::new(self.channel(member)?)
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE))
    }

    pub fn task_client(&self, member: &Member) -> Result<TaskServiceClient<Channel>, Status> {
        Ok(TaskServiceClient::new(self.channel(member)?)
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE))
    }

    /// Hands committed tasks to the owner of their task queue.
    pub async fn add_tasks(
        &self,
        owner: &Member,
        tasks: &[DispatchTask],
    ) -> Result<(), ClusterError> {
        let request = AddTasksRequest {
            tasks: tasks.iter().map(Message::encode_to_vec).collect(),
        };
        let mut client = self.task_client(owner).map_err(|s| remote(owner, s))?;
        client
            .add_tasks(request)
            .await
            .map_err(|s| remote(owner, s))?;
        Ok(())
    }

    /// Has the owner of `task`'s workflow start it for a poller here; answers the encoded
    /// poll response.
    pub async fn start_task(
        &self,
        owner: &Member,
        task: &DispatchTask,
        namespace_name: &str,
        identity: &str,
        request_id: &str,
    ) -> Result<Vec<u8>, ClusterError> {
        let request = StartTaskRequest {
            task: task.encode_to_vec(),
            namespace_name: namespace_name.to_owned(),
            identity: identity.to_owned(),
            request_id: request_id.to_owned(),
        };
        let mut client = self.task_client(owner).map_err(|s| remote(owner, s))?;
        let started = client
            .start_task(request)
            .await
            .map_err(|s| remote(owner, s))?;
        Ok(started.into_inner().response)
    }

    fn channel(&self, member: &Member) -> Result<Channel, Status> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = channels.get(&member.address) {
            return Ok(channel.clone());
        }
        let unreachable = |e: tonic::transport::Error| {
            Status::unavailable(format!("cluster member {}: {e}", member.id))
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint =
            Endpoint::from_shared(format!("{scheme}://{}", member.address)).map_err(unreachable)?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(unreachable)?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(member.address.clone(), channel.clone());
        Ok(channel)
    }
}

/// The TLS a node calls the others with, read from `[cluster.tls]`'s files.
pub fn client_tls(config: &ClusterTlsConfig) -> Result<ClientTlsConfig, String> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| format!("[cluster.tls] cannot read {}: {e}", path.display()))
    };
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&config.ca_file)?));
    if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    if let Some(name) = &config.server_name {
        tls = tls.domain_name(name.clone());
    }
    Ok(tls)
}

fn remote(owner: &Member, status: Status) -> ClusterError {
    ClusterError::Remote {
        member: owner.id.clone(),
        gone: status.code() == tonic::Code::NotFound,
        message: status.message().to_owned(),
    }
}
