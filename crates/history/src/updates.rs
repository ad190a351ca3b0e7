//! Workflow updates. An admitted update lives in memory (as in Temporal, a restart forgets it
//! and the client retries); its request rides to the worker as a protocol message with the
//! next workflow task. The worker's acceptance and response become history events (ordered
//! by ProtocolMessage commands), which makes them durable; a rejection leaves no event.

use crate::engine::effects::{Progress, UpdateEffect};
use crate::engine::limits;
use crate::engine::start::NewRun;
use crate::engine::state::UpdateRecord;
use crate::engine::updates::{
    PendingUpdates, aborted_by_close, registry_full, response, update_id,
};
use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::update::v1::Request;
use chronicle_api::workflowservice::{
    PollWorkflowExecutionUpdateRequest, PollWorkflowExecutionUpdateResponse,
    StartWorkflowExecutionRequest, StartWorkflowExecutionResponse, UpdateWorkflowExecutionRequest,
    UpdateWorkflowExecutionResponse,
};
use chronicle_common::config::Limits;
use chronicle_common::{ExecutionKey, time};
use prost::Message as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use tokio::sync::watch;
use tokio::time::Instant;

struct Pending {
    request: Request,
    progress: watch::Sender<Progress>,
}

#[derive(Default)]
struct Registry {
    runs: HashMap<ExecutionKey, HashMap<String, Pending>>,
    /// Encoded size of the requests held, bounded by `pending_updates_bytes`.
    bytes: u64,
}

impl Registry {
    fn forget(&mut self, pending: &Pending) {
        self.bytes = self
            .bytes
            .saturating_sub(pending.request.encoded_len() as u64);
    }
}

/// Updates admitted and not yet completed, per run and update id.
pub(crate) struct Updates {
    registry: Mutex<Registry>,
    max_bytes: u64,
}

