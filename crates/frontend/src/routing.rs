//! Routing in a cluster: a client may call any node. A call about one workflow runs on the
//! node that owns the workflow's shard; a node that does not own it forwards the call there
//! over Chronicle's node-to-node protocol (`chronicle.internal.v1.NodeService`), and the
//! owner runs it as its own (`forward.rs`). Task queue polls are not routed yet: workers poll
//! every node.

use crate::handler::Handler;
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::internal::ForwardRequest;
use chronicle_api::internal::node_service_client::NodeServiceClient;
use chronicle_api::workflowservice::execute_multi_operation_request::operation::Operation;
use chronicle_api::workflowservice::*;
use chronicle_cluster::Membership;
use chronicle_common::cluster::{Member, shard_owner};
use chronicle_common::shard_for;
use chronicle_common::token::TaskToken;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tonic::metadata::{KeyAndValueRef, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

/// Metadata a forwarded call carries, so that its owner never forwards it again.
pub(crate) const FORWARDED: &str = "x-chronicle-forwarded";

/// This node's view of the cluster and its connections to the other nodes.
#[derive(Clone)]
pub struct Router {
    membership: Membership,
    clients: Arc<Mutex<HashMap<String, NodeServiceClient<Channel>>>>,
}

impl Router {
    pub fn new(membership: Membership) -> Self {
        Self {
            membership,
            clients: Arc::default(),
        }
    }

    /// A client for the node at `address`; connections are made lazily and kept.
    fn client(&self, address: &str) -> Result<NodeServiceClient<Channel>, Status> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(address) {
            return Ok(client.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| Status::unavailable(format!("cluster member at {address}: {e}")))?;
        let client = NodeServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(chronicle_common::limits::MAX_GRPC_MESSAGE)
            .max_encoding_message_size(chronicle_common::limits::MAX_GRPC_MESSAGE);
        clients.insert(address.to_owned(), client.clone());
        Ok(client)
    }
}

/// The workflow a call is about, as the request names it.
pub(crate) enum Target<'a> {
    /// By its namespace's name and its workflow id.
    Named {
        namespace: &'a str,
        workflow_id: &'a str,
    },
    /// By the task token a worker got with its task.
    Token(&'a [u8]),
    /// Not about one workflow: served here.
    Here,
}

fn named<'a>(namespace: &'a str, execution: Option<&'a WorkflowExecution>) -> Target<'a> {
    Target::Named {
        namespace,
        workflow_id: execution.map_or("", |e| e.workflow_id.as_str()),
    }
}

/// A WorkflowService request that runs on the owner of the workflow it names.
pub(crate) trait Routed: Message + Default + Sized {
    /// The method's name on the wire.
    const METHOD: &'static str;
    fn target(&self) -> Target<'_>;
}

macro_rules! routed {
    ($($request:ident => $method:literal, |$r:ident| $target:expr;)*) => {
        $(impl Routed for $request {
            const METHOD: &'static str = $method;
            fn target(&self) -> Target<'_> {
                let $r = self;
                $target
            }
        })*
    };
}

