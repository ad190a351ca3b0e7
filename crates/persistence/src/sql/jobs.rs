//! System job rows (batch operations, namespace deletions, schedules), and the claims that
//! let one runner at a time write a job's progress.

use super::SqlStore;
use super::store::now_nanos;
use crate::{JobClaim, JobKey, JobKind, JobRow, JobStore, PersistenceError, Result};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

const KEY: &str = "namespace_id = ? AND kind = ? AND job_id = ?";

fn job_key(row: &AnyRow) -> Result<JobKey> {
    let kind: String = row.get("kind");
    Ok(JobKey {
        namespace_id: row.get("namespace_id"),
        kind: JobKind::parse(&kind)
            .ok_or_else(|| PersistenceError::Corrupt(format!("system job of kind {kind:?}")))?,
        job_id: row.get("job_id"),
    })
}

fn job_row(row: &AnyRow) -> Result<JobRow> {
    Ok(JobRow {
        key: job_key(row)?,
        running: row.get::<i64, _>("running") != 0,
        data: row.get("data"),
    })
}

/// Binds a job's key to the placeholders of `KEY`.
fn bind_key<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    key: &'q JobKey,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(key.namespace_id.as_str())
        .bind(key.kind.as_str())
        .bind(key.job_id.as_str())
}

impl SqlStore {
    async fn job_with_epoch(&self, key: &JobKey) -> Result<Option<AnyRow>> {
        let sql = format!(
            "SELECT namespace_id, kind, job_id, running, data, epoch FROM system_jobs WHERE {KEY}"
        );
        let sql = self.q(&sql);
        // On the writer: a claim must read what it has just written.
        Ok(bind_key(sqlx::query(&sql), key)
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
            "INSERT INTO system_jobs (namespace_id, kind, job_id, running, created, data) VALUES (?, ?, ?, ?, ?, ?){}, epoch = system_jobs.epoch + 1",
            self.dialect
                .upsert("namespace_id, kind, job_id", &["running", "data"])
        );
        let sql = self.q(&sql);
        let query = bind_key(sqlx::query(&sql), &job.key)
            .bind(i64::from(job.running))
            .bind(now_nanos())
            .bind(&job.data);
        self.exec(query).await?;
        Ok(())
    }

    async fn claim_job(&self, key: &JobKey) -> Result<Option<JobClaim>> {
        let Some(row) = self.job_with_epoch(key).await? else {
            return Ok(None);
        };
        if row.get::<i64, _>("running") == 0 {
            return Ok(None);
        }
        let seen: i64 = row.get("epoch");
        let sql =
            format!("UPDATE system_jobs SET epoch = ? WHERE {KEY} AND epoch = ? AND running = 1");
        let sql = self.q(&sql);
        let query = bind_key(sqlx::query(&sql).bind(seen + 1), key).bind(seen);
        if self.exec(query).await? != 1 {
            // Another claim, or a replacement, came between the read and the update.
            return Ok(None);
        }
        // Read after the claim: from now on only this claim changes the job's progress.
        let Some(claimed) = self.job_with_epoch(key).await? else {
            return Ok(None);
        };
        if claimed.get::<i64, _>("epoch") != seen + 1 {
            return Ok(None);
        }
        let job = job_row(&claimed)?;
        Ok(job.running.then_some(JobClaim {
            job,
            epoch: seen + 1,
        }))
    }

    async fn save_claimed_job(&self, job: &JobRow, epoch: i64) -> Result<bool> {
        let sql = format!("UPDATE system_jobs SET running = ?, data = ? WHERE {KEY} AND epoch = ?");
        let sql = self.q(&sql);
        let query = sqlx::query(&sql)
            .bind(i64::from(job.running))
            .bind(&job.data);
        let query = bind_key(query, &job.key).bind(epoch);
        Ok(self.exec(query).await? == 1)
    }

    async fn delete_claimed_job(&self, key: &JobKey, epoch: i64) -> Result<bool> {
        let sql = format!("DELETE FROM system_jobs WHERE {KEY} AND epoch = ?");
        let sql = self.q(&sql);
        let query = bind_key(sqlx::query(&sql), key).bind(epoch);
        Ok(self.exec(query).await? == 1)
    }

    async fn job(&self, key: &JobKey) -> Result<Option<JobRow>> {
        let sql = format!(
            "SELECT namespace_id, kind, job_id, running, data FROM system_jobs WHERE {KEY}"
        );
        let sql = self.q(&sql);
        bind_key(sqlx::query(&sql), key)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(job_row)
            .transpose()
    }

    async fn jobs(&self, namespace_id: &str, kind: JobKind) -> Result<Vec<JobRow>> {
        let sql = self.q("SELECT namespace_id, kind, job_id, running, data FROM system_jobs WHERE namespace_id = ? AND kind = ? ORDER BY created DESC");
        let rows = sqlx::query(&sql)
            .bind(namespace_id)
            .bind(kind.as_str())
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(job_row).collect()
    }

    async fn running_jobs(&self) -> Result<Vec<JobKey>> {
        let rows =
            sqlx::query("SELECT namespace_id, kind, job_id FROM system_jobs WHERE running = 1")
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(job_key).collect()
    }
}
