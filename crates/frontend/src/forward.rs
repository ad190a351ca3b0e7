//! The owner's side of routing: `NodeService.Forward` runs a client's call that another node
//! passed on, as if the client had called here, marked so it is never forwarded again;
//! `TaskService` takes tasks for the queues this node owns and starts tasks of its workflows
//! that another node's poller matched.

use crate::handler::Handler;
use crate::routing::FORWARDED;
use chronicle_api::internal::node_service_server::NodeService;
use chronicle_api::internal::task_service_server::TaskService;
use chronicle_api::internal::{
    AddTasksRequest, AddTasksResponse, ForwardRequest, ForwardResponse, StartTaskRequest,
    StartTaskResponse,
};
use chronicle_api::workflowservice::workflow_service_server::WorkflowService;
use chronicle_common::DispatchTask;
use chronicle_history::NamespaceRef;
use prost::Message;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::{Extensions, Request, Response, Status};

fn decode<T: Message + Default>(bytes: &[u8]) -> Result<T, Status> {
    T::decode(bytes).map_err(|e| Status::invalid_argument(format!("forwarded request: {e}")))
}

fn encoded<R: Message>(
    response: Result<Response<R>, Status>,
) -> Result<Response<ForwardResponse>, Status> {
    response.map(|r| {
        Response::new(ForwardResponse {
            response: r.into_inner().encode_to_vec(),
        })
    })
}

/// The client's metadata as the forwarding node passed it on, plus the mark.
fn metadata(passed: std::collections::HashMap<String, String>) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for (key, value) in passed {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            metadata.insert(key, value);
        }
    }
    metadata.insert(FORWARDED, MetadataValue::from_static("1"));
    metadata
}

/// One arm per forwarded method: decode its request, run it here, encode its response.
macro_rules! dispatch {
    ($self:ident, $call:ident, $($method:literal => $handler:ident),* $(,)?) => {
        match $call.method.as_str() {
            $($method => {
                let request = Request::from_parts(
                    metadata($call.metadata),
                    Extensions::default(),
                    decode(&$call.request)?,
                );
                encoded(WorkflowService::$handler($self, request).await)
            })*
            other => Err(Status::unimplemented(format!("{other} is not forwarded"))),
        }
    };
}

#[tonic::async_trait]
impl NodeService for Handler {
    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardResponse>, Status> {
        let call = request.into_inner();
        dispatch!(self, call,
            "StartWorkflowExecution" => start_workflow_execution,
            "SignalWithStartWorkflowExecution" => signal_with_start_workflow_execution,
            "SignalWorkflowExecution" => signal_workflow_execution,
            "RequestCancelWorkflowExecution" => request_cancel_workflow_execution,
            "TerminateWorkflowExecution" => terminate_workflow_execution,
            "DescribeWorkflowExecution" => describe_workflow_execution,
            "GetWorkflowExecutionHistory" => get_workflow_execution_history,
            "QueryWorkflow" => query_workflow,
            "UpdateWorkflowExecution" => update_workflow_execution,
            "PollWorkflowExecutionUpdate" => poll_workflow_execution_update,
            "ResetWorkflowExecution" => reset_workflow_execution,
            "ResetStickyTaskQueue" => reset_sticky_task_queue,
            "ExecuteMultiOperation" => execute_multi_operation,
            "RespondWorkflowTaskCompleted" => respond_workflow_task_completed,
            "RespondWorkflowTaskFailed" => respond_workflow_task_failed,
            "RespondQueryTaskCompleted" => respond_query_task_completed,
            "RecordActivityTaskHeartbeat" => record_activity_task_heartbeat,
            "RespondActivityTaskCompleted" => respond_activity_task_completed,
            "RespondActivityTaskFailed" => respond_activity_task_failed,
            "RespondActivityTaskCanceled" => respond_activity_task_canceled,
            "RecordActivityTaskHeartbeatById" => record_activity_task_heartbeat_by_id,
            "RespondActivityTaskCompletedById" => respond_activity_task_completed_by_id,
            "RespondActivityTaskFailedById" => respond_activity_task_failed_by_id,
            "RespondActivityTaskCanceledById" => respond_activity_task_canceled_by_id,
            "PollWorkflowTaskQueue" => poll_workflow_task_queue,
            "PollActivityTaskQueue" => poll_activity_task_queue,
        )
    }
}

#[tonic::async_trait]
impl TaskService for Handler {
    async fn add_tasks(
        &self,
        request: Request<AddTasksRequest>,
    ) -> Result<Response<AddTasksResponse>, Status> {
        for task in request.into_inner().tasks {
            self.matching.add(decode::<DispatchTask>(&task)?);
        }
        Ok(Response::new(AddTasksResponse {}))
    }

    async fn start_task(
        &self,
        request: Request<StartTaskRequest>,
    ) -> Result<Response<StartTaskResponse>, Status> {
        let r = request.into_inner();
        let task: DispatchTask = decode(&r.task)?;
        let namespace = NamespaceRef {
            id: task.namespace_id.clone(),
            name: r.namespace_name,
        };
        let response = self
            .history
            .start_task(task, &namespace, &r.identity, &r.request_id)
            .await
            .map_err(|e| Status::from(crate::FrontendError::from(e)))?;
        Ok(Response::new(StartTaskResponse { response }))
    }
}
