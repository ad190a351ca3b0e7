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
