//! Routing in a cluster: a client may call any node. A call about one workflow runs on the
//! node that owns the workflow's shard; a node that does not own it forwards the call there
//! over Chronicle's node-to-node protocol (`chronicle.internal.v1.NodeService`), and the
//! owner runs it as its own (`forward.rs`). A task queue's polls run on the queue's owner.

use crate::handler::Handler;
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::internal::{ForwardRequest, ForwardResponse};
use chronicle_api::workflowservice::execute_multi_operation_request::operation::Operation;
use chronicle_api::workflowservice::workflow_service_server::WorkflowService;
use chronicle_api::workflowservice::*;
use chronicle_common::cluster::Member;
use chronicle_common::token::TaskToken;
use chronicle_common::{QueueKind, shard_for};
use prost::Message;
use std::collections::HashMap;
use tonic::metadata::{KeyAndValueRef, MetadataMap};
use tonic::{Request, Response, Status};

/// Metadata a forwarded call carries, so that its owner never forwards it again.
pub(crate) const FORWARDED: &str = "x-chronicle-forwarded";

/// The workflow a call is about, as the request names it.
pub(crate) enum Target<'a> {
    /// By its namespace's name and its workflow id.
    Named {
        namespace: &'a str,
        workflow_id: &'a str,
    },
    /// By the task token a worker got with its task.
    Token(&'a [u8]),
    /// A task queue's poll: it runs on the queue's owner.
    Queue {
        namespace: &'a str,
        queue: &'a str,
        kind: QueueKind,
    },
    /// A schedule: its calls run where its actor runs, on the owner of its job.
    Schedule {
        namespace: &'a str,
        schedule_id: &'a str,
    },
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
    ($($request:ident => $method:literal, $handler:ident, |$r:ident| $target:expr;)*) => {
        $(impl Routed for $request {
            const METHOD: &'static str = $method;
            fn target(&self) -> Target<'_> {
                let $r = self;
                $target
            }
        })*

        /// Runs a call another node forwarded here, named by its method: the same list that
        /// says which calls are routed says which are run, so the two cannot drift apart.
        pub(crate) async fn run_forwarded(
            handler: &Handler,
            call: ForwardRequest,
        ) -> Result<Response<ForwardResponse>, Status> {
            match call.method.as_str() {
                $($method => {
                    let request = crate::forward::request::<$request>(call)?;
                    crate::forward::encoded(WorkflowService::$handler(handler, request).await)
                })*
                other => Err(Status::unimplemented(format!("{other} is not forwarded"))),
            }
        }
    };
}

