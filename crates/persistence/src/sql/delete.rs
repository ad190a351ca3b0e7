//! Deleting runs: one run (DeleteWorkflowExecution, retention) fenced by its shard, or every
//! run of a namespace (the namespace deletion job). Timers and backlog rows of a deleted run
//! are left to fire or start into nothing: history drops a task whose run is gone.

use super::SqlStore;
use super::write::Writer;
use crate::{Lease, Result, RunRef};

impl SqlStore {
    pub(super) async fn delete_run_rows(&self, lease: Lease, run: &RunRef<'_>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        Writer::new(&self.dialect)
            .check_fence(&mut tx, lease)
            .await?;
        for statement in [
            "DELETE FROM history_events WHERE run_id = ?",
            "DELETE FROM buffered_events WHERE run_id = ?",
        ] {
            sqlx::query(&self.q(statement))
                .bind(run.run_id)
                .execute(&mut *tx)
                .await?;
        }
        for statement in [
            "DELETE FROM executions WHERE namespace_id = ? AND run_id = ? AND workflow_id = ?",
            // The pointer goes only if it still names this run: a later run keeps its own.
            "DELETE FROM current_executions WHERE namespace_id = ? AND run_id = ? AND workflow_id = ?",
        ] {
            sqlx::query(&self.q(statement))
                .bind(run.namespace_id)
                .bind(run.run_id)
                .bind(run.workflow_id)
                .execute(&mut *tx)
                .await?;
        }
        for statement in [
            "DELETE FROM executions_visibility WHERE namespace_id = ? AND run_id = ?",
            "DELETE FROM visibility_attributes WHERE namespace_id = ? AND run_id = ?",
        ] {
            sqlx::query(&self.q(statement))
                .bind(run.namespace_id)
                .bind(run.run_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn delete_namespace_rows(&self, namespace_id: &str) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for statement in [
            "DELETE FROM history_events WHERE run_id IN (SELECT run_id FROM executions WHERE namespace_id = ?)",
            "DELETE FROM buffered_events WHERE run_id IN (SELECT run_id FROM executions WHERE namespace_id = ?)",
            "DELETE FROM executions WHERE namespace_id = ?",
            "DELETE FROM current_executions WHERE namespace_id = ?",
            "DELETE FROM queue_tasks WHERE namespace_id = ?",
            "DELETE FROM executions_visibility WHERE namespace_id = ?",
            "DELETE FROM visibility_attributes WHERE namespace_id = ?",
            "DELETE FROM search_attributes WHERE namespace_id = ?",
            "DELETE FROM system_jobs WHERE namespace_id = ?",
        ] {
            sqlx::query(&self.q(statement))
                .bind(namespace_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
