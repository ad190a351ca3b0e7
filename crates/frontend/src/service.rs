//! WorkflowService: each RPC unwraps its request and hands it to the handler. RPCs not listed
//! here answer `Unimplemented` naming themselves (the generated default).

use crate::error::Result as FrontendResult;
use crate::handler::Handler;
use crate::tasks::ActivityCall;
use chronicle_api::workflowservice::workflow_service_server::WorkflowService;
use chronicle_api::workflowservice::*;
use chronicle_history::ActivityResponse;
use tonic::{Request, Response, Status};

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(result: FrontendResult<T>) -> Reply<T> {
    result.map(Response::new).map_err(Status::from)
}

fn by_id<'a>(workflow_id: String, run_id: String, activity_id: String) -> ActivityCall<'a> {
    ActivityCall::Id {
        workflow_id,
        run_id,
        activity_id,
    }
}

/// Runs the call on the node that owns the workflow it names: forwards it there when that
/// is another node.
macro_rules! on_owner {
    ($self:ident, $request:ident) => {
        if let Some(owner) = $self.owner(&$request).await {
            return $self.forward(owner, $request).await;
        }
    };
}

/// For RPCs whose response is an empty message.
fn done<T: Default>(result: FrontendResult<()>) -> Reply<T> {
    reply(result.map(|()| T::default()))
}

#[tonic::async_trait]
impl WorkflowService for Handler {
    async fn register_namespace(
        &self,
        request: Request<RegisterNamespaceRequest>,
    ) -> Reply<RegisterNamespaceResponse> {
        done(self.namespaces.register(request.into_inner()).await)
    }

    async fn describe_namespace(
        &self,
        request: Request<DescribeNamespaceRequest>,
    ) -> Reply<DescribeNamespaceResponse> {
        let described = self.namespaces.describe(request.into_inner()).await;
        reply(described.map(|d| crate::namespaces::with_limits(d, &self.limits)))
    }

    async fn list_namespaces(
        &self,
        request: Request<ListNamespacesRequest>,
    ) -> Reply<ListNamespacesResponse> {
        reply(self.namespaces.list(request.into_inner()).await)
    }

    async fn update_namespace(
        &self,
        request: Request<UpdateNamespaceRequest>,
    ) -> Reply<UpdateNamespaceResponse> {
        reply(self.namespaces.update(request.into_inner()).await)
    }

    async fn deprecate_namespace(
        &self,
        request: Request<DeprecateNamespaceRequest>,
    ) -> Reply<DeprecateNamespaceResponse> {
        done(
            self.namespaces
                .deprecate(&request.into_inner().namespace)
                .await,
        )
    }

    async fn get_system_info(
        &self,
        _: Request<GetSystemInfoRequest>,
    ) -> Reply<GetSystemInfoResponse> {
        Ok(Response::new(self.system_info()))
    }

    async fn get_cluster_info(
        &self,
        _: Request<GetClusterInfoRequest>,
    ) -> Reply<GetClusterInfoResponse> {
        Ok(Response::new(self.cluster_info()))
    }

    async fn start_workflow_execution(
        &self,
        request: Request<StartWorkflowExecutionRequest>,
    ) -> Reply<StartWorkflowExecutionResponse> {
        on_owner!(self, request);
        reply(self.start(request.into_inner()).await)
    }

    async fn signal_with_start_workflow_execution(
        &self,
        request: Request<SignalWithStartWorkflowExecutionRequest>,
    ) -> Reply<SignalWithStartWorkflowExecutionResponse> {
        on_owner!(self, request);
        reply(self.signal_with_start(request.into_inner()).await)
    }

    async fn signal_workflow_execution(
        &self,
        request: Request<SignalWorkflowExecutionRequest>,
    ) -> Reply<SignalWorkflowExecutionResponse> {
        on_owner!(self, request);
        done(self.signal(request.into_inner()).await)
    }