routed! {
    StartWorkflowExecutionRequest => "StartWorkflowExecution", start_workflow_execution,
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    SignalWithStartWorkflowExecutionRequest => "SignalWithStartWorkflowExecution", signal_with_start_workflow_execution,
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    SignalWorkflowExecutionRequest => "SignalWorkflowExecution", signal_workflow_execution,
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    RequestCancelWorkflowExecutionRequest => "RequestCancelWorkflowExecution", request_cancel_workflow_execution,
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    TerminateWorkflowExecutionRequest => "TerminateWorkflowExecution", terminate_workflow_execution,
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    DescribeWorkflowExecutionRequest => "DescribeWorkflowExecution", describe_workflow_execution,
        |r| named(&r.namespace, r.execution.as_ref());
    GetWorkflowExecutionHistoryRequest => "GetWorkflowExecutionHistory", get_workflow_execution_history,
        |r| named(&r.namespace, r.execution.as_ref());
    GetWorkflowExecutionHistoryReverseRequest => "GetWorkflowExecutionHistoryReverse", get_workflow_execution_history_reverse,
        |r| named(&r.namespace, r.execution.as_ref());
    DeleteWorkflowExecutionRequest => "DeleteWorkflowExecution", delete_workflow_execution,
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    QueryWorkflowRequest => "QueryWorkflow", query_workflow,
        |r| named(&r.namespace, r.execution.as_ref());
    UpdateWorkflowExecutionRequest => "UpdateWorkflowExecution", update_workflow_execution,
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    PollWorkflowExecutionUpdateRequest => "PollWorkflowExecutionUpdate", poll_workflow_execution_update,
        |r| named(&r.namespace, r.update_ref.as_ref().and_then(|u| u.workflow_execution.as_ref()));
    ResetWorkflowExecutionRequest => "ResetWorkflowExecution", reset_workflow_execution,
        |r| named(&r.namespace, r.workflow_execution.as_ref());
    PauseActivityRequest => "PauseActivity", pause_activity,
        |r| named(&r.namespace, r.execution.as_ref());
    UnpauseActivityRequest => "UnpauseActivity", unpause_activity,
        |r| named(&r.namespace, r.execution.as_ref());
    ResetActivityRequest => "ResetActivity", reset_activity,
        |r| named(&r.namespace, r.execution.as_ref());
    UpdateActivityOptionsRequest => "UpdateActivityOptions", update_activity_options,
        |r| named(&r.namespace, r.execution.as_ref());
    ResetStickyTaskQueueRequest => "ResetStickyTaskQueue", reset_sticky_task_queue,
        |r| named(&r.namespace, r.execution.as_ref());
    ExecuteMultiOperationRequest => "ExecuteMultiOperation", execute_multi_operation,
        |r| match r.operations.first().and_then(|o| o.operation.as_ref()) {
            Some(Operation::StartWorkflow(start)) => Target::Named {
                namespace: &r.namespace,
                workflow_id: &start.workflow_id,
            },
            _ => Target::Here,
        };
    RespondWorkflowTaskCompletedRequest => "RespondWorkflowTaskCompleted", respond_workflow_task_completed,
        |r| Target::Token(&r.task_token);
    RespondWorkflowTaskFailedRequest => "RespondWorkflowTaskFailed", respond_workflow_task_failed,
        |r| Target::Token(&r.task_token);
    RespondQueryTaskCompletedRequest => "RespondQueryTaskCompleted", respond_query_task_completed,
        |r| Target::Token(&r.task_token);
    RecordActivityTaskHeartbeatRequest => "RecordActivityTaskHeartbeat", record_activity_task_heartbeat,
        |r| Target::Token(&r.task_token);
    RespondActivityTaskCompletedRequest => "RespondActivityTaskCompleted", respond_activity_task_completed,
        |r| Target::Token(&r.task_token);
    RespondActivityTaskFailedRequest => "RespondActivityTaskFailed", respond_activity_task_failed,
        |r| Target::Token(&r.task_token);
    RespondActivityTaskCanceledRequest => "RespondActivityTaskCanceled", respond_activity_task_canceled,
        |r| Target::Token(&r.task_token);
    RecordActivityTaskHeartbeatByIdRequest => "RecordActivityTaskHeartbeatById", record_activity_task_heartbeat_by_id,
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    RespondActivityTaskCompletedByIdRequest => "RespondActivityTaskCompletedById", respond_activity_task_completed_by_id,
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    RespondActivityTaskFailedByIdRequest => "RespondActivityTaskFailedById", respond_activity_task_failed_by_id,
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    RespondActivityTaskCanceledByIdRequest => "RespondActivityTaskCanceledById", respond_activity_task_canceled_by_id,
        |r| Target::Named { namespace: &r.namespace, workflow_id: &r.workflow_id };
    CreateScheduleRequest => "CreateSchedule", create_schedule,
        |r| Target::Schedule { namespace: &r.namespace, schedule_id: &r.schedule_id };
    DescribeScheduleRequest => "DescribeSchedule", describe_schedule,
        |r| Target::Schedule { namespace: &r.namespace, schedule_id: &r.schedule_id };
    UpdateScheduleRequest => "UpdateSchedule", update_schedule,
        |r| Target::Schedule { namespace: &r.namespace, schedule_id: &r.schedule_id };
    PatchScheduleRequest => "PatchSchedule", patch_schedule,
        |r| Target::Schedule { namespace: &r.namespace, schedule_id: &r.schedule_id };
    DeleteScheduleRequest => "DeleteSchedule", delete_schedule,
        |r| Target::Schedule { namespace: &r.namespace, schedule_id: &r.schedule_id };
    PollWorkflowTaskQueueRequest => "PollWorkflowTaskQueue", poll_workflow_task_queue,
        |r| Target::Queue {
            namespace: &r.namespace,
            queue: r.task_queue.as_ref().map_or("", |q| q.name.as_str()),
            kind: QueueKind::Workflow,
        };
    PollActivityTaskQueueRequest => "PollActivityTaskQueue", poll_activity_task_queue,
        |r| Target::Queue {
            namespace: &r.namespace,
            queue: r.task_queue.as_ref().map_or("", |q| q.name.as_str()),
            kind: QueueKind::Activity,
        };
}

impl Handler {
    /// The other node that must run `request`, if one must: none on a lone node, for a call
    /// forwarded here already, and for one this node cannot place (its own checks then
    /// answer it).
    pub(crate) async fn owner<T: Routed>(&self, request: &Request<T>) -> Option<Member> {
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
            Target::Queue {
                namespace,
                queue,
                kind,
            } => {
                let namespace = self.namespaces.resolve(namespace).await.ok()?;
                return self.nodes.remote_queue_owner(&namespace.id, queue, kind);
            }
            Target::Schedule {
                namespace,
                schedule_id,
            } => {
                let namespace = self.namespaces.resolve(namespace).await.ok()?;
                return self.nodes.remote_job_owner(&namespace.id, schedule_id);
            }
            Target::Here => return None,
        };
        if workflow_id.is_empty() {
            return None;
        }
        let shard = shard_for(&namespace_id, &workflow_id, self.history.shard_count());
        self.nodes.remote_shard_owner(shard)
    }

    /// Runs `request` on `owner` and answers with what it answered.
    pub(crate) async fn forward<T: Routed, R: Message + Default>(
        &self,
        owner: Member,
        request: Request<T>,
    ) -> Result<Response<R>, Status> {
        let (metadata, _, message) = request.into_parts();
        let call = ForwardRequest {
            method: T::METHOD.to_owned(),
            request: message.encode_to_vec(),
            metadata: ascii(&metadata),
        };
        let answer = self.nodes.node_client(&owner)?.forward(call).await?;
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
