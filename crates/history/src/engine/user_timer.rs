//! Durable user timers in the engine: StartTimer / CancelTimer commands and the timer firing.

use crate::engine::change::Change;
use crate::engine::state::TimerInfo;
use crate::engine::timer::Timer;
use crate::{HistoryError, Result};
use chronicle_api::command::v1::{CancelTimerCommandAttributes, StartTimerCommandAttributes};
use chronicle_api::enums::v1::WorkflowTaskFailedCause;
use chronicle_api::history::v1::{
    TimerCanceledEventAttributes, TimerFiredEventAttributes, TimerStartedEventAttributes,
    history_event::Attributes,
};
use chronicle_common::{limits, time};

impl Change {
    pub fn start_timer(
        &mut self,
        a: StartTimerCommandAttributes,
        completed_event_id: i64,
    ) -> Result<()> {
        let bad = |message: String| HistoryError::BadCommand {
            cause: WorkflowTaskFailedCause::BadStartTimerAttributes,
            message,
        };
        if a.timer_id.is_empty() || a.timer_id.len() > limits::MAX_ID_LENGTH {
            return Err(bad(format!(
                "TimerId must be 1 to {} characters.",
                limits::MAX_ID_LENGTH
            )));
        }
        let fire_after =
            time::present_duration(a.start_to_fire_timeout.as_ref(), "StartToFireTimeout")
                .map_err(|e| bad(e.to_string()))?
                .ok_or_else(|| {
                    bad("A valid StartToFireTimeout is not set on StartTimerCommand.".into())
                })?;
        if self.state.timers.contains_key(&a.timer_id) {
            return Err(HistoryError::BadCommand {
                cause: WorkflowTaskFailedCause::StartTimerDuplicateId,
                message: format!(
                    "invalid history builder state for action: add-timer-started-event, timer {} is already running",
                    a.timer_id
                ),
            });
        }
        let started_event_id = self.append(TimerStartedEventAttributes {
            timer_id: a.timer_id.clone(),
            start_to_fire_timeout: a.start_to_fire_timeout,
            workflow_task_completed_event_id: completed_event_id,
        });
        let expiry = time::after(self.now, fire_after);
        self.state.timers.insert(
            a.timer_id.clone(),
            TimerInfo {
                timer_id: a.timer_id,
                started_event_id,
                expiry_time: Some(time::timestamp(expiry)),
            },
        );
        self.add_timer_at(expiry, Timer::User { started_event_id });
        Ok(())
    }

    /// Cancels a pending timer. A timer that fired while this workflow task ran is still
    /// cancelable: its buffered fired event is dropped, as the workflow never saw it.
    pub fn cancel_timer(
        &mut self,
        a: CancelTimerCommandAttributes,
        completed_event_id: i64,
        identity: &str,
    ) -> Result<()> {
        let started_event_id = match self.state.timers.remove(&a.timer_id) {
            Some(timer) => timer.started_event_id,
            None => self.take_buffered_fire(&a.timer_id).ok_or_else(|| HistoryError::BadCommand {
                cause: WorkflowTaskFailedCause::BadCancelTimerAttributes,
                message: format!("invalid history builder state for action: add-timer-canceled-event, timer {} is not running", a.timer_id),
            })?,
        };
        self.append(TimerCanceledEventAttributes {
            timer_id: a.timer_id,
            started_event_id,
            workflow_task_completed_event_id: completed_event_id,
            identity: identity.to_owned(),
        });
        Ok(())
    }

    fn take_buffered_fire(&mut self, timer_id: &str) -> Option<i64> {
        let fired = self.take_buffered(|e| {
            matches!(&e.attributes, Some(Attributes::TimerFiredEventAttributes(f)) if f.timer_id == timer_id)
        })?;
        match fired.attributes {
            Some(Attributes::TimerFiredEventAttributes(fired)) => Some(fired.started_event_id),
            _ => None,
        }
    }
}

impl Change {
    /// A workflow's timer is due: TimerFired, and a workflow task to see it.
    /// Fires several of the run's timers due together in one change, so the workflow sees
    /// them in one workflow task (as Temporal's timer queue does); stale ones are skipped.
    pub fn fire_timers(&mut self, started_event_ids: &[i64]) -> Result<()> {
        let mut fired = false;
        for id in started_event_ids {
            match self.fire_timer(*id) {
                Ok(()) => fired = true,
                Err(HistoryError::StaleTask) => {}
                Err(e) => return Err(e),
            }
        }
        if fired {
            Ok(())
        } else {
            Err(HistoryError::StaleTask)
        }
    }

    pub fn fire_timer(&mut self, started_event_id: i64) -> Result<()> {
        let timer = self
            .state
            .timers
            .values()
            .find(|t| t.started_event_id == started_event_id);
        let timer = timer.cloned().ok_or(HistoryError::StaleTask)?;
        self.state.timers.remove(&timer.timer_id);
        self.append_external(TimerFiredEventAttributes {
            timer_id: timer.timer_id,
            started_event_id: timer.started_event_id,
        });
        self.schedule_workflow_task_if_needed();
        Ok(())
    }
}
