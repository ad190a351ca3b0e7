//! ResetWorkflowExecution: a new run whose history is the base run's up to a workflow task,
//! that task failed with cause ResetWorkflow, then the signals the base run received after
//! that point. The run that was current is terminated in the same write.

use crate::engine::context::Context;
use crate::engine::timer::Timer;
use crate::rebuild;
use crate::txn::Txn;
use crate::{History, HistoryError, Result};
use chronicle_api::enums::v1::{
    ResetReapplyExcludeType, ResetReapplyType, WorkflowExecutionStatus as Status,
    WorkflowTaskFailedCause,
};
use chronicle_api::failure::v1::Failure;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::history::v1::{HistoryEvent, WorkflowTaskFailedEventAttributes};
use chronicle_api::workflowservice::{
    ResetWorkflowExecutionRequest, ResetWorkflowExecutionResponse,
};
use chronicle_common::{ExecutionKey, time};
use chronicle_persistence::{CurrentRun, CurrentRunWrite};
use prost::Message;

const READ_BATCH: usize = 1000;

/// The workflow task a reset point names: (scheduled event id, started event id).
fn reset_point(event: &HistoryEvent) -> Option<(i64, i64)> {
    match event.attributes.as_ref()? {
        A::WorkflowTaskCompletedEventAttributes(a) => {
            Some((a.scheduled_event_id, a.started_event_id))
        }
        A::WorkflowTaskFailedEventAttributes(a) => Some((a.scheduled_event_id, a.started_event_id)),
        A::WorkflowTaskTimedOutEventAttributes(a) => {
            Some((a.scheduled_event_id, a.started_event_id))
        }
        A::WorkflowTaskStartedEventAttributes(a) => Some((a.scheduled_event_id, event.event_id)),
        _ => None,
    }
}

// reset_reapply_type is deprecated in favour of the exclude list, yet the CLI still sends it.
#[allow(deprecated)]
fn reapplies_signals(r: &ResetWorkflowExecutionRequest) -> bool {
    r.reset_reapply_type != ResetReapplyType::None as i32
        && !r
            .reset_reapply_exclude_types
            .contains(&(ResetReapplyExcludeType::Signal as i32))
}

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
        let mut txn = Self::reset_run(
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
                txn.append(signal);
            }
        }
        txn.schedule_workflow_task(1);
        let run_id = txn.key.run_id.clone();
        let mut txns = Vec::new();
        if let Some(mut old) = old {
            old.terminate(&r.reason, None, "history-resetter");
            txns.push(old);
        }
        txns.push(txn);
        self.commit_all(txns).await?;
        Ok(ResetWorkflowExecutionResponse { run_id })
    }

    /// The new run: the kept events, the reset point's task failed, pending work re-armed.
    fn reset_run(
        ctx: Context,
        base: &crate::state::MutableState,
        kept: Vec<HistoryEvent>,
        (scheduled, started): (i64, i64),
        r: &ResetWorkflowExecutionRequest,
        request_id: String,
        current_run_id: String,
    ) -> Txn {
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
        let mut txn = Txn::create(ctx, key, state);
        txn.copy_events(kept);
        txn.current = CurrentRunWrite::Claim {
            previous_run_id: Some(current_run_id),
            row: CurrentRun {
                run_id: run_id.clone(),
                running: true,
                status: Status::Running as i32,
                start_request_id: request_id,
            },
        };
        txn.append(WorkflowTaskFailedEventAttributes {
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
        txn.state.workflow_task = None;
        txn.rearm_after_reset();
        txn
    }
}

impl Txn {
    /// Timers and activities pending at the reset point start again; so do the run's timeouts.
    fn rearm_after_reset(&mut self) {
        let timers: Vec<_> = self.state.timers.values().cloned().collect();
        for timer in timers {
            let at = timer
                .expiry_time
                .as_ref()
                .map_or(self.now, time::from_timestamp);
            let started_event_id = timer.started_event_id;
            self.add_timer_at(at.max(self.now), Timer::User { started_event_id });
        }
        let activities: Vec<i64> = self.state.activities.keys().copied().collect();
        for scheduled_event_id in activities {
            self.dispatch_activity(scheduled_event_id);
        }
        let info = self.info().clone();
        if let Some(run_timeout) = time::stored_duration(info.run_timeout.as_ref()) {
            self.add_timer(run_timeout, Timer::WorkflowRunTimeout);
        }
        if let Some(expiration) = info.execution_expiration_time.as_ref() {
            let at = time::from_timestamp(expiration);
            self.add_timer_at(at, Timer::WorkflowExecutionTimeout);
        }
    }
}
