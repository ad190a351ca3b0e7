//! Schedules: each is a job row of kind `schedule`, run by one actor on the member that owns
//! it (`claims`); the schedule RPCs reach that member (the frontend routes them by the
//! job's owner) and talk to its actor, which applies each change and stores it before
//! answering. Reads of many schedules (list, count) come from the stored rows.

mod actor;
mod list;
mod requests;
mod state;

pub(crate) use actor::Actor;
use actor::Reply;
pub(crate) use requests::{identity, request_id_of, start_request};
use state::ScheduleJob;

use crate::{Result, Worker, WorkerError};
use chronicle_api::enums::v1::ScheduleOverlapPolicy;
use chronicle_api::schedule::v1::{Schedule, SchedulePatch};
use chronicle_api::workflowservice::{
    CreateScheduleRequest, DescribeScheduleResponse, ListScheduleMatchingTimesRequest,
    ListScheduleMatchingTimesResponse, UpdateScheduleRequest,
};
use chronicle_common::time;
use chronicle_persistence::{JobClaim, JobKey, JobKind, JobRow, PersistenceError};
use chronicle_schedule_spec::Spec;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// How soon a step the cluster could not take (a start, a store) is tried again.
pub(crate) const RETRY: Duration = Duration::from_secs(1);
/// Most matching times one ListScheduleMatchingTimes answers.
const MAX_MATCHING_TIMES: usize = 1000;

/// A change to a schedule, applied by its actor to its state at a time; it answers the
/// schedule's new compiled spec when the spec changed.
pub(crate) type Change =
    Box<dyn FnOnce(&mut ScheduleJob, SystemTime) -> Result<Option<Spec>> + Send>;

pub(crate) enum Command {
    Describe(Reply<DescribeScheduleResponse>),
    Change(Change, Reply<()>),
    Delete(Reply<()>),
}

/// The actors running on this node, by their job.
pub(crate) type Actors = Arc<Mutex<HashMap<JobKey, mpsc::Sender<Command>>>>;

pub(crate) fn key(namespace_id: &str, schedule_id: &str) -> JobKey {
    JobKey {
        namespace_id: namespace_id.to_owned(),
        kind: JobKind::Schedule,
        job_id: schedule_id.to_owned(),
    }
}

pub(crate) fn decode(data: &[u8]) -> Result<ScheduleJob> {
    ScheduleJob::decode(data)
        .map_err(|e| PersistenceError::Corrupt(format!("schedule: {e}")).into())
}

fn compile(schedule: &Schedule) -> Result<Spec> {
    Spec::compile(&schedule.spec.clone().unwrap_or_default())
        .map_err(|e| WorkerError::InvalidArgument(e.to_string()))
}

/// The schedule as describe shows it: its info with the times it will act next.
pub(crate) fn describe(job: &ScheduleJob, spec: &Spec) -> DescribeScheduleResponse {
    let mut info = job.info.clone().unwrap_or_default();
    info.future_action_times = job.future_action_times(spec);
    info.buffer_size = i64::try_from(job.buffer.len()).unwrap_or(i64::MAX);
    DescribeScheduleResponse {
        schedule: job.schedule.clone(),
        info: Some(info),
        memo: job.memo.clone(),
        search_attributes: job.search_attributes.clone(),
        conflict_token: job.conflict_token_bytes(),
    }
}

/// Checks a schedule as given, puts its spec in canonical form and fills its policies'
/// defaults as Temporal describes them.
fn checked(mut schedule: Schedule) -> Result<(Schedule, Spec)> {
    requests::check_action(&schedule)?;
    let policies = schedule.policies.get_or_insert_with(Default::default);
    if policies.overlap_policy == ScheduleOverlapPolicy::Unspecified as i32 {
        policies.overlap_policy = ScheduleOverlapPolicy::Skip as i32;
    }
    policies.catchup_window = Some(time::duration(state::catchup_window(
        policies.catchup_window.as_ref(),
    )));
    let compiled = compile(&schedule)?;
    schedule.spec = Some(compiled.canonical_form().clone());
    Ok((schedule, compiled))
}

