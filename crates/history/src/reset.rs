//! ResetWorkflowExecution: a new run whose history is the base run's up to a workflow task,
//! that task failed with cause ResetWorkflow, then the signals the base run received after
//! that point. The run that was current is terminated in the same write.

use crate::engine::reset::{READ_BATCH, ResetPoint, reapplies_signals, reset_point, reset_run};
use crate::{History, HistoryError, Result};
use chronicle_api::history::v1::HistoryEvent;
use chronicle_api::workflowservice::{
    ResetWorkflowExecutionRequest, ResetWorkflowExecutionResponse,
};
use chronicle_common::ExecutionKey;
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
        let point = ResetPoint {
            base: &base,
            kept,
            workflow_task: (scheduled, started),
            request_id,
            current_run_id: current.run_id.clone(),
            later: later.into_iter().chain(buffered).collect(),
        };
        let change = reset_run(
            self.context(namespace_id, &execution.workflow_id)?,
            point,
            &r,
        );
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
}