    async fn request_cancel_workflow_execution(
        &self,
        request: Request<RequestCancelWorkflowExecutionRequest>,
    ) -> Reply<RequestCancelWorkflowExecutionResponse> {
        on_owner!(self, request);
        done(self.request_cancel(request.into_inner()).await)
    }

    async fn terminate_workflow_execution(
        &self,
        request: Request<TerminateWorkflowExecutionRequest>,
    ) -> Reply<TerminateWorkflowExecutionResponse> {
        on_owner!(self, request);
        done(self.terminate(request.into_inner()).await)
    }

    async fn describe_workflow_execution(
        &self,
        request: Request<DescribeWorkflowExecutionRequest>,
    ) -> Reply<DescribeWorkflowExecutionResponse> {
        on_owner!(self, request);
        reply(self.describe_execution(request.into_inner()).await)
    }

    async fn get_workflow_execution_history(
        &self,
        request: Request<GetWorkflowExecutionHistoryRequest>,
    ) -> Reply<GetWorkflowExecutionHistoryResponse> {
        on_owner!(self, request);
        let (metadata, _, r) = request.into_parts();
        reply(self.history(&metadata, r).await)
    }

    async fn get_workflow_execution_history_reverse(
        &self,
        request: Request<GetWorkflowExecutionHistoryReverseRequest>,
    ) -> Reply<GetWorkflowExecutionHistoryReverseResponse> {
        on_owner!(self, request);
        reply(self.history_reverse(request.into_inner()).await)
    }

    async fn delete_workflow_execution(
        &self,
        request: Request<DeleteWorkflowExecutionRequest>,
    ) -> Reply<DeleteWorkflowExecutionResponse> {
        on_owner!(self, request);
        done(self.delete_execution(request.into_inner()).await)
    }

    async fn poll_workflow_task_queue(
        &self,
        request: Request<PollWorkflowTaskQueueRequest>,
    ) -> Reply<PollWorkflowTaskQueueResponse> {
        on_owner!(self, request);
        let (metadata, _, r) = request.into_parts();
        reply(self.poll_workflow_task(&metadata, r).await)
    }

    async fn respond_workflow_task_completed(
        &self,
        request: Request<RespondWorkflowTaskCompletedRequest>,
    ) -> Reply<RespondWorkflowTaskCompletedResponse> {
        on_owner!(self, request);
        reply(self.complete_workflow_task(request.into_inner()).await)
    }

    async fn respond_workflow_task_failed(
        &self,
        request: Request<RespondWorkflowTaskFailedRequest>,
    ) -> Reply<RespondWorkflowTaskFailedResponse> {
        on_owner!(self, request);
        done(self.fail_workflow_task(request.into_inner()).await)
    }

    async fn poll_activity_task_queue(
        &self,
        request: Request<PollActivityTaskQueueRequest>,
    ) -> Reply<PollActivityTaskQueueResponse> {
        on_owner!(self, request);
        let (metadata, _, r) = request.into_parts();
        reply(self.poll_activity_task(&metadata, r).await)
    }

    async fn record_activity_task_heartbeat(
        &self,
        request: Request<RecordActivityTaskHeartbeatRequest>,
    ) -> Reply<RecordActivityTaskHeartbeatResponse> {
        on_owner!(self, request);
        let r = request.into_inner();
        let answer = self
            .heartbeat(&r.namespace, ActivityCall::Token(&r.task_token), r.details)
            .await;
        reply(answer.map(|a| RecordActivityTaskHeartbeatResponse {
            cancel_requested: a.cancel_requested,
            activity_paused: a.paused,
            activity_reset: a.reset,
        }))
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        request: Request<RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Reply<RecordActivityTaskHeartbeatByIdResponse> {
        on_owner!(self, request);
        let r = request.into_inner();
        let answer = self
            .heartbeat(
                &r.namespace,
                by_id(r.workflow_id, r.run_id, r.activity_id),
                r.details,
            )
            .await;
        reply(answer.map(|a| RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested: a.cancel_requested,
            activity_paused: a.paused,
            activity_reset: a.reset,
        }))
    }

