//! Activities: scheduling from a command, handing an attempt to a poller, and the worker's
//! heartbeats and results. How an attempt ends (retry or final event) is in `activity_end`.

use crate::engine::activity::{ActivityResponse, ActivityTarget};
use crate::engine::state::ActivityInfo;
use crate::engine::timer::Attempt;
use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_api::common::v1::{ActivityType, Payloads, WorkflowType};
use chronicle_api::history::v1::{ActivityTaskScheduledEventAttributes, history_event::Attributes};
use chronicle_api::workflowservice::{PollActivityTaskQueueRequest, PollActivityTaskQueueResponse};
use chronicle_common::token::{TOKEN_VERSION, TaskToken};
use chronicle_common::{DispatchTask, ExecutionKey, QueueKind};
use tokio::time::Instant;

impl History {
    /// Long-polls an activity task queue; an empty response means the deadline passed.
    pub async fn poll_activity_task(
        &self,
        namespace: &NamespaceRef,
        r: PollActivityTaskQueueRequest,
        deadline: Instant,
    ) -> Result<PollActivityTaskQueueResponse> {
        let queue = r.task_queue.map(|q| q.name).unwrap_or_default();
        let request_id = uuid::Uuid::new_v4().to_string();
        let started = self
            .poll_queue(
                namespace,
                &queue,
                QueueKind::Activity,
                &r.identity,
                deadline,
                |task| self.record_activity_started(namespace, task, &r.identity, &request_id),
            )
            .await?;
        Ok(started.unwrap_or_default())
    }

    pub(crate) async fn record_activity_started(
        &self,
        namespace: &NamespaceRef,
        task: DispatchTask,
        identity: &str,
        request_id: &str,
    ) -> Result<PollActivityTaskQueueResponse> {
        if let Some(owner) = self.remote_owner_of(&task) {
            return self
                .start_remotely(&owner, &task, &namespace.name, identity, request_id)
                .await;
        }
        let key = ExecutionKey::new(&task.namespace_id, &task.workflow_id, &task.run_id);
        let (ai, workflow_type) = self
            .update(&key, |change| {
                let waiting = change.state.activities.get(&task.scheduled_event_id);
                if !waiting.is_some_and(|a| {
                    a.task_id == task.task_id && a.attempt == task.attempt && !a.is_started()
                }) {
                    return Err(HistoryError::StaleTask);
                }
                let ai = change
                    .start_activity(task.scheduled_event_id, identity, request_id)
                    .ok_or(HistoryError::StaleTask)?;
                Ok((ai, change.info().workflow_type.clone()))
            })
            .await?;
        self.activity_task(&namespace.name, &key, ai, workflow_type)
            .await
    }

    /// What a worker gets to run one started attempt.
    pub(crate) async fn activity_task(
        &self,
        namespace_name: &str,
        key: &ExecutionKey,
        ai: ActivityInfo,
        workflow_type: String,
    ) -> Result<PollActivityTaskQueueResponse> {
        let scheduled = self
            .activity_scheduled_event(key, ai.scheduled_event_id)
            .await?;
        let token = TaskToken {
            namespace_id: key.namespace_id.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            scheduled_event_id: ai.scheduled_event_id,
            started_event_id: 0,
            attempt: ai.attempt,
            activity_id: ai.activity_id.clone(),
            version: TOKEN_VERSION,
            query_id: String::new(),
        };
        crate::poll::record_schedule_to_start(
            namespace_name,
            "Activity",
            &ai.task_queue,
            ai.current_attempt_scheduled_time.as_ref(),
            ai.started_time.as_ref(),
        );
        Ok(PollActivityTaskQueueResponse {
            task_token: token.to_bytes(),
            workflow_namespace: namespace_name.to_owned(),
            workflow_type: Some(WorkflowType {
                name: workflow_type,
            }),
            workflow_execution: Some(key.execution()),
            activity_type: Some(ActivityType {
                name: ai.activity_type,
            }),
            activity_id: ai.activity_id,
            header: scheduled.header,
            input: scheduled.input,
            heartbeat_details: ai.heartbeat_details,
            scheduled_time: ai.scheduled_time,
            current_attempt_scheduled_time: ai.current_attempt_scheduled_time,
            started_time: ai.started_time,
            attempt: ai.attempt,
            schedule_to_close_timeout: ai.schedule_to_close_timeout,
            start_to_close_timeout: ai.start_to_close_timeout,
            heartbeat_timeout: ai.heartbeat_timeout,
            retry_policy: ai.retry_policy,
            priority: scheduled.priority,
            ..Default::default()
        })
    }

    /// Input and header live in the scheduled event only, so state writes stay small.
    async fn activity_scheduled_event(
        &self,
        key: &ExecutionKey,
        event_id: i64,
    ) -> Result<ActivityTaskScheduledEventAttributes> {
        match self.read_event(key, event_id).await?.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => Ok(a),
            _ => Err(HistoryError::Corrupt(format!(
                "event {event_id} of {key} is not an activity's scheduled event"
            ))),
        }
    }

    /// Ends the attempt a worker ran, as the worker reports it.
    pub async fn respond_activity(
        &self,
        namespace_id: &str,
        target: ActivityTarget,
        response: ActivityResponse,
        identity: String,
    ) -> Result<()> {
        self.append_named(namespace_id, &target.execution(), |change| {
            let ai = change.target_activity(&target)?;
            change.respond_activity(&ai, response, identity);
            Ok(())
        })
        .await
    }

    /// Records progress; answers whether the workflow asked for the activity's cancellation
    /// and whether an operator paused or reset it.
    pub async fn heartbeat_activity(
        &self,
        namespace_id: &str,
        target: ActivityTarget,
        details: Option<Payloads>,
    ) -> Result<crate::HeartbeatAnswer> {
        self.append_named(namespace_id, &target.execution(), |change| {
            let ai = change.target_activity(&target)?;
            change.record_heartbeat(ai.scheduled_event_id, details);
            Ok(crate::HeartbeatAnswer {
                cancel_requested: ai.cancel_requested,
                paused: ai.paused.is_some(),
                reset: ai.reset_requested,
            })
        })
        .await
    }

    /// A retry's backoff is over: dispatch the next attempt.
    pub(crate) async fn fire_activity_retry(
        &self,
        key: &ExecutionKey,
        attempt: Attempt,
    ) -> Result<()> {
        self.append_to(key, |change| change.end_activity_backoff(attempt))
            .await
    }
}
