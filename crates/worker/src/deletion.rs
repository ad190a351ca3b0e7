//! Namespace deletion as a stored job. DeleteNamespace stores the job before it marks the
//! namespace deleted and answers, so a crash at any point leaves either a job to resume or
//! nothing done. The job deletes only a namespace that is marked deleted: one stored before
//! a crash that cut DeleteNamespace short finds the namespace as it was and leaves it.
//!
//! The deletion itself is one transaction (`Store::delete_namespace_executions`), so there
//! are no pages to resume from: a job interrupted before it ends runs the whole step again,
//! which deletes what is left, or nothing.

use crate::Result;
use chronicle_api::enums::v1::NamespaceState;
use chronicle_api::workflowservice::DescribeNamespaceResponse;
use chronicle_common::supervisor::CancellationToken;
use chronicle_common::time;
use chronicle_history::History;
use chronicle_persistence::{JobKey, JobKind, JobRow, NamespaceRow, PersistenceError, WorkerStore};
use prost::Message;
use std::sync::Arc;
use std::time::Duration;

/// The jobs of no namespace are stored under this id; namespace ids are UUIDs, so no
/// namespace has it, and a namespace's own deletion does not take its job with it.
pub(crate) const SYSTEM_NAMESPACE_ID: &str = "chronicle-system";

const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What is stored of a deletion.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamespaceDeletion {
    #[prost(string, tag = "1")]
    pub namespace_id: String,
    /// Unix nanoseconds.
    #[prost(int64, tag = "2")]
    pub created: i64,
    /// Unix nanoseconds; 0 while running.
    #[prost(int64, tag = "3")]
    pub finished: i64,
    /// What the job found to do, once finished.
    #[prost(string, tag = "4")]
    pub outcome: String,
}

pub(crate) fn job_id(namespace_id: &str) -> String {
    format!("delete-namespace/{namespace_id}")
}

/// How long a job waits for its namespace to be marked deleted: the job is stored before the
/// mark, and its owner (on another node, say) may find it first.
const MARK_GRACE: Duration = Duration::from_secs(30);

/// What a deletion finds to do with the namespace as stored.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Marked deleted: its workflows go.
    Delete,
    /// Not marked yet, but the job is young: DeleteNamespace may still be marking it.
    Wait,
    /// Nothing to delete, and why.
    Nothing(&'static str),
}

/// `age`: how long ago the job was stored.
pub(crate) fn step(stored: Option<&NamespaceRow>, age: Duration) -> Result<Step> {
    let Some(row) = stored else {
        return Ok(Step::Nothing("the namespace is gone"));
    };
    let described = DescribeNamespaceResponse::decode(row.data.as_slice())
        .map_err(|e| PersistenceError::Corrupt(format!("namespace {}: {e}", row.id)))?;
    let state = described.namespace_info.map(|info| info.state);
    if state == Some(NamespaceState::Deleted as i32) {
        Ok(Step::Delete)
    } else if age < MARK_GRACE {
        Ok(Step::Wait)
    } else {
        Ok(Step::Nothing("the namespace was not marked deleted"))
    }
}

/// The stored row of a deletion.
pub(crate) fn row(job: &NamespaceDeletion) -> JobRow {
    JobRow {
        key: JobKey {
            namespace_id: SYSTEM_NAMESPACE_ID.into(),
            kind: JobKind::NamespaceDeletion,
            job_id: job_id(&job.namespace_id),
        },
        running: job.finished == 0,
        data: job.encode_to_vec(),
    }
}

/// Runs a claimed deletion.
pub(crate) struct Deletion {
    pub history: History,
    pub store: Arc<dyn WorkerStore>,
    pub epoch: i64,
    /// Cancelled when the node stops or the job is another member's now.
    pub shutdown: CancellationToken,
}