    async fn pause_activity(
        &self,
        request: Request<PauseActivityRequest>,
    ) -> Reply<PauseActivityResponse> {
        on_owner!(self, request);
        done(Handler::pause_activity(self, request.into_inner()).await)
    }

    async fn unpause_activity(
        &self,
        request: Request<UnpauseActivityRequest>,
    ) -> Reply<UnpauseActivityResponse> {
        on_owner!(self, request);
        done(Handler::unpause_activity(self, request.into_inner()).await)
    }

    async fn reset_activity(
        &self,
        request: Request<ResetActivityRequest>,
    ) -> Reply<ResetActivityResponse> {
        on_owner!(self, request);
        done(Handler::reset_activity(self, request.into_inner()).await)
    }

    async fn update_activity_options(
        &self,
        request: Request<UpdateActivityOptionsRequest>,
    ) -> Reply<UpdateActivityOptionsResponse> {
        on_owner!(self, request);
        reply(Handler::update_activity_options(self, request.into_inner()).await)
    }

    async fn respond_activity_task_completed(
        &self,
        request: Request<RespondActivityTaskCompletedRequest>,
    ) -> Reply<RespondActivityTaskCompletedResponse> {
        on_owner!(self, request);
        let r = request.into_inner();
        done(
            self.respond_activity(
                &r.namespace,
                ActivityCall::Token(&r.task_token),
                ActivityResponse::Completed(r.result),
                r.identity,
            )
            .await,
        )
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        request: Request<RespondActivityTaskCompletedByIdRequest>,
    ) -> Reply<RespondActivityTaskCompletedByIdResponse> {
        on_owner!(self, request);
        let r = request.into_inner();
        done(
            self.respond_activity(
                &r.namespace,
                by_id(r.workflow_id, r.run_id, r.activity_id),
                ActivityResponse::Completed(r.result),
                r.identity,
            )
            .await,
        )
    }

    async fn respond_activity_task_failed(
        &self,
        request: Request<RespondActivityTaskFailedRequest>,
    ) -> Reply<RespondActivityTaskFailedResponse> {
        on_owner!(self, request);
        let r = request.into_inner();
        done(
            self.respond_activity(
                &r.namespace,
                ActivityCall::Token(&r.task_token),
                ActivityResponse::Failed {
                    failure: r.failure.map(Box::new),
                    last_heartbeat_details: r.last_heartbeat_details,
                },
                r.identity,
            )
            .await,
        )
    }

    async fn respond_activity_task_failed_by_id(
        &self,
        request: Request<RespondActivityTaskFailedByIdRequest>,
    ) -> Reply<RespondActivityTaskFailedByIdResponse> {
        on_owner!(self, request);
        let r = request.into_inner();
        done(
            self.respond_activity(
                &r.namespace,
                by_id(r.workflow_id, r.run_id, r.activity_id),
                ActivityResponse::Failed {
                    failure: r.failure.map(Box::new),
                    last_heartbeat_details: r.last_heartbeat_details,
                },
                r.identity,
            )
            .await,
        )
    }

    async fn respond_activity_task_canceled(
        &self,
        request: Request<RespondActivityTaskCanceledRequest>,
    ) -> Reply<RespondActivityTaskCanceledResponse> {
        on_owner!(self, request);
        let r = request.into_inner();
        done(
            self.respond_activity(
                &r.namespace,
                ActivityCall::Token(&r.task_token),
                ActivityResponse::Canceled(r.details),
                r.identity,
            )
            .await,
        )
    }