impl Updates {
    pub fn new(max_bytes: u64) -> Self {
        Self {
            registry: Mutex::default(),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits the update unless it is known; returns its progress receiver either way, and
    /// whether it is new. `recorded` are the updates the run's history holds; a new update
    /// must fit the run's limits and the node's memory bound.
    pub fn admit(
        &self,
        key: &ExecutionKey,
        request: Request,
        recorded: &BTreeMap<String, UpdateRecord>,
        limits: &Limits,
    ) -> Result<(watch::Receiver<Progress>, bool)> {
        let mut registry = self.lock();
        let size = request.encoded_len() as u64;
        let full = registry.bytes + size > self.max_bytes;
        let run = registry.runs.entry(key.clone()).or_default();
        let id = update_id(&request);
        if let Some(pending) = run.get(&id) {
            return Ok((pending.progress.subscribe(), false));
        }
        let unrecorded = run.keys().filter(|id| !recorded.contains_key(*id)).count();
        limits::check_update_admission(run.len(), recorded.len() + unrecorded, limits)?;
        if full {
            return Err(registry_full(self.max_bytes));
        }
        let (progress, receiver) = watch::channel(Progress::Admitted);
        run.insert(id, Pending { request, progress });
        registry.bytes += size;
        Ok((receiver, true))
    }

    fn subscribe(&self, key: &ExecutionKey, update_id: &str) -> Option<watch::Receiver<Progress>> {
        self.lock()
            .runs
            .get(key)?
            .get(update_id)
            .map(|p| p.progress.subscribe())
    }

    /// Requests of the run's updates the worker has not accepted or rejected yet.
    pub fn undecided(&self, key: &ExecutionKey) -> Vec<Request> {
        let registry = self.lock();
        let Some(run) = registry.runs.get(key) else {
            return Vec::new();
        };
        run.values()
            .filter(|p| *p.progress.borrow() == Progress::Admitted)
            .map(|p| p.request.clone())
            .collect()
    }

    /// The run's updates in memory as a change sees them: read before the change.
    pub fn pending(&self, key: &ExecutionKey) -> PendingUpdates {
        let registry = self.lock();
        let Some(run) = registry.runs.get(key) else {
            return PendingUpdates::default();
        };
        PendingUpdates {
            requests: run
                .iter()
                .map(|(id, p)| (id.clone(), p.request.clone()))
                .collect(),
            undecided: run
                .iter()
                .filter(|(_, p)| *p.progress.borrow() == Progress::Admitted)
                .map(|(id, _)| id.clone())
                .collect(),
        }
    }

    pub fn announce(&self, key: &ExecutionKey, effects: Vec<UpdateEffect>) {
        let mut registry = self.lock();
        let Some(mut run) = registry.runs.remove(key) else {
            return;
        };
        for effect in effects {
            let done = matches!(effect.progress, Progress::Completed(_));
            if let Some(pending) = run.get(&effect.update_id) {
                pending.progress.send_replace(effect.progress);
            }
            if done && let Some(pending) = run.remove(&effect.update_id) {
                registry.forget(&pending);
            }
        }
        if !run.is_empty() {
            registry.runs.insert(key.clone(), run);
        }
    }

    /// The run closed: every update still in flight ends, as in Temporal: an accepted one
    /// fails, one no worker accepted is aborted.
    pub fn fail_all(&self, key: &ExecutionKey) {
        let mut registry = self.lock();
        let Some(run) = registry.runs.remove(key) else {
            return;
        };
        for pending in run.values() {
            registry.forget(pending);
        }
        drop(registry);
        for pending in run.into_values() {
            let accepted = *pending.progress.borrow() == Progress::Accepted;
            pending.progress.send_replace(if accepted {
                Progress::Completed(Box::new(aborted_by_close()))
            } else {
                Progress::Aborted
            });
        }
    }
}

/// Waits until the update reaches `wanted` or the deadline passes; answers where it stands.
async fn wait(
    mut receiver: watch::Receiver<Progress>,
    wanted: Stage,
    deadline: Instant,
) -> Progress {
    let reached = |p: &Progress| p.stage() as i32 >= wanted as i32;
    let _ = tokio::time::timeout_at(deadline, receiver.wait_for(reached)).await;
    receiver.borrow().clone()
}

/// An update that died with its run before a worker saw it is gone, as Temporal says.
fn unless_aborted(progress: Progress) -> Result<Progress> {
    match progress {
        Progress::Aborted => Err(HistoryError::WorkflowNotFound(
            "workflow update was aborted by closing workflow".into(),
        )),
        progress => Ok(progress),
    }
}

impl History {
    pub async fn update_workflow(
        &self,
        namespace_id: &str,
        r: UpdateWorkflowExecutionRequest,
        deadline: Instant,
    ) -> Result<UpdateWorkflowExecutionResponse> {
        let execution = r.workflow_execution.unwrap_or_default();
        let request = r.request.unwrap_or_default();
        let id = update_id(&request);
        let wanted = Stage::try_from(r.wait_policy.map_or(0, |w| w.lifecycle_stage))
            .unwrap_or(Stage::Admitted);
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, &execution.run_id)
            .await?;
        if let Some(progress) = self.recorded_progress(&key, &id).await? {
            return Ok(response(&key, id, progress));
        }
        let first_run_id = r.first_execution_run_id;
        let receiver = self
            .update(&key, |change| {
                // An update names its chain by the first run: another chain's is not this.
                if !first_run_id.is_empty() && change.info().first_execution_run_id != first_run_id
                {
                    return Err(HistoryError::WorkflowNotFound(
                        "workflow execution not found".into(),
                    ));
                }
                let limits = self.limits(&change.info().namespace_name);
                let (receiver, admitted) = self.inner.updates.admit(
                    &change.key,
                    request,
                    &change.state.updates,
                    limits,
                )?;
                if admitted && change.state.workflow_task.is_none() {
                    change.schedule_workflow_task_if_needed();
                } else {
                    change.nothing_to_write();
                }
                Ok(receiver)
            })
            .await?;
        let progress = unless_aborted(wait(receiver, wanted, deadline).await)?;
        Ok(response(&key, id, progress))
    }

    /// Update-with-start: the update rides with the first workflow task of the run the start
    /// creates, or goes to the run the start found.
    pub async fn update_with_start(
        &self,
        namespace: &NamespaceRef,
        start: StartWorkflowExecutionRequest,
        mut update: UpdateWorkflowExecutionRequest,
        deadline: Instant,
    ) -> Result<(
        StartWorkflowExecutionResponse,
        UpdateWorkflowExecutionResponse,
    )> {
        let (reuse, conflict) = (
            start.workflow_id_reuse_policy,
            start.workflow_id_conflict_policy,
        );
        let mut start = start;
        start.search_attributes = self
            .checked_search_attributes(&namespace.id, start.search_attributes)
            .await?;
        limits::check_start(&start, self.limits(&namespace.name))?;
        let new_run = NewRun::from_request(namespace, start, time::now())?;
        let request = update.request.clone().unwrap_or_default();
        let id = update_id(&request);
        let wanted = Stage::try_from(update.wait_policy.map_or(0, |w| w.lifecycle_stage))
            .unwrap_or(Stage::Admitted);
        let (started, admitted) = self
            .start_run_with(new_run, reuse, conflict, None, Some(request))
            .await?;
        let execution = update
            .workflow_execution
            .get_or_insert_with(Default::default);
        execution.run_id.clone_from(&started.run_id);
        let updated = match admitted {
            Some(receiver) => {
                let key = ExecutionKey::new(&namespace.id, &execution.workflow_id, &started.run_id);
                response(
                    &key,
                    id,
                    unless_aborted(wait(receiver, wanted, deadline).await)?,
                )
            }
            None => {
                self.update_workflow(&namespace.id, update, deadline)
                    .await?
            }
        };
        Ok((started, updated))
    }

    pub async fn poll_update(
        &self,
        namespace_id: &str,
        r: PollWorkflowExecutionUpdateRequest,
        deadline: Instant,
    ) -> Result<PollWorkflowExecutionUpdateResponse> {
        let update_ref = r.update_ref.unwrap_or_default();
        let execution = update_ref.workflow_execution.unwrap_or_default();
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, &execution.run_id)
            .await?;
        let wanted = Stage::try_from(r.wait_policy.map_or(0, |w| w.lifecycle_stage))
            .unwrap_or(Stage::Admitted);
        let progress = match self.inner.updates.subscribe(&key, &update_ref.update_id) {
            Some(receiver) => unless_aborted(wait(receiver, wanted, deadline).await)?,
            None => self
                .recorded_progress(&key, &update_ref.update_id)
                .await?
                .ok_or_else(|| {
                    HistoryError::WorkflowNotFound(format!(
                        "update {:?} not found",
                        update_ref.update_id
                    ))
                })?,
        };
        let answer = response(&key, update_ref.update_id, progress);
        Ok(PollWorkflowExecutionUpdateResponse {
            outcome: answer.outcome,
            stage: answer.stage,
            update_ref: answer.update_ref,
        })
    }