impl Deletion {
    /// Retries until the step is done; a shutdown, or the job moving to another member,
    /// leaves it running in the store for its owner to claim.
    pub async fn run(self, mut job: NamespaceDeletion) {
        let namespace_id = job.namespace_id.clone();
        let mut retry = RETRY_FIRST;
        loop {
            match self.attempt(&job).await {
                Ok(Some(outcome)) => {
                    job.outcome = outcome.into();
                    break;
                }
                Ok(None) => tracing::debug!(namespace_id, "namespace not marked deleted yet"),
                Err(e) => {
                    tracing::warn!(namespace_id, retry_in = ?retry, "namespace deletion: {e}");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => retry = (retry * 2).min(RETRY_MAX),
                () = self.shutdown.cancelled() => return,
            }
        }
        job.finished = time::unix_nanos(time::now()).max(1);
        match self.store.save_claimed_job(&row(&job), self.epoch).await {
            Ok(true) => tracing::info!(
                namespace_id,
                outcome = job.outcome,
                "namespace deletion done"
            ),
            // Whoever holds the job now runs the step again, harmlessly.
            Ok(false) => tracing::info!(namespace_id, "namespace deletion moved to another member"),
            Err(e) => tracing::error!(namespace_id, "namespace deletion result not stored: {e}"),
        }
    }

    /// Does the step if it is due; None while the job waits for the namespace's mark.
    async fn attempt(&self, job: &NamespaceDeletion) -> Result<Option<&'static str>> {
        let stored = self.store.namespace_by_id(&job.namespace_id).await?;
        let age = time::unix_nanos(time::now()).saturating_sub(job.created);
        let age = Duration::from_nanos(u64::try_from(age).unwrap_or(0));
        match step(stored.as_ref(), age)? {
            Step::Delete => {
                self.history
                    .delete_namespace_data(&job.namespace_id)
                    .await?;
                Ok(Some("deleted"))
            }
            Step::Wait => Ok(None),
            Step::Nothing(why) => Ok(Some(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_api::namespace::v1::NamespaceInfo;

    fn stored(state: NamespaceState) -> NamespaceRow {
        let described = DescribeNamespaceResponse {
            namespace_info: Some(NamespaceInfo {
                id: "ns-id".into(),
                state: state as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        NamespaceRow {
            id: "ns-id".into(),
            name: "doomed-deleted-ns-id".into(),
            data: described.encode_to_vec(),
        }
    }

    #[test]
    fn only_a_namespace_marked_deleted_loses_its_workflows() {
        let old = MARK_GRACE;
        let deleted = stored(NamespaceState::Deleted);
        assert_eq!(step(Some(&deleted), old).unwrap(), Step::Delete);
        for state in [NamespaceState::Registered, NamespaceState::Deprecated] {
            let row = stored(state);
            assert!(
                matches!(step(Some(&row), old).unwrap(), Step::Nothing(_)),
                "{state:?}"
            );
        }
        assert!(matches!(step(None, old).unwrap(), Step::Nothing(_)));
    }

    #[test]
    fn a_young_job_waits_for_its_namespace_to_be_marked() {
        let registered = stored(NamespaceState::Registered);
        let young = Duration::from_secs(1);
        assert_eq!(step(Some(&registered), young).unwrap(), Step::Wait);
        let deleted = stored(NamespaceState::Deleted);
        assert_eq!(step(Some(&deleted), young).unwrap(), Step::Delete);
        assert!(matches!(step(None, young).unwrap(), Step::Nothing(_)));
    }

    #[test]
    fn an_undecodable_namespace_is_an_error_not_a_deletion() {
        let mut row = stored(NamespaceState::Deleted);
        row.data = vec![0xff, 0xff, 0xff];
        assert!(step(Some(&row), MARK_GRACE).is_err());
    }

    #[test]
    fn a_job_is_stored_under_no_namespace_and_named_by_its_namespace() {
        assert_eq!(job_id("abc"), "delete-namespace/abc");
        assert!(uuid::Uuid::parse_str(SYSTEM_NAMESPACE_ID).is_err());
    }
}