    async fn respond_activity_task_canceled_by_id(
        &self,
        request: Request<RespondActivityTaskCanceledByIdRequest>,
    ) -> Reply<RespondActivityTaskCanceledByIdResponse> {
        on_owner!(self, request);
        let r = request.into_inner();
        done(
            self.respond_activity(
                &r.namespace,
                by_id(r.workflow_id, r.run_id, r.activity_id),
                ActivityResponse::Canceled(r.details),
                r.identity,
            )
            .await,
        )
    }

    async fn query_workflow(
        &self,
        request: Request<QueryWorkflowRequest>,
    ) -> Reply<QueryWorkflowResponse> {
        on_owner!(self, request);
        let (metadata, _, r) = request.into_parts();
        reply(self.query(&metadata, r).await)
    }

    async fn respond_query_task_completed(
        &self,
        request: Request<RespondQueryTaskCompletedRequest>,
    ) -> Reply<RespondQueryTaskCompletedResponse> {
        on_owner!(self, request);
        done(self.answer_query(request.into_inner()).await)
    }

    async fn update_workflow_execution(
        &self,
        request: Request<UpdateWorkflowExecutionRequest>,
    ) -> Reply<UpdateWorkflowExecutionResponse> {
        on_owner!(self, request);
        let (metadata, _, r) = request.into_parts();
        reply(self.update(&metadata, r).await)
    }

    async fn poll_workflow_execution_update(
        &self,
        request: Request<PollWorkflowExecutionUpdateRequest>,
    ) -> Reply<PollWorkflowExecutionUpdateResponse> {
        on_owner!(self, request);
        let (metadata, _, r) = request.into_parts();
        reply(self.poll_update(&metadata, r).await)
    }

    async fn execute_multi_operation(
        &self,
        request: Request<ExecuteMultiOperationRequest>,
    ) -> Reply<ExecuteMultiOperationResponse> {
        on_owner!(self, request);
        let (metadata, _, r) = request.into_parts();
        reply(self.multi_operation(&metadata, r).await)
    }

    async fn reset_workflow_execution(
        &self,
        request: Request<ResetWorkflowExecutionRequest>,
    ) -> Reply<ResetWorkflowExecutionResponse> {
        on_owner!(self, request);
        reply(self.reset(request.into_inner()).await)
    }

    async fn list_workflow_executions(
        &self,
        request: Request<ListWorkflowExecutionsRequest>,
    ) -> Reply<ListWorkflowExecutionsResponse> {
        reply(self.list_workflows(request.into_inner()).await)
    }

    /// Scan is List without ordering guarantees; List's order serves.
    async fn scan_workflow_executions(
        &self,
        request: Request<ScanWorkflowExecutionsRequest>,
    ) -> Reply<ScanWorkflowExecutionsResponse> {
        let r = request.into_inner();
        let list = ListWorkflowExecutionsRequest {
            namespace: r.namespace,
            page_size: r.page_size,
            next_page_token: r.next_page_token,
            query: r.query,
        };
        reply(
            self.list_workflows(list)
                .await
                .map(|page| ScanWorkflowExecutionsResponse {
                    executions: page.executions,
                    next_page_token: page.next_page_token,
                }),
        )
    }

    async fn count_workflow_executions(
        &self,
        request: Request<CountWorkflowExecutionsRequest>,
    ) -> Reply<CountWorkflowExecutionsResponse> {
        reply(self.count_workflows(request.into_inner()).await)
    }

    async fn list_open_workflow_executions(
        &self,
        request: Request<ListOpenWorkflowExecutionsRequest>,
    ) -> Reply<ListOpenWorkflowExecutionsResponse> {
        reply(self.list_open(request.into_inner()).await)
    }

    async fn list_closed_workflow_executions(
        &self,
        request: Request<ListClosedWorkflowExecutionsRequest>,
    ) -> Reply<ListClosedWorkflowExecutionsResponse> {
        reply(self.list_closed(request.into_inner()).await)
    }

