//! ResetWorkflowExecution: a new run whose history is the base run's up to a workflow task,
//! that task failed with cause ResetWorkflow, then the signals the base run received after
//! that point. The run that was current is terminated in the same write.

use crate::engine::change::Change;
use crate::engine::context::Context;
use crate::engine::rebuild;
use crate::engine::reset::{READ_BATCH, reapplies_signals, reset_point};
use crate::{History, HistoryError, Result};
use chronicle_api::enums::v1::{WorkflowExecutionStatus as Status, WorkflowTaskFailedCause};
use chronicle_api::failure::v1::Failure;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::history::v1::{HistoryEvent, WorkflowTaskFailedEventAttributes};
use chronicle_api::workflowservice::{
    ResetWorkflowExecutionRequest, ResetWorkflowExecutionResponse,
};
use chronicle_common::{ExecutionKey, time};
use chronicle_persistence::{CurrentRun, CurrentRunWrite};
use prost::Message;

impl History {
    /// Events `from..to` of a run, decoded.
    async fn events(&self, key: &ExecutionKey, from: i64, to: i64) -> Result<Vec<HistoryEvent>> {
        let mut events = Vec::new();
        let mut next = from;
        while next < to {
            let rows = self
                .store()
                .read_events(&key.run_id, next, to, READ_BATCH)
                .await?;
            let Some(&(last, _)) = rows.last() else { break };
            for (_, data) in rows {
                let event = HistoryEvent::decode(data.as_slice()).map_err(|e| {
                    HistoryError::Corrupt(format!("undecodable event of {key}: {e}"))
                })?;
                events.push(event);
            }
            next = last + 1;
        }
        Ok(events)
    }

    pub async fn reset(
        &self,
        namespace_id: &str,
        r: ResetWorkflowExecutionRequest,
    ) -> Result<ResetWorkflowExecutionResponse> {
        let execution = r.workflow_execution.clone().unwrap_or_default();
        let (_lock, base_key) = self.lock_named(namespace_id, &execution).await?;
        let current = self
            .store()
            .current_run(namespace_id, &execution.workflow_id)
            .await?;
        let current = current.ok_or_else(|| {
            HistoryError::WorkflowNotFound(format!(
                "workflow not found for ID: {}",
                execution.workflow_id
            ))
        })?;
        if !r.request_id.is_empty() && current.start_request_id == r.request_id {
            // The same reset again: it already happened.
            return Ok(ResetWorkflowExecutionResponse {
                run_id: current.run_id,
            });
        }
        let (base, _) = self.snapshot(&base_key).await?;
        let finish = r.workflow_task_finish_event_id;
        let bad_point = || {
            HistoryError::InvalidArgument(format!(
                "Invalid WorkflowTaskFinishEventId {finish}: it must name a workflow task's completed, failed, timed out or started event."
            ))
        };
        if finish <= 1 || finish >= base.next_event_id {
            return Err(bad_point());
        }
        let (scheduled, started) =
            reset_point(&self.read_event(&base_key, finish).await?).ok_or_else(bad_point)?;
        let kept = self.events(&base_key, 1, started + 1).await?;
        let later = if reapplies_signals(&r) {
            self.events(&base_key, started + 1, base.next_event_id)
                .await?
        } else {
            Vec::new()
        };
        let request_id = if r.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            r.request_id.clone()
        };
        let ctx = self.context(namespace_id, &execution.workflow_id);
        let mut change = Self::reset_run(
            ctx,
            &base,
            kept,
            (scheduled, started),
            &r,
            request_id,
            current.run_id.clone(),
        );
        let old = if current.running {
            let key = ExecutionKey::new(namespace_id, &execution.workflow_id, &current.run_id);
            Some(self.load_running(&key).await?)
        } else {
            None
        };
        // Signals still buffered behind the base run's workflow task came after all of it.
        let buffered = old
            .as_ref()
            .filter(|old| old.key == base_key && reapplies_signals(&r))
            .map(|old| old.buffered().cloned().collect())
            .unwrap_or_else(Vec::new);
        for event in later.into_iter().chain(buffered) {
            if let Some(A::WorkflowExecutionSignaledEventAttributes(signal)) = event.attributes {
                change.append(signal);
            }
        }
        change.schedule_workflow_task(1);
        let run_id = change.key.run_id.clone();
        let mut changes = Vec::new();
        if let Some(mut old) = old {
            old.terminate(&r.reason, None, "history-resetter");
            changes.push(old);
        }
        changes.push(change);
        self.commit_all(changes).await?;
        Ok(ResetWorkflowExecutionResponse { run_id })
    }

    /// The new run: the kept events, the reset point's task failed, pending work re-armed.
    fn reset_run(
        ctx: Context,
        base: &crate::engine::state::MutableState,
        kept: Vec<HistoryEvent>,
        (scheduled, started): (i64, i64),
        r: &ResetWorkflowExecutionRequest,
        request_id: String,
        current_run_id: String,
    ) -> Change {
        let run_id = ctx.run_id();
        let now = ctx.now;
        let mut info = base.info().clone();
        info.run_id = run_id.clone();
        info.status = Status::Running as i32;
        info.close_time = None;
        info.close_event_id = 0;
        info.new_execution_run_id.clear();
        info.start_request_id.clone_from(&request_id);
        info.start_time = Some(time::timestamp(now));
        info.execution_time = Some(time::timestamp(now));
        info.sticky_task_queue.clear();
        let state = rebuild::replay(&kept, info);
        let key = ExecutionKey::new(&base.info().namespace_id, &base.info().workflow_id, &run_id);
        let mut change = Change::create(ctx, key, state);
        change.copy_events(kept);
        change.current = CurrentRunWrite::Claim {
            previous_run_id: Some(current_run_id),
            row: CurrentRun {
                run_id: run_id.clone(),
                running: true,
                status: Status::Running as i32,
                start_request_id: request_id,
            },
        };
        change.append(WorkflowTaskFailedEventAttributes {
            scheduled_event_id: scheduled,
            started_event_id: started,
            cause: WorkflowTaskFailedCause::ResetWorkflow as i32,
            failure: Some(Failure {
                message: r.reason.clone(),
                ..Default::default()
            }),
            identity: r.identity.clone(),
            base_run_id: base.info().run_id.clone(),
            new_run_id: run_id,
            ..Default::default()
        });
        change.state.workflow_task = None;
        change.rearm_after_reset();
        change
    }
}
