//! Reaching the other members: one NodeService and one TaskService client per member
//! address, connected lazily and kept.

use crate::{ClusterError, Membership};
use chronicle_api::internal::node_service_client::NodeServiceClient;
use chronicle_api::internal::task_service_client::TaskServiceClient;
use chronicle_api::internal::{AddTasksRequest, StartTaskRequest};
use chronicle_common::cluster::{Member, Members, job_owner, queue_owner};
use chronicle_common::limits::MAX_GRPC_MESSAGE;
use chronicle_common::{DispatchTask, QueueKind};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

/// This node's way to the others: who owns what, and a channel to each.
#[derive(Clone)]
pub struct Nodes {
    membership: Membership,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Nodes {
    pub fn new(membership: Membership) -> Self {
        Self {
            membership,
            channels: Arc::default(),
        }
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
        let endpoint = Endpoint::from_shared(format!("http://{}", member.address))
            .map_err(|e| Status::unavailable(format!("cluster member {}: {e}", member.id)))?;
        let channel = endpoint.connect_lazy();
        channels.insert(member.address.clone(), channel.clone());
        Ok(channel)
    }
}

fn remote(owner: &Member, status: Status) -> ClusterError {
    ClusterError::Remote {
        member: owner.id.clone(),
        gone: status.code() == tonic::Code::NotFound,
        message: status.message().to_owned(),
    }
}