    async fn get_search_attributes(
        &self,
        _: Request<GetSearchAttributesRequest>,
    ) -> Reply<GetSearchAttributesResponse> {
        reply(self.get_search_attributes().await)
    }

    async fn create_schedule(
        &self,
        request: Request<CreateScheduleRequest>,
    ) -> Reply<CreateScheduleResponse> {
        on_owner!(self, request);
        reply(Handler::create_schedule(self, request.into_inner()).await)
    }

    async fn describe_schedule(
        &self,
        request: Request<DescribeScheduleRequest>,
    ) -> Reply<DescribeScheduleResponse> {
        on_owner!(self, request);
        reply(Handler::describe_schedule(self, request.into_inner()).await)
    }

    async fn update_schedule(
        &self,
        request: Request<UpdateScheduleRequest>,
    ) -> Reply<UpdateScheduleResponse> {
        on_owner!(self, request);
        done(Handler::update_schedule(self, request.into_inner()).await)
    }

    async fn patch_schedule(
        &self,
        request: Request<PatchScheduleRequest>,
    ) -> Reply<PatchScheduleResponse> {
        on_owner!(self, request);
        done(Handler::patch_schedule(self, request.into_inner()).await)
    }

    async fn delete_schedule(
        &self,
        request: Request<DeleteScheduleRequest>,
    ) -> Reply<DeleteScheduleResponse> {
        on_owner!(self, request);
        done(Handler::delete_schedule(self, request.into_inner()).await)
    }

    async fn list_schedules(
        &self,
        request: Request<ListSchedulesRequest>,
    ) -> Reply<ListSchedulesResponse> {
        reply(Handler::list_schedules(self, request.into_inner()).await)
    }

    async fn count_schedules(
        &self,
        request: Request<CountSchedulesRequest>,
    ) -> Reply<CountSchedulesResponse> {
        reply(Handler::count_schedules(self, request.into_inner()).await)
    }

    async fn list_schedule_matching_times(
        &self,
        request: Request<ListScheduleMatchingTimesRequest>,
    ) -> Reply<ListScheduleMatchingTimesResponse> {
        reply(self.schedule_matching_times(request.into_inner()).await)
    }

    async fn start_batch_operation(
        &self,
        request: Request<StartBatchOperationRequest>,
    ) -> Reply<StartBatchOperationResponse> {
        done(self.start_batch(request.into_inner()).await)
    }

    async fn describe_batch_operation(
        &self,
        request: Request<DescribeBatchOperationRequest>,
    ) -> Reply<DescribeBatchOperationResponse> {
        reply(self.describe_batch(request.into_inner()).await)
    }

    async fn list_batch_operations(
        &self,
        request: Request<ListBatchOperationsRequest>,
    ) -> Reply<ListBatchOperationsResponse> {
        reply(self.list_batches(request.into_inner()).await)
    }

    async fn stop_batch_operation(
        &self,
        request: Request<StopBatchOperationRequest>,
    ) -> Reply<StopBatchOperationResponse> {
        done(self.stop_batch(request.into_inner()).await)
    }

    async fn describe_task_queue(
        &self,
        request: Request<DescribeTaskQueueRequest>,
    ) -> Reply<DescribeTaskQueueResponse> {
        reply(self.describe_task_queue(request.into_inner()).await)
    }

    /// A worker going away hands back its sticky queue: workflow tasks waiting there go to
    /// the normal queue at once.
    async fn shutdown_worker(
        &self,
        request: Request<ShutdownWorkerRequest>,
    ) -> Reply<ShutdownWorkerResponse> {
        done(self.shutdown_worker(request.into_inner()).await)
    }

    async fn reset_sticky_task_queue(
        &self,
        request: Request<ResetStickyTaskQueueRequest>,
    ) -> Reply<ResetStickyTaskQueueResponse> {
        on_owner!(self, request);
        done(self.reset_sticky(request.into_inner()).await)
    }
}