/// Applies a patch: an immediate trigger, backfills, a pause or unpause with its note.
fn patch(job: &mut ScheduleJob, spec: &Spec, patch: SchedulePatch, now: SystemTime) {
    if let Some(trigger) = patch.trigger_immediately {
        let at = trigger
            .scheduled_time
            .as_ref()
            .map_or(now, time::from_timestamp);
        job.buffer_start(state::BufferedStart {
            nominal: Some(time::timestamp(at)),
            actual: Some(time::timestamp(now)),
            overlap_policy: trigger.overlap_policy,
            manual: true,
        });
    }
    for backfill in patch.backfill_request {
        let start = backfill
            .start_time
            .as_ref()
            .map_or(now, time::from_timestamp);
        let end = backfill.end_time.as_ref().map_or(now, time::from_timestamp);
        job.backfill(spec, start, end, backfill.overlap_policy);
    }
    if !patch.pause.is_empty() {
        job.set_paused(true, patch.pause);
    }
    if !patch.unpause.is_empty() {
        job.set_paused(false, patch.unpause);
    }
}

impl Worker {
    pub async fn create_schedule(
        &self,
        namespace_id: &str,
        r: CreateScheduleRequest,
    ) -> Result<Vec<u8>> {
        requests::check_id(&r.schedule_id)?;
        let (schedule, spec) = checked(r.schedule.unwrap_or_default())?;
        let key = key(namespace_id, &r.schedule_id);
        if self.store.job(&key).await?.is_some() {
            return Err(WorkerError::ScheduleExists(r.schedule_id));
        }
        let now = time::now();
        let mut job = ScheduleJob {
            namespace: r.namespace,
            namespace_id: namespace_id.to_owned(),
            schedule_id: r.schedule_id,
            schedule: Some(schedule),
            memo: r.memo,
            search_attributes: r.search_attributes,
            processed_until: Some(time::timestamp(now)),
            conflict_token: 1,
            ..Default::default()
        };
        job.info_mut().create_time = Some(time::timestamp(now));
        if let Some(initial) = r.initial_patch {
            patch(&mut job, &spec, initial, now);
        }
        let token = job.conflict_token_bytes();
        self.store
            .put_job(&JobRow {
                key: key.clone(),
                running: true,
                data: job.encode_to_vec(),
            })
            .await?;
        // Created on its owner (the frontend routes creation there too): its actor starts
        // now, so the calls that follow find it.
        self.claim_and_run(&key).await?;
        Ok(token)
    }

    pub async fn describe_schedule(
        &self,
        namespace_id: &str,
        schedule_id: &str,
    ) -> Result<DescribeScheduleResponse> {
        self.ask(&key(namespace_id, schedule_id), Command::Describe)
            .await
    }

    pub async fn update_schedule(
        &self,
        namespace_id: &str,
        r: UpdateScheduleRequest,
    ) -> Result<()> {
        let (schedule, spec) = checked(r.schedule.unwrap_or_default())?;
        let conflict_token = r.conflict_token;
        let (memo, search_attributes) = (r.memo, r.search_attributes);
        let change: Change = Box::new(move |job, now| {
            // As Temporal's: an update made from an older describe is dropped.
            if !conflict_token.is_empty() && conflict_token != job.conflict_token_bytes() {
                return Ok(None);
            }
            job.schedule = Some(schedule);
            job.memo = memo.or(job.memo.take());
            job.search_attributes = search_attributes.or(job.search_attributes.take());
            job.conflict_token += 1;
            // The new spec acts from now on: times before the update are not caught up.
            job.processed_until = Some(time::timestamp(now));
            Ok(Some(spec))
        });
        self.change(&key(namespace_id, &r.schedule_id), change)
            .await
    }

    pub async fn patch_schedule(
        &self,
        namespace_id: &str,
        schedule_id: &str,
        p: SchedulePatch,
    ) -> Result<()> {
        let change: Change = Box::new(move |job, now| {
            let spec = compile(job.schedule())?;
            patch(job, &spec, p, now);
            Ok(None)
        });
        self.change(&key(namespace_id, schedule_id), change).await
    }

    pub async fn delete_schedule(&self, namespace_id: &str, schedule_id: &str) -> Result<()> {
        self.ask(&key(namespace_id, schedule_id), Command::Delete)
            .await
    }

