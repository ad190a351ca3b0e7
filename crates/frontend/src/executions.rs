//! Client calls on workflow executions: start, signal, cancel, terminate, describe, history.

use crate::deadline::long_poll_deadline;
use crate::error::{Result, invalid};
use crate::handler::Handler;
use crate::validate::{self, Blobs};
use chronicle_api::enums::v1::WorkflowIdConflictPolicy;
use chronicle_api::workflowservice::*;
use chronicle_common::limits;
use std::time::Duration;

/// Temporal answers a history long poll after about this long with a continuation token.
const HISTORY_LONG_POLL: Duration = Duration::from_secs(20);
/// A query no worker answers fails after this long unless the client's deadline is sooner.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// What StartWorkflowExecution and SignalWithStart have in common.
fn start_fields(
    workflow_id: &str,
    workflow_type: Option<&chronicle_api::common::v1::WorkflowType>,
    task_queue: Option<&chronicle_api::taskqueue::v1::TaskQueue>,
    identity: &str,
    request_id: &str,
) -> Result<()> {
    validate::id(workflow_id, "WorkflowId")?;
    validate::id(
        workflow_type.map(|t| t.name.as_str()).unwrap_or_default(),
        "WorkflowType",
    )?;
    validate::task_queue(task_queue)?;
    validate::optional_id(identity, "Identity")?;
    validate::optional_id(request_id, "RequestId")
}

fn validate_start(blobs: &Blobs, r: &mut StartWorkflowExecutionRequest) -> Result<()> {
    start_fields(
        &r.workflow_id,
        r.workflow_type.as_ref(),
        r.task_queue.as_ref(),
        &r.identity,
        &r.request_id,
    )?;
    blobs.check(r.input.as_ref(), "Input")?;
    blobs.check(r.header.as_ref(), "Header")?;
    or_new_request_id(&mut r.request_id);
    Ok(())
}

fn or_new_request_id(request_id: &mut String) {
    if request_id.is_empty() {
        *request_id = uuid::Uuid::new_v4().to_string();
    }
}

fn validate_update_request(
    blobs: &Blobs,
    request: Option<&chronicle_api::update::v1::Request>,
) -> Result<()> {
    let request = request.ok_or_else(|| invalid("Update request is not set on request."))?;
    validate::id(
        request
            .meta
            .as_ref()
            .map(|m| m.update_id.as_str())
            .unwrap_or_default(),
        "UpdateId",
    )?;
    let input = request.input.as_ref();
    validate::id(
        input.map(|i| i.name.as_str()).unwrap_or_default(),
        "Update name",
    )?;
    blobs.check(input.and_then(|i| i.header.as_ref()), "Update header")?;
    blobs.check(input.and_then(|i| i.args.as_ref()), "Update args")
}

impl Handler {
    pub async fn start(
        &self,
        mut r: StartWorkflowExecutionRequest,
    ) -> Result<StartWorkflowExecutionResponse> {
        let namespace = self.namespaces.resolve_for_start(&r.namespace).await?;
        validate_start(&self.blobs(&namespace.name), &mut r)?;
        Ok(self.history.start_workflow(&namespace, r).await?)
    }

    pub async fn signal_with_start(
        &self,
        mut r: SignalWithStartWorkflowExecutionRequest,
    ) -> Result<SignalWithStartWorkflowExecutionResponse> {
        let namespace = self.namespaces.resolve_for_start(&r.namespace).await?;
        start_fields(
            &r.workflow_id,
            r.workflow_type.as_ref(),
            r.task_queue.as_ref(),
            &r.identity,
            &r.request_id,
        )?;
        validate::id(&r.signal_name, "SignalName")?;
        // A signal-with-start is for a workflow that may be running: refusing one would defeat it.
        if r.workflow_id_conflict_policy == WorkflowIdConflictPolicy::Fail as i32 {
            return Err(invalid(
                "Invalid WorkflowIDConflictPolicy: WORKFLOW_ID_CONFLICT_POLICY_FAIL is not supported for this operation.",
            ));
        }
        let blobs = self.blobs(&r.namespace);
        blobs.check(r.input.as_ref(), "Input")?;
        blobs.check(r.header.as_ref(), "Header")?;
        blobs.check(r.signal_input.as_ref(), "SignalInput")?;
        or_new_request_id(&mut r.request_id);
        let started = self.history.signal_with_start(&namespace, r).await?;
        Ok(SignalWithStartWorkflowExecutionResponse {
            run_id: started.run_id,
            started: started.started,
            ..Default::default()
        })
    }

