//! Which node runs each job. A running job belongs to one live member playing `worker`
//! (`job_owner`, rendezvous hashing like shards and queues), and that member runs it under a
//! claim on its row: claiming ends any earlier claim, and progress is written only under the
//! latest one, so a job runs on one node at a time even while the members' views differ. A
//! node that stops owning a job stops it at its next safe point; the new owner claims it and
//! goes on from the progress stored last (what it repeats, each run applies once).

use crate::batch::Runner;
use crate::deletion::{Deletion, NamespaceDeletion};
use crate::{Result, Worker, WorkerError, Workflows};
use chronicle_cluster::Membership;
use chronicle_common::cluster::job_owner;
use chronicle_common::supervisor::CancellationToken;
use chronicle_persistence::{JobClaim, JobKey, JobKind, JobRow, PersistenceError};
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

/// The jobs this node runs, each with the token that stops it.
pub(crate) type Local = Arc<Mutex<HashMap<JobKey, CancellationToken>>>;

/// What one pass over the running jobs does.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Jobs to claim and run here.
    pub claim: Vec<JobKey>,
    /// Jobs to stop here: another member's now, or no longer running.
    pub stop: Vec<JobKey>,
}

/// `running`: the jobs running in the store; `local`: those this node runs; `mine`: whether
/// this node owns a job now.
pub(crate) fn plan(
    running: &[JobKey],
    local: &HashSet<JobKey>,
    mine: impl Fn(&JobKey) -> bool,
) -> Plan {
    let claim = running
        .iter()
        .filter(|key| mine(key) && !local.contains(*key))
        .cloned()
        .collect();
    let mut stop: Vec<JobKey> = local
        .iter()
        .filter(|key| !mine(key) || !running.contains(key))
        .cloned()
        .collect();
    stop.sort();
    Plan { claim, stop }
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Worker {
    /// Runs the jobs `membership` assigns this node, acting on workflows through
    /// `workflows`, and follows the assignment until the worker's supervisor stops. Answers
    /// how many jobs the first pass started.
    pub async fn follow(
        &self,
        membership: Membership,
        workflows: Arc<dyn Workflows>,
    ) -> Result<usize> {
        // Set once: a node follows one cluster.
        let _ = self.workflows.set(workflows);
        let started = self.settle(&membership).await?;
        let follower = self.clone();
        let stop = self.supervisor.token();
        self.supervisor
            .spawn("job ownership", follower.keep_following(membership, stop));
        Ok(started)
    }

    async fn keep_following(self, membership: Membership, stop: CancellationToken) {
        let mut members = membership.subscribe();
        loop {
            // A job stored here is claimed at once; one stored by another node waits for
            // this node's next pass, a heartbeat at most.
            tokio::select! {
                _ = members.changed() => {}
                () = self.wake.notified() => {}
                () = tokio::time::sleep(membership.heartbeat()) => {}
                () = stop.cancelled() => return,
            }
            if let Err(e) = self.settle(&membership).await {
                tracing::warn!("job ownership not settled: {e}");
            }
        }
    }

    /// Claims the running jobs this node owns and does not run yet, and stops the ones it
    /// runs but no longer owns; answers how many it started.
    async fn settle(&self, membership: &Membership) -> Result<usize> {
        let running = self.store.running_jobs().await?;
        let me = &membership.me().id;
        let holds = membership.holds_lease();
        let plan = membership.with_live(|live| {
            let mine = |key: &JobKey| {
                holds
                    && job_owner(live.list(), &key.namespace_id, &key.job_id)
                        .is_some_and(|m| &m.id == me)
            };
            plan(&running, &self.local_keys(), mine)
        });
        for key in &plan.stop {
            if let Some(token) = self.local().get(key) {
                tracing::info!(job_id = %key.job_id, "job stops here: another member runs it now");
                token.cancel();
            }
        }
        let mut started = 0;
        for key in plan.claim {
            started += usize::from(self.claim_and_run(&key).await?);
        }
        Ok(started)
    }

    /// Claims a job and runs it here, unless it runs here already: the follower and a
    /// schedule's first RPC may both come to claim it, and one claim must not end the
    /// other's. Answers whether it started.
    pub(crate) async fn claim_and_run(&self, key: &JobKey) -> Result<bool> {
        if self.workflows.get().is_none() {
            return Err(WorkerError::Unavailable(
                "this node does not run the internal worker's jobs".into(),
            ));
        }
        let _one_at_a_time = self.claiming.lock().await;
        if self.local().contains_key(key) {
            return Ok(false);
        }
        match self.store.claim_job(key).await? {
            Some(claim) => self.run_claimed(key.clone(), claim).await,
            None => Ok(false),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, CancellationToken>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn local_keys(&self) -> HashSet<JobKey> {
        self.local().keys().cloned().collect()
    }

    /// Runs a claimed job until it ends or its token stops it; a job that does not decode
    /// is logged and set aside (stored as no longer running) instead of being claimed again
    /// every pass. Answers whether it started.
    async fn run_claimed(&self, key: JobKey, claim: JobClaim) -> Result<bool> {
        let token = self.supervisor.token().child_token();
        let (name, job) = match self.job(&claim, token.clone()) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(job_id = %key.job_id, "job set aside: {e}");
                let aside = JobRow {
                    running: false,
                    ..claim.job
                };
                self.store.save_claimed_job(&aside, claim.epoch).await?;
                return Ok(false);
            }
        };
        tracing::info!(job_id = %key.job_id, epoch = claim.epoch, "job claimed");
        self.local().insert(key.clone(), token);
        let local = self.local.clone();
        self.supervisor.spawn(name, async move {
            job.await;
            local
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
        });
        Ok(true)
    }

    fn job(&self, claim: &JobClaim, shutdown: CancellationToken) -> Result<(String, Job)> {
        let row = &claim.job;
        if row.key.kind == JobKind::Schedule {
            let (name, actor) = self.schedule_actor(claim, shutdown)?;
            return Ok((name, Box::pin(actor)));
        }
        if row.key.kind == JobKind::NamespaceDeletion {
            let job = NamespaceDeletion::decode(row.data.as_slice())
                .map_err(|e| PersistenceError::Corrupt(format!("namespace deletion job: {e}")))?;
            let deletion = Deletion {
                history: self.history.clone(),
                store: self.store.clone(),
                epoch: claim.epoch,
                shutdown,
            };
            let name = format!("namespace deletion {}", job.namespace_id);
            return Ok((name, Box::pin(deletion.run(job))));
        }
        let job = crate::decode(&row.data)?;
        let workflows = self.workflows.get().cloned().ok_or_else(|| {
            WorkerError::InvalidArgument("batch job claimed before the worker follows".into())
        })?;
        let runner = Runner {
            history: self.history.clone(),
            workflows,
            store: self.store.clone(),
            namespace_id: row.key.namespace_id.clone(),
            epoch: claim.epoch,
            shutdown,
        };
        let name = format!("batch job {}", job.status().job_id);
        Ok((name, Box::pin(runner.run(job))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> JobKey {
        JobKey {
            namespace_id: "ns".into(),
            kind: JobKind::Batch,
            job_id: id.into(),
        }
    }

    #[test]
    fn a_node_claims_the_running_jobs_it_owns_and_does_not_run_yet() {
        let running = [key("a"), key("b"), key("c")];
        let local = HashSet::from([key("a")]);
        let plan = plan(&running, &local, |k| k.job_id != "c");
        assert_eq!(plan.claim, vec![key("b")]);
        assert!(plan.stop.is_empty());
    }

    #[test]
    fn a_node_stops_the_jobs_it_no_longer_owns_or_that_ended() {
        let running = [key("a"), key("b")];
        let local = HashSet::from([key("a"), key("b"), key("gone")]);
        let plan = plan(&running, &local, |k| k.job_id != "b");
        assert!(plan.claim.is_empty());
        assert_eq!(plan.stop, vec![key("b"), key("gone")]);
    }

    #[test]
    fn a_node_without_its_lease_owns_nothing_and_stops_everything() {
        let running = [key("a"), key("b")];
        let local = HashSet::from([key("a")]);
        let plan = plan(&running, &local, |_| false);
        assert!(plan.claim.is_empty());
        assert_eq!(plan.stop, vec![key("a")]);
    }
}
