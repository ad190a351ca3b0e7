//! The owner's side of routing: `NodeService.Forward` runs a client's call that another node
//! passed on, as if the client had called here, marked so it is never forwarded again;
//! `TaskService` takes tasks for the queues this node owns and starts tasks of its workflows
//! that another node's poller matched. The internal worker's calls take the client's path.

use crate::handler::Handler;
use crate::routing::FORWARDED;
use chronicle_api::internal::node_service_server::NodeService;
use chronicle_api::internal::task_service_server::TaskService;
use chronicle_api::internal::{
    AddTasksRequest, AddTasksResponse, ForwardRequest, ForwardResponse, StartTaskRequest,
    StartTaskResponse,
};
use chronicle_api::workflowservice::workflow_service_server::WorkflowService;
use chronicle_api::workflowservice::{
    DeleteWorkflowExecutionRequest, GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryResponse, RequestCancelWorkflowExecutionRequest,
    ResetWorkflowExecutionRequest, SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
};
use chronicle_common::DispatchTask;
use chronicle_history::NamespaceRef;
use prost::Message;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::{Extensions, Request, Response, Status};

/// A forwarded call's request, with the client's metadata and the mark.
pub(crate) fn request<T: Message + Default>(call: ForwardRequest) -> Result<Request<T>, Status> {
    let message = decode(&call.request)?;
    Ok(Request::from_parts(
        metadata(call.metadata),
        Extensions::default(),
        message,
    ))
}

fn decode<T: Message + Default>(bytes: &[u8]) -> Result<T, Status> {
    T::decode(bytes).map_err(|e| Status::invalid_argument(format!("forwarded request: {e}")))
}

pub(crate) fn encoded<R: Message>(
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

#[tonic::async_trait]
impl NodeService for Handler {
    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardResponse>, Status> {
        crate::routing::run_forwarded(self, request.into_inner()).await
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
            retention: None,
        };
        let response = self
            .history
            .start_task(task, &namespace, &r.identity, &r.request_id)
            .await
            .map_err(|e| Status::from(crate::FrontendError::from(e)))?;
        Ok(Response::new(StartTaskResponse { response }))
    }
}

/// The internal worker's jobs act on workflows as a client's calls do: routed to the node
/// owning each workflow.
#[tonic::async_trait]
impl chronicle_worker::Workflows for Handler {
    async fn terminate(&self, r: TerminateWorkflowExecutionRequest) -> Result<(), Status> {
        WorkflowService::terminate_workflow_execution(self, Request::new(r)).await?;
        Ok(())
    }

    async fn request_cancel(&self, r: RequestCancelWorkflowExecutionRequest) -> Result<(), Status> {
        WorkflowService::request_cancel_workflow_execution(self, Request::new(r)).await?;
        Ok(())
    }

    async fn signal(&self, r: SignalWorkflowExecutionRequest) -> Result<(), Status> {
        WorkflowService::signal_workflow_execution(self, Request::new(r)).await?;
        Ok(())
    }

    async fn delete(&self, r: DeleteWorkflowExecutionRequest) -> Result<(), Status> {
        WorkflowService::delete_workflow_execution(self, Request::new(r)).await?;
        Ok(())
    }

    async fn reset(&self, r: ResetWorkflowExecutionRequest) -> Result<(), Status> {
        WorkflowService::reset_workflow_execution(self, Request::new(r)).await?;
        Ok(())
    }

    async fn start(&self, r: StartWorkflowExecutionRequest) -> Result<String, Status> {
        let response = WorkflowService::start_workflow_execution(self, Request::new(r)).await?;
        Ok(response.into_inner().run_id)
    }

    async fn history(
        &self,
        r: GetWorkflowExecutionHistoryRequest,
    ) -> Result<GetWorkflowExecutionHistoryResponse, Status> {
        let response =
            WorkflowService::get_workflow_execution_history(self, Request::new(r)).await?;
        Ok(response.into_inner())
    }
}