    pub async fn signal(&self, r: SignalWorkflowExecutionRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.workflow_execution.as_ref())?;
        validate::id(&r.signal_name, "SignalName")?;
        let blobs = self.blobs(&r.namespace);
        blobs.check(r.input.as_ref(), "Input")?;
        blobs.check(r.header.as_ref(), "Header")?;
        validate::optional_id(&r.request_id, "RequestId")?;
        Ok(self.history.signal(&namespace.id, r).await?)
    }

    pub async fn request_cancel(&self, r: RequestCancelWorkflowExecutionRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.workflow_execution.as_ref())?;
        Ok(self.history.request_cancel(&namespace.id, r).await?)
    }

    pub async fn terminate(&self, r: TerminateWorkflowExecutionRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.workflow_execution.as_ref())?;
        self.blobs(&r.namespace)
            .check(r.details.as_ref(), "Details")?;
        Ok(self.history.terminate(&namespace.id, r).await?)
    }

    pub async fn describe_execution(
        &self,
        r: DescribeWorkflowExecutionRequest,
    ) -> Result<DescribeWorkflowExecutionResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        Ok(self.history.describe(&namespace.id, r).await?)
    }

    pub async fn query(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        r: QueryWorkflowRequest,
    ) -> Result<QueryWorkflowResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        let query_type = r
            .query
            .as_ref()
            .map(|q| q.query_type.as_str())
            .unwrap_or_default();
        validate::id(query_type, "QueryType")?;
        let blobs = self.blobs(&r.namespace);
        let query = r.query.as_ref();
        blobs.check(query.and_then(|q| q.query_args.as_ref()), "QueryArgs")?;
        blobs.check(query.and_then(|q| q.header.as_ref()), "Header")?;
        let deadline = long_poll_deadline(metadata, QUERY_TIMEOUT);
        Ok(self.history.query(&namespace.id, r, deadline).await?)
    }

    pub async fn update(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        r: UpdateWorkflowExecutionRequest,
    ) -> Result<UpdateWorkflowExecutionResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.workflow_execution.as_ref())?;
        validate_update_request(&self.blobs(&r.namespace), r.request.as_ref())?;
        let deadline = long_poll_deadline(metadata, limits::MAX_LONG_POLL);
        Ok(self
            .history
            .update_workflow(&namespace.id, r, deadline)
            .await?)
    }

    pub async fn poll_update(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        r: PollWorkflowExecutionUpdateRequest,
    ) -> Result<PollWorkflowExecutionUpdateResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        let update_ref = r
            .update_ref
            .as_ref()
            .ok_or_else(|| invalid("UpdateRef is not set on request."))?;
        validate::execution(update_ref.workflow_execution.as_ref())?;
        validate::id(&update_ref.update_id, "UpdateId")?;
        let _permit = self.long_poll(&namespace)?;
        let deadline = long_poll_deadline(metadata, limits::MAX_LONG_POLL);
        Ok(self.history.poll_update(&namespace.id, r, deadline).await?)
    }

    /// Update-with-start: exactly [StartWorkflow, UpdateWorkflow]. The update goes to the run
    /// the start created or found.
    pub async fn multi_operation(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        r: ExecuteMultiOperationRequest,
    ) -> Result<ExecuteMultiOperationResponse> {
        use execute_multi_operation_request::operation::Operation as Op;
        use execute_multi_operation_response::{Response as Answer, response::Response as A};
        let mut operations = r.operations.into_iter().map(|o| o.operation);
        let (
            Some(Some(Op::StartWorkflow(mut start))),
            Some(Some(Op::UpdateWorkflow(mut update))),
            None,
        ) = (operations.next(), operations.next(), operations.next())
        else {
            return Err(invalid(
                "Operations have to be exactly [StartWorkflow, UpdateWorkflow].",
            ));
        };
        start.namespace.clone_from(&r.namespace);
        update.namespace.clone_from(&r.namespace);
        let execution = update
            .workflow_execution
            .get_or_insert_with(Default::default);
        if execution.workflow_id != start.workflow_id {
            return Err(invalid(
                "The UpdateWorkflow operation must name the workflow the StartWorkflow operation starts.",
            ));
        }
        let blobs = self.blobs(&r.namespace);
        validate_update_request(&blobs, update.request.as_ref())?;
        let namespace = self.namespaces.resolve_for_start(&r.namespace).await?;
        validate_start(&blobs, &mut start)?;
        let deadline = long_poll_deadline(metadata, limits::MAX_LONG_POLL);
        let (started, updated) = self
            .history
            .update_with_start(&namespace, start, update, deadline)
            .await
            .map_err(|e| crate::error::FrontendError::StartOfMultiOperation(Box::new(e)))?;
        let responses = vec![
            Answer {
                response: Some(A::StartWorkflow(started)),
            },
            Answer {
                response: Some(A::UpdateWorkflow(updated)),
            },
        ];
        Ok(ExecuteMultiOperationResponse { responses })
    }

    pub async fn reset(
        &self,
        r: ResetWorkflowExecutionRequest,
    ) -> Result<ResetWorkflowExecutionResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.workflow_execution.as_ref())?;
        validate::optional_id(&r.request_id, "RequestId")?;
        Ok(self.history.reset(&namespace.id, r).await?)
    }

    pub async fn history(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        r: GetWorkflowExecutionHistoryRequest,
    ) -> Result<GetWorkflowExecutionHistoryResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        let _permit = r
            .wait_new_event
            .then(|| self.long_poll(&namespace))
            .transpose()?;
        let deadline = long_poll_deadline(metadata, HISTORY_LONG_POLL);
        Ok(self.history.get_history(&namespace.id, r, deadline).await?)
    }

    pub async fn history_reverse(
        &self,
        r: GetWorkflowExecutionHistoryReverseRequest,
    ) -> Result<GetWorkflowExecutionHistoryReverseResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        Ok(self.history.get_history_reverse(&namespace.id, r).await?)
    }

    pub async fn delete_execution(&self, r: DeleteWorkflowExecutionRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.workflow_execution.as_ref())?;
        Ok(self.history.delete_execution(&namespace.id, r).await?)
    }
}