routed! {
    StartWorkflowExecutionRequest => "StartWorkflowExecution",
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    SignalWithStartWorkflowExecutionRequest => "SignalWithStartWorkflowExecution",
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    SignalWorkflowExecutionRequest => "SignalWorkflowExecution",
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    RequestCancelWorkflowExecutionRequest => "RequestCancelWorkflowExecution",
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    TerminateWorkflowExecutionRequest => "TerminateWorkflowExecution",
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    DescribeWorkflowExecutionRequest => "DescribeWorkflowExecution",
        |r| named(&r.namespace, r.execution.as_ref());
    GetWorkflowExecutionHistoryRequest => "GetWorkflowExecutionHistory",
        |r| named(&r.namespace, r.execution.as_ref());
    QueryWorkflowRequest => "QueryWorkflow",
        |r| named(&r.namespace, r.execution.as_ref());
    UpdateWorkflowExecutionRequest => "UpdateWorkflowExecution",
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    PollWorkflowExecutionUpdateRequest => "PollWorkflowExecutionUpdate",
        |r| named(&r.namespace, r.update_ref.as_ref().and_then(|u| u.workflow_execution.as_ref()));
    ResetWorkflowExecutionRequest => "ResetWorkflowExecution",
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    ResetStickyTaskQueueRequest => "ResetStickyTaskQueue",
        |r| named(&r.namespace, r.execution.as_ref());
    ExecuteMultiOperationRequest => "ExecuteMultiOperation",
        |r| match r.operations.first().and_then(|o| o.operation.as_ref()) {
            Some(Operation::StartWorkflow(start)) => Target::Named {
                namespace: &r.namespace,
                workflow_id: &start.workflow_id,
            },
            _ => Target::Here,
        };
    RespondWorkflowTaskCompletedRequest => "RespondWorkflowTaskCompleted",
        |r| Target::Token(&r.task_token);
    RespondWorkflowTaskFailedRequest => "RespondWorkflowTaskFailed",
        |r| Target::Token(&r.task_token);
    RespondQueryTaskCompletedRequest => "RespondQueryTaskCompleted",
        |r| Target::Token(&r.task_token);
    RecordActivityTaskHeartbeatRequest => "RecordActivityTaskHeartbeat",
        |r| Target::Token(&r.task_token);
    RespondActivityTaskCompletedRequest => "RespondActivityTaskCompleted",
        |r| Target::Token(&r.task_token);
    RespondActivityTaskFailedRequest => "RespondActivityTaskFailed",
        |r| Target::Token(&r.task_token);
    RespondActivityTaskCanceledRequest => "RespondActivityTaskCanceled",
        |r| Target::Token(&r.task_token);
    RecordActivityTaskHeartbeatByIdRequest => "RecordActivityTaskHeartbeatById",
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    RespondActivityTaskCompletedByIdRequest => "RespondActivityTaskCompletedById",
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    RespondActivityTaskFailedByIdRequest => "RespondActivityTaskFailedById",
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    RespondActivityTaskCanceledByIdRequest => "RespondActivityTaskCanceledById",
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
}

impl Handler {
    /// The other node that must run `request`, if one must: none on a lone node, for a call
    /// forwarded here already, and for one this node cannot place (its own checks then
    /// answer it).
    pub(crate) async fn owner<T: Routed>(&self, request: &Request<T>) -> Option<Member> {
        let router = &self.router;
        if request.metadata().contains_key(FORWARDED) {
            return None;
        }
        let (namespace_id, workflow_id) = match request.get_ref().target() {
            Target::Named {
                namespace,
                workflow_id,
            } => {
                let namespace = self.namespaces.resolve(namespace).await.ok()?;
                (namespace.id, workflow_id.to_owned())
            }
            Target::Token(bytes) => {
                let token = TaskToken::from_bytes(bytes).ok()?;
                (token.namespace_id, token.workflow_id)
            }
            Target::Here => return None,
        };
        if workflow_id.is_empty() {
            return None;
        }
        let shard = shard_for(&namespace_id, &workflow_id, self.history.shard_count());
        let live = router.membership.live();
        let owner = shard_owner(&live, shard)?;
        (owner.id != router.membership.me().id).then(|| owner.clone())
    }

    /// Runs `request` on `owner` and answers with what it answered.
    pub(crate) async fn forward<T: Routed, R: Message + Default>(
        &self,
        owner: Member,
        request: Request<T>,
    ) -> Result<Response<R>, Status> {
        let router = &self.router;
        let (metadata, _, message) = request.into_parts();
        let call = ForwardRequest {
            method: T::METHOD.to_owned(),
            request: message.encode_to_vec(),
            metadata: ascii(&metadata),
        };
        let answer = router
            .client(&owner.address)?
            .forward(call)
            .await
            .map_err(|status| unreachable_as_unavailable(status, &owner))?;
        let response = R::decode(answer.into_inner().response.as_slice())
            .map_err(|e| Status::internal(format!("forwarded response undecodable: {e}")))?;
        Ok(Response::new(response))
    }
}

/// The client's ASCII metadata (its deadline, headers SDKs send), for the owner.
fn ascii(metadata: &MetadataMap) -> HashMap<String, String> {
    metadata
        .iter()
        .filter_map(|entry| match entry {
            KeyAndValueRef::Ascii(key, value) => {
                Some((key.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            }
            KeyAndValueRef::Binary(..) => None,
        })
        .collect()
}

/// A member that cannot be reached is, for the client, a server that will answer later.
fn unreachable_as_unavailable(status: Status, owner: &Member) -> Status {
    if status.code() == tonic::Code::Unknown && status.message().contains("transport") {
        Status::unavailable(format!(
            "cluster member {} unreachable: {}",
            owner.id,
            status.message()
        ))
    } else {
        status
    }
}
