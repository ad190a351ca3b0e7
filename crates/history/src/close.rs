//! Closing a run: completion, failure, cancellation, timeouts and continue-as-new. The next
//! run of the chain — a retry the retry policy allows, the next cron run, or the run the
//! workflow continued as — is created here and committed with the closing one.

use crate::engine::change::Change;
use crate::engine::close::{Closing, Started};
use crate::{History, HistoryError, Result};
use chronicle_api::history::v1::history_event::Attributes;
use chronicle_common::ExecutionKey;

impl History {
    /// The run's started event, if closing it this way needs it (`Closing::needs_first_event`).
    pub(crate) async fn first_event_for(
        &self,
        change: &Change,
        closing: &Closing,
    ) -> Result<Option<Started>> {
        if !closing.needs_first_event(change.info()) {
            return Ok(None);
        }
        match self.read_event(&change.key, 1).await?.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => Ok(Some(a)),
            _ => Err(HistoryError::Corrupt(format!(
                "first event of {} is not WorkflowExecutionStarted",
                change.key
            ))),
        }
    }

    /// The run or execution timeout fired.
    pub(crate) async fn fire_workflow_timeout(
        &self,
        key: &ExecutionKey,
        execution_expired: bool,
    ) -> Result<()> {
        let _lock = self.lock_run(key).await;
        let mut change = self.load_running(key).await?;
        let closing = Closing::TimedOut { execution_expired };
        let first = self.first_event_for(&change, &closing).await?;
        let successor = change.time_out_run(execution_expired, first.as_ref())?;
        let mut changes = vec![change];
        changes.extend(successor);
        self.commit_all(changes).await
    }
}
