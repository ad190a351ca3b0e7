//! DeleteWorkflowExecution: a run that is still running is terminated first, as Temporal
//! does, then its state, history and visibility go in one transaction fenced by its shard.

use crate::{History, Result};
use chronicle_api::workflowservice::DeleteWorkflowExecutionRequest;
use chronicle_common::ExecutionKey;
use chronicle_persistence::RunRef;

/// Temporal's reason and identity on the termination a deletion makes.
const REASON: &str = "Delete workflow execution";
const IDENTITY: &str = "history-service";

impl History {
    pub async fn delete_execution(
        &self,
        namespace_id: &str,
        r: DeleteWorkflowExecutionRequest,
    ) -> Result<()> {
        let execution = r.workflow_execution.unwrap_or_default();
        let (_lock, key) = self.lock_named(namespace_id, &execution).await?;
        let mut change = self.load(&key).await?;
        if change.is_running() {
            change.terminate(REASON, None, IDENTITY);
            self.commit(change).await?;
        }
        self.delete_run(&key).await
    }

    /// The namespace's retention ran out for a closed run. One that is running again (never
    /// so far: a reset starts a new run) is left for its next close.
    pub(crate) async fn fire_delete_run(&self, key: &ExecutionKey) -> Result<()> {
        let _lock = self.lock_run(key).await;
        let (state, _) = self.snapshot(key).await?;
        if state.is_running() {
            return Ok(());
        }
        self.delete_run(key).await
    }

    /// Deletes a closed run; the caller holds the workflow's lock.
    pub(crate) async fn delete_run(&self, key: &ExecutionKey) -> Result<()> {
        let shard = self.shard_of(&key.namespace_id, &key.workflow_id)?;
        self.inner.cache.take(key);
        let run = RunRef {
            namespace_id: &key.namespace_id,
            workflow_id: &key.workflow_id,
            run_id: &key.run_id,
        };
        if let Err(e) = self.store().delete_run(shard.lease(), &run).await {
            self.note_write_failure(&e);
            return Err(e.into());
        }
        tracing::debug!(%key, "run deleted");
        Ok(())
    }
}
