//! System job rows (batch operations, namespace deletions), and the claims that let one
//! runner at a time write a job's progress.

use super::SqlStore;
use super::store::now_nanos;
use crate::{JobClaim, JobRow, JobStore, Result};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

const COLUMNS: &str = "namespace_id, job_id, running, data, epoch";

fn job_row(row: &AnyRow) -> JobRow {
    JobRow {
        namespace_id: row.get("namespace_id"),
        job_id: row.get("job_id"),
        running: row.get::<i64, _>("running") != 0,
        data: row.get("data"),
    }
}

impl SqlStore {
    async fn job_with_epoch(&self, namespace_id: &str, job_id: &str) -> Result<Option<AnyRow>> {
        let sql =
            format!("SELECT {COLUMNS} FROM system_jobs WHERE namespace_id = ? AND job_id = ?");
        // On the writer: a claim must read what it has just written.
        Ok(sqlx::query(&self.q(&sql))
            .bind(namespace_id)
            .bind(job_id)
            .fetch_optional(&self.writer)
            .await?)
    }
}

#[async_trait]
impl JobStore for SqlStore {
    async fn put_job(&self, job: &JobRow) -> Result<()> {
        // A replaced job's claim no longer holds: MySQL reads `system_jobs.epoch` in its
        // update clause as the stored row's, as the others read it.
        let sql = format!(
            "INSERT INTO system_jobs (namespace_id, job_id, running, created, data) VALUES (?, ?, ?, ?, ?){}, epoch = system_jobs.epoch + 1",
            self.dialect
                .upsert("namespace_id, job_id", &["running", "data"])
        );
        let sql = self.q(&sql);
        let query = sqlx::query(&sql)
            .bind(&job.namespace_id)
            .bind(&job.job_id)
            .bind(i64::from(job.running))
            .bind(now_nanos())
            .bind(&job.data);
        self.exec(query).await?;
        Ok(())
    }

    async fn claim_job(&self, namespace_id: &str, job_id: &str) -> Result<Option<JobClaim>> {
        let Some(row) = self.job_with_epoch(namespace_id, job_id).await? else {
            return Ok(None);
        };
        if row.get::<i64, _>("running") == 0 {
            return Ok(None);
        }
        let seen: i64 = row.get("epoch");
        let sql = self.q(
            "UPDATE system_jobs SET epoch = ? WHERE namespace_id = ? AND job_id = ? AND epoch = ? AND running = 1",
        );
        let query = sqlx::query(&sql)
            .bind(seen + 1)
            .bind(namespace_id)
            .bind(job_id)
            .bind(seen);
        if self.exec(query).await? != 1 {
            // Another claim, or a replacement, came between the read and the update.
            return Ok(None);
        }
        // Read after the claim: from now on only this claim changes the job's progress.
        let claimed = self.job_with_epoch(namespace_id, job_id).await?;
        Ok(claimed
            .filter(|row| row.get::<i64, _>("epoch") == seen + 1)
            .map(|row| JobClaim {
                job: job_row(&row),
                epoch: seen + 1,
            })
            .filter(|claim| claim.job.running))
    }

    async fn save_claimed_job(&self, job: &JobRow, epoch: i64) -> Result<bool> {
        let sql = self.q(
            "UPDATE system_jobs SET running = ?, data = ? WHERE namespace_id = ? AND job_id = ? AND epoch = ?",
        );
        let query = sqlx::query(&sql)
            .bind(i64::from(job.running))
            .bind(&job.data)
            .bind(&job.namespace_id)
            .bind(&job.job_id)
            .bind(epoch);
        Ok(self.exec(query).await? == 1)
    }

    async fn job(&self, namespace_id: &str, job_id: &str) -> Result<Option<JobRow>> {
        let sql = self.q("SELECT namespace_id, job_id, running, data FROM system_jobs WHERE namespace_id = ? AND job_id = ?");
        Ok(sqlx::query(&sql)
            .bind(namespace_id)
            .bind(job_id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(job_row))
    }

    async fn jobs(&self, namespace_id: &str) -> Result<Vec<JobRow>> {
        let sql = self.q("SELECT namespace_id, job_id, running, data FROM system_jobs WHERE namespace_id = ? ORDER BY created DESC");
        let rows = sqlx::query(&sql)
            .bind(namespace_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(job_row).collect())
    }

    async fn running_jobs(&self) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(
            "SELECT namespace_id, job_id, running, data FROM system_jobs WHERE running = 1",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(job_row).collect())
    }
}