    pub async fn schedule_matching_times(
        &self,
        namespace_id: &str,
        r: ListScheduleMatchingTimesRequest,
    ) -> Result<ListScheduleMatchingTimesResponse> {
        let row = self.store.job(&key(namespace_id, &r.schedule_id)).await?;
        let job = decode(&not_found(row)?.data)?;
        let spec = compile(job.schedule())?;
        let seed = job.jitter_seed();
        let mut after = r
            .start_time
            .as_ref()
            .map_or(SystemTime::UNIX_EPOCH, time::from_timestamp);
        let end = r.end_time.as_ref().map_or(after, time::from_timestamp);
        let mut start_time = Vec::new();
        while start_time.len() < MAX_MATCHING_TIMES {
            let Some(next) = spec.next(&seed, after.into()) else {
                break;
            };
            after = next.actual.into();
            if after > end {
                break;
            }
            start_time.push(time::timestamp(after));
        }
        Ok(ListScheduleMatchingTimesResponse { start_time })
    }

    async fn change(&self, key: &JobKey, change: Change) -> Result<()> {
        self.ask(key, |reply| Command::Change(change, reply)).await
    }

    /// Sends a command to the schedule's actor, starting it here when none runs here (the
    /// frontend routed the call to this member, its owner), and waits for the answer.
    async fn ask<T>(&self, key: &JobKey, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let mut command = make(reply);
        // Twice: the actor may end (its claim moved) between the lookup and the send.
        for _ in 0..2 {
            match self.actor(key).await?.send(command).await {
                Ok(()) => return answer.await.map_err(|_| unavailable())?,
                Err(mpsc::error::SendError(back)) => command = back,
            }
        }
        Err(unavailable())
    }

    /// This node's actor for the schedule, claimed and started now when none runs here.
    async fn actor(&self, key: &JobKey) -> Result<mpsc::Sender<Command>> {
        if let Some(sender) = self.running_actor(key) {
            return Ok(sender);
        }
        self.claim_and_run(key).await?;
        match self.running_actor(key) {
            Some(sender) => Ok(sender),
            // Schedule rows are stored running until deleted: no claim means no schedule.
            None if self.store.job(key).await?.is_none() => Err(missing()),
            None => Err(unavailable()),
        }
    }

    fn running_actor(&self, key: &JobKey) -> Option<mpsc::Sender<Command>> {
        let actors = self.actors.lock().unwrap_or_else(PoisonError::into_inner);
        actors.get(key).filter(|s| !s.is_closed()).cloned()
    }

    /// The actor of a claimed schedule, registered so this node's RPCs reach it.
    pub(crate) fn schedule_actor(
        &self,
        claim: &JobClaim,
        shutdown: chronicle_common::supervisor::CancellationToken,
    ) -> Result<(String, impl Future<Output = ()> + Send + 'static)> {
        let job = decode(&claim.job.data)?;
        let spec = compile(job.schedule())?;
        let workflows = self.workflows.get().cloned().ok_or_else(|| {
            WorkerError::InvalidArgument("schedule claimed before the worker follows".into())
        })?;
        let (sender, commands) = mpsc::channel(16);
        let key = claim.job.key.clone();
        self.actors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), sender.clone());
        let name = format!("schedule {}", job.schedule_id);
        let actor = Actor {
            key: key.clone(),
            epoch: claim.epoch,
            job,
            spec,
            store: self.store.clone(),
            workflows,
            supervisor: self.supervisor.clone(),
            commands,
            watchers: shutdown.child_token(),
            shutdown,
        };
        let actors = self.actors.clone();
        Ok((name, async move {
            actor.run().await;
            let mut actors = actors.lock().unwrap_or_else(PoisonError::into_inner);
            if actors.get(&key).is_some_and(|s| s.same_channel(&sender)) {
                actors.remove(&key);
            }
        }))
    }
}

fn missing() -> WorkerError {
    WorkerError::NotFound("schedule not found".into())
}

fn not_found<T>(row: Option<T>) -> Result<T> {
    row.ok_or_else(missing)
}

fn unavailable() -> WorkerError {
    WorkerError::Unavailable("the schedule is moving between members; retry".into())
}
