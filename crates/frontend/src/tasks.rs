//! Worker calls: long polls, task completions, activity heartbeats, and task queue state.

use crate::deadline::long_poll_deadline;
use crate::error::Result;
use crate::handler::Handler;
use crate::validate;
use chronicle_api::workflowservice::*;
use chronicle_common::limits;
use chronicle_history::{ActivityResponse, ActivityTarget, NamespaceRef};
use tonic::metadata::MetadataMap;

/// How a worker's activity call names its attempt.
pub enum ActivityCall<'a> {
    Token(&'a [u8]),
    /// The *ById calls.
    Id {
        workflow_id: String,
        run_id: String,
        activity_id: String,
    },
}

impl Handler {
    async fn poller(
        &self,
        namespace: &str,
        queue: Option<&chronicle_api::taskqueue::v1::TaskQueue>,
        identity: &str,
    ) -> Result<NamespaceRef> {
        let namespace = self.namespaces.resolve(namespace).await?;
        validate::task_queue(queue)?;
        validate::optional_id(identity, "Identity")?;
        Ok(namespace)
    }

    pub async fn poll_workflow_task(
        &self,
        metadata: &MetadataMap,
        r: PollWorkflowTaskQueueRequest,
    ) -> Result<PollWorkflowTaskQueueResponse> {
        let namespace = self
            .poller(&r.namespace, r.task_queue.as_ref(), &r.identity)
            .await?;
        let _permit = self.long_poll(&namespace)?;
        let deadline = long_poll_deadline(metadata, limits::MAX_LONG_POLL);
        Ok(self
            .history
            .poll_workflow_task(&namespace, r, deadline)
            .await?)
    }

    pub async fn poll_activity_task(
        &self,
        metadata: &MetadataMap,
        r: PollActivityTaskQueueRequest,
    ) -> Result<PollActivityTaskQueueResponse> {
        let namespace = self
            .poller(&r.namespace, r.task_queue.as_ref(), &r.identity)
            .await?;
        let _permit = self.long_poll(&namespace)?;
        let deadline = long_poll_deadline(metadata, limits::MAX_LONG_POLL);
        Ok(self
            .history
            .poll_activity_task(&namespace, r, deadline)
            .await?)
    }

    pub async fn complete_workflow_task(
        &self,
        r: RespondWorkflowTaskCompletedRequest,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        let token = validate::token(&r.task_token, &namespace)?;
        Ok(self.history.complete_workflow_task(token, r).await?)
    }

    pub async fn answer_query(&self, r: RespondQueryTaskCompletedRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        let token = validate::token(&r.task_token, &namespace)?;
        if token.query_id.is_empty() {
            return Err(crate::error::invalid("Task token is not a query task's."));
        }
        validate::blob(r.query_result.as_ref(), "QueryResult")?;
        Ok(self.history.answer_query(token, r).await?)
    }

    pub async fn fail_workflow_task(&self, r: RespondWorkflowTaskFailedRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        let token = validate::token(&r.task_token, &namespace)?;
        Ok(self.history.fail_workflow_task(token, r).await?)
    }

    pub async fn respond_activity(
        &self,
        namespace: &str,
        call: ActivityCall<'_>,
        response: ActivityResponse,
        identity: String,
    ) -> Result<()> {
        match &response {
            ActivityResponse::Completed(result) => validate::blob(result.as_ref(), "Result")?,
            ActivityResponse::Failed {
                last_heartbeat_details,
                ..
            } => validate::blob(last_heartbeat_details.as_ref(), "LastHeartbeatDetails")?,
            ActivityResponse::Canceled(details) => validate::blob(details.as_ref(), "Details")?,
        }
        validate::optional_id(&identity, "Identity")?;
        let (namespace, target) = self.target(namespace, call).await?;
        Ok(self
            .history
            .respond_activity(&namespace.id, target, response, identity)
            .await?)
    }

    /// Answers whether the activity was asked to cancel.
    pub async fn heartbeat(
        &self,
        namespace: &str,
        call: ActivityCall<'_>,
        details: Option<chronicle_api::common::v1::Payloads>,
    ) -> Result<bool> {
        validate::blob(details.as_ref(), "Details")?;
        let (namespace, target) = self.target(namespace, call).await?;
        Ok(self
            .history
            .heartbeat_activity(&namespace.id, target, details)
            .await?)
    }

    async fn target(
        &self,
        namespace: &str,
        call: ActivityCall<'_>,
    ) -> Result<(NamespaceRef, ActivityTarget)> {
        let namespace = self.namespaces.resolve(namespace).await?;
        let target = match call {
            ActivityCall::Token(token) => {
                ActivityTarget::Token(validate::token(token, &namespace)?)
            }
            ActivityCall::Id {
                workflow_id,
                run_id,
                activity_id,
            } => validate::activity_by_id(workflow_id, run_id, activity_id)?,
        };
        Ok((namespace, target))
    }

    pub async fn shutdown_worker(&self, r: ShutdownWorkerRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        if r.sticky_task_queue.is_empty() {
            return Ok(());
        }
        validate::id(&r.sticky_task_queue, "StickyTaskQueue")?;
        Ok(self
            .history
            .release_sticky_queue(&namespace, &r.sticky_task_queue)
            .await?)
    }

    pub async fn reset_sticky(&self, r: ResetStickyTaskQueueRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        Ok(self
            .history
            .reset_sticky(&namespace.id, r.execution.unwrap_or_default())
            .await?)
    }
}
