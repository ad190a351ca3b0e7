//! Worker calls: long polls, task completions, activity heartbeats, and task queue state.

use crate::deadline::long_poll_deadline;
use crate::error::{Result, invalid};
use crate::handler::Handler;
use crate::validate::{self, Blobs};
use chronicle_api::enums::v1::QueryResultType;
use chronicle_api::failure::v1::{Failure, ServerFailureInfo, failure::FailureInfo};
use chronicle_api::workflowservice::*;
use chronicle_common::{limits, time};
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

/// What Temporal records instead of a worker's payload that is over the blob limit: the
/// attempt fails for good, so the workflow sees why rather than a worker retrying forever.
fn oversized(message: &str) -> Failure {
    Failure {
        message: message.into(),
        failure_info: Some(FailureInfo::ServerFailureInfo(ServerFailureInfo {
            non_retryable: true,
        })),
        ..Default::default()
    }
}

fn failed_attempt(message: &str) -> ActivityResponse {
    ActivityResponse::Failed {
        failure: Some(Box::new(oversized(message))),
        last_heartbeat_details: None,
    }
}

/// An activity response whose payloads are within the limit, or the failure Temporal records
/// in its place.
fn within_limit(blobs: &Blobs, response: ActivityResponse) -> ActivityResponse {
    match &response {
        ActivityResponse::Completed(result) if !blobs.fits(result.as_ref(), "Result") => {
            failed_attempt("Complete result exceeds size limit.")
        }
        ActivityResponse::Failed {
            failure,
            last_heartbeat_details,
        } if !blobs.fits(failure.as_deref(), "Failure")
            || !blobs.fits(last_heartbeat_details.as_ref(), "LastHeartbeatDetails") =>
        {
            failed_attempt("Failure exceeds size limit.")
        }
        ActivityResponse::Canceled(details) if !blobs.fits(details.as_ref(), "Details") => {
            failed_attempt("Cancel details exceed size limit.")
        }
        _ => response,
    }
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
        if let Some(sticky) = &r.sticky_attributes {
            time::optional_duration(
                sticky.schedule_to_start_timeout.as_ref(),
                "StickyScheduleToStartTimeout",
            )
            .map_err(|e| invalid(e.to_string()))?;
        }
        Ok(self.history.complete_workflow_task(token, r).await?)
    }

    pub async fn answer_query(&self, r: RespondQueryTaskCompletedRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        let token = validate::token(&r.task_token, &namespace)?;
        if token.query_id.is_empty() {
            return Err(crate::error::invalid("Task token is not a query task's."));
        }
        let mut r = r;
        if !self
            .blobs(&r.namespace)
            .fits(r.query_result.as_ref(), "QueryResult")
        {
            // As in Temporal: the query fails with the reason instead of the answer.
            r.completed_type = QueryResultType::Failed as i32;
            r.query_result = None;
            r.error_message = "Blob data size exceeds limit.".into();
        }
        Ok(self.history.answer_query(token, r).await?)
    }

    pub async fn fail_workflow_task(&self, mut r: RespondWorkflowTaskFailedRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        if !self.blobs(&r.namespace).fits(r.failure.as_ref(), "Failure") {
            r.failure = Some(oversized("Failure exceeds size limit."));
        }
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
        let response = within_limit(&self.blobs(namespace), response);
        validate::optional_id(&identity, "Identity")?;
        let (namespace, target) = self.target(namespace, call).await?;
        Ok(self
            .history
            .respond_activity(&namespace.id, target, response, identity)
            .await?)
    }

    /// Answers whether the activity was asked to cancel, paused or reset.
    pub async fn heartbeat(
        &self,
        namespace: &str,
        call: ActivityCall<'_>,
        details: Option<chronicle_api::common::v1::Payloads>,
    ) -> Result<chronicle_history::HeartbeatAnswer> {
        if !self.blobs(namespace).fits(details.as_ref(), "Details") {
            // As in Temporal: the attempt fails, and the worker is told to stop it.
            let response = failed_attempt("Heartbeat details exceed size limit.");
            let (namespace, target) = self.target(namespace, call).await?;
            self.history
                .respond_activity(&namespace.id, target, response, String::new())
                .await?;
            return Ok(chronicle_history::HeartbeatAnswer {
                cancel_requested: true,
                ..Default::default()
            });
        }
        let (namespace, target) = self.target(namespace, call).await?;
        Ok(self
            .history
            .heartbeat_activity(&namespace.id, target, details)
            .await?)
    }

    pub async fn pause_activity(&self, r: PauseActivityRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        Ok(self.history.pause_activity(&namespace.id, r).await?)
    }

    pub async fn unpause_activity(&self, r: UnpauseActivityRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        Ok(self.history.unpause_activity(&namespace.id, r).await?)
    }

    pub async fn update_activity_options(
        &self,
        r: UpdateActivityOptionsRequest,
    ) -> Result<UpdateActivityOptionsResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        let activity_options = self
            .history
            .update_activity_options(&namespace.id, r)
            .await?;
        Ok(UpdateActivityOptionsResponse {
            activity_options: Some(activity_options),
        })
    }

    pub async fn reset_activity(&self, r: ResetActivityRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::execution(r.execution.as_ref())?;
        Ok(self.history.reset_activity(&namespace.id, r).await?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_api::common::v1::{Payload, Payloads};
    use chronicle_common::config::Limits;

    fn failure_message(response: &ActivityResponse) -> Option<&str> {
        match response {
            ActivityResponse::Failed {
                failure: Some(f), ..
            } => Some(f.message.as_str()),
            _ => None,
        }
    }

    #[test]
    fn oversized_activity_payloads_become_the_reason_it_failed() {
        let limits = Limits {
            blob_size_error: 100,
            ..Limits::default()
        };
        let blobs = Blobs {
            namespace: "default",
            limits: &limits,
        };
        let big = || {
            Some(Payloads {
                payloads: vec![Payload {
                    data: vec![0; 200],
                    ..Default::default()
                }],
            })
        };
        let completed = within_limit(&blobs, ActivityResponse::Completed(big()));
        assert_eq!(
            failure_message(&completed),
            Some("Complete result exceeds size limit.")
        );
        let canceled = within_limit(&blobs, ActivityResponse::Canceled(big()));
        assert_eq!(
            failure_message(&canceled),
            Some("Cancel details exceed size limit.")
        );
        let failed = within_limit(
            &blobs,
            ActivityResponse::Failed {
                failure: None,
                last_heartbeat_details: big(),
            },
        );
        assert_eq!(
            failure_message(&failed),
            Some("Failure exceeds size limit.")
        );
        let small = within_limit(&blobs, ActivityResponse::Completed(None));
        assert!(matches!(small, ActivityResponse::Completed(None)));
    }
}
