//! Client calls on workflow executions: start, signal, cancel, terminate, describe, history.

use crate::deadline::long_poll_deadline;
use crate::error::Result;
use crate::handler::Handler;
use crate::validate;
use chronicle_api::workflowservice::*;
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
    input: Option<&chronicle_api::common::v1::Payloads>,
    identity: &str,
    request_id: &str,
) -> Result<()> {
    validate::id(workflow_id, "WorkflowId")?;
    validate::id(
        workflow_type.map(|t| t.name.as_str()).unwrap_or_default(),
        "WorkflowType",
    )?;
    validate::task_queue(task_queue)?;
    validate::blob(input, "Input")?;
    validate::optional_id(identity, "Identity")?;
    validate::optional_id(request_id, "RequestId")
}

fn or_new_request_id(request_id: &mut String) {
    if request_id.is_empty() {
        *request_id = uuid::Uuid::new_v4().to_string();
    }
}

impl Handler {
    pub async fn start(
        &self,
        mut r: StartWorkflowExecutionRequest,
    ) -> Result<StartWorkflowExecutionResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        start_fields(
            &r.workflow_id,
            r.workflow_type.as_ref(),
            r.task_queue.as_ref(),
            r.input.as_ref(),
            &r.identity,
            &r.request_id,
        )?;
        or_new_request_id(&mut r.request_id);
        Ok(self.history.start_workflow(&namespace, r).await?)
    }

    pub async fn signal_with_start(
        &self,
        mut r: SignalWithStartWorkflowExecutionRequest,
    ) -> Result<SignalWithStartWorkflowExecutionResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        start_fields(
            &r.workflow_id,
            r.workflow_type.as_ref(),
            r.task_queue.as_ref(),
            r.input.as_ref(),
            &r.identity,
            &r.request_id,
        )?;
        validate::id(&r.signal_name, "SignalName")?;
        validate::blob(r.signal_input.as_ref(), "SignalInput")?;
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
        validate::blob(r.input.as_ref(), "Input")?;
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
        validate::blob(r.details.as_ref(), "Details")?;
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
        validate::blob(
            r.query.as_ref().and_then(|q| q.query_args.as_ref()),
            "QueryArgs",
        )?;
        let deadline = long_poll_deadline(metadata, QUERY_TIMEOUT);
        Ok(self.history.query(&namespace.id, r, deadline).await?)
    }

    pub async fn history(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        r: GetWorkflowExecutionHistoryRequest,
    ) -> Result<GetWorkflowExecutionHistoryResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        let deadline = long_poll_deadline(metadata, HISTORY_LONG_POLL);
        Ok(self.history.get_history(&namespace.id, r, deadline).await?)
    }
}