    /// What history says of the update: completed (with its outcome) or accepted.
    async fn recorded_progress(
        &self,
        key: &ExecutionKey,
        update_id: &str,
    ) -> Result<Option<Progress>> {
        let (state, _) = self.snapshot(key).await?;
        let Some(record) = state.updates.get(update_id).cloned() else {
            return Ok(None);
        };
        if record.completed_event_id == 0 {
            // Accepted, and the run closed without completing it: it failed with the close.
            let progress = if state.is_running() {
                Progress::Accepted
            } else {
                Progress::Completed(Box::new(aborted_by_close()))
            };
            return Ok((record.accepted_event_id != 0).then_some(progress));
        }
        match self
            .read_event(key, record.completed_event_id)
            .await?
            .attributes
        {
            Some(A::WorkflowExecutionUpdateCompletedEventAttributes(c)) => Ok(Some(
                Progress::Completed(Box::new(c.outcome.unwrap_or_default())),
            )),
            _ => Err(HistoryError::Corrupt(format!(
                "event {} of {key} is not an update's completion",
                record.completed_event_id
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::updates::tests::request;
    use std::collections::BTreeMap;

    #[test]
    fn admission_is_bounded_by_bytes_and_released_on_completion() {
        let updates = Updates::new(1000);
        let key = ExecutionKey::new("ns", "wf", "run");
        let (none, limits) = (BTreeMap::new(), Limits::default());
        assert!(
            updates
                .admit(&key, request("a", 600), &none, &limits)
                .is_ok()
        );
        let refused = updates.admit(&key, request("b", 600), &none, &limits);
        assert!(matches!(
            refused,
            Err(HistoryError::ResourceExhausted { .. })
        ));
        let done = UpdateEffect {
            update_id: "a".into(),
            progress: Progress::Completed(Box::default()),
        };
        updates.announce(&key, vec![done]);
        assert!(
            updates
                .admit(&key, request("b", 600), &none, &limits)
                .is_ok()
        );
    }
}
