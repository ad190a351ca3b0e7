//! Starting runs: StartWorkflowExecution, SignalWithStart and the runs retries create, with
//! Temporal's id reuse and id conflict policies.

use crate::engine::effects::Progress;
use crate::engine::limits;
use crate::engine::start::{Decision, NewRun, decide, response};
use crate::engine::workflow_task::SuggestAt;
use crate::workflow_task::Handed;
use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_api::common::v1::{Memo, Payloads, SearchAttributes};
use chronicle_api::enums::v1::WorkflowIdConflictPolicy as Conflict;
use chronicle_api::history::v1::WorkflowExecutionSignaledEventAttributes;
use chronicle_api::update::v1::Request;
use chronicle_api::workflowservice::{
    SignalWithStartWorkflowExecutionRequest, StartWorkflowExecutionRequest,
    StartWorkflowExecutionResponse,
};
use chronicle_common::{ExecutionKey, payload, time};
use tokio::sync::watch;

impl History {
    pub async fn start_workflow(
        &self,
        namespace: &NamespaceRef,
        mut request: StartWorkflowExecutionRequest,
    ) -> Result<StartWorkflowExecutionResponse> {
        request.search_attributes = self
            .checked_search_attributes(&namespace.id, request.search_attributes)
            .await?;
        let (reuse, conflict) = (
            request.workflow_id_reuse_policy,
            request.workflow_id_conflict_policy,
        );
        limits::check_start(&request, self.limits(&namespace.name))?;
        let new_run = NewRun::from_request(namespace, request, time::now())?;
        self.start_run(new_run, reuse, conflict, None).await
    }

    pub async fn signal_with_start(
        &self,
        namespace: &NamespaceRef,
        mut r: SignalWithStartWorkflowExecutionRequest,
    ) -> Result<StartWorkflowExecutionResponse> {
        r.search_attributes = self
            .checked_search_attributes(&namespace.id, r.search_attributes)
            .await?;
        let signal = WorkflowExecutionSignaledEventAttributes {
            signal_name: r.signal_name,
            input: r.signal_input,
            identity: r.identity.clone(),
            header: r.header.clone(),
            request_id: r.request_id.clone(),
            ..Default::default()
        };
        let start = StartWorkflowExecutionRequest {
            namespace: r.namespace,
            workflow_id: r.workflow_id,
            workflow_type: r.workflow_type,
            task_queue: r.task_queue,
            input: r.input,
            workflow_execution_timeout: r.workflow_execution_timeout,
            workflow_run_timeout: r.workflow_run_timeout,
            workflow_task_timeout: r.workflow_task_timeout,
            identity: r.identity,
            request_id: r.request_id,
            workflow_id_reuse_policy: r.workflow_id_reuse_policy,
            retry_policy: r.retry_policy,
            cron_schedule: r.cron_schedule,
            memo: r.memo,
            search_attributes: r.search_attributes,
            header: r.header,
            workflow_start_delay: r.workflow_start_delay,
            ..Default::default()
        };
        limits::check_start(&start, self.limits(&namespace.name))?;
        let new_run = NewRun::from_request(namespace, start, time::now())?;
        // Signal-with-start signals a running workflow unless asked to replace it (the
        // frontend refuses FAIL, as Temporal does).
        let conflict = match Conflict::try_from(r.workflow_id_conflict_policy) {
            Ok(Conflict::TerminateExisting) => Conflict::TerminateExisting,
            _ => Conflict::UseExisting,
        };
        self.start_run(
            new_run,
            r.workflow_id_reuse_policy,
            conflict as i32,
            Some(signal),
        )
        .await
    }

    /// Checks a memo and search attributes as a start checks them (the namespace's limits
    /// and registry) without starting anything: a schedule's own, and those it will start
    /// its workflows with, are refused when the schedule is made, as Temporal refuses them.
    pub async fn check_memo_and_attributes(
        &self,
        namespace: &NamespaceRef,
        memo: Option<&Memo>,
        attributes: Option<&SearchAttributes>,
    ) -> Result<()> {
        let typed = self
            .checked_search_attributes(&namespace.id, attributes.cloned())
            .await?;
        let limits = self.limits(&namespace.name);
        limits::check_memo_and_attributes(memo, typed.as_ref(), limits)
    }

    /// Search attributes of a start request, typed; a bad one refuses the request.
    pub(crate) async fn checked_search_attributes(
        &self,
        namespace_id: &str,
        attributes: Option<SearchAttributes>,
    ) -> Result<Option<SearchAttributes>> {
        let Some(attributes) = attributes else {
            return Ok(None);
        };
        self.typed_search_attributes(namespace_id, attributes)
            .await?
            .map(Some)
            .map_err(HistoryError::InvalidArgument)
    }

    pub(crate) async fn start_run(
        &self,
        new_run: NewRun,
        reuse: i32,
        conflict: i32,
        signal: Option<WorkflowExecutionSignaledEventAttributes>,
    ) -> Result<StartWorkflowExecutionResponse> {
        let (started, _) = self
            .start_run_with(new_run, reuse, conflict, signal, None)
            .await?;
        Ok(started)
    }

    /// `start_run`, plus an update admitted to the run it creates before its first workflow
    /// task can start (update-with-start); None when an existing run is used instead.
    pub(crate) async fn start_run_with(
        &self,
        new_run: NewRun,
        reuse: i32,
        conflict: i32,
        signal: Option<WorkflowExecutionSignaledEventAttributes>,
        update: Option<Request>,
    ) -> Result<(
        StartWorkflowExecutionResponse,
        Option<watch::Receiver<Progress>>,
    )> {
        let ns_id = new_run.namespace.id.clone();
        let workflow_id = new_run.workflow_id.clone();
        let _lock = self.inner.locks.lock(&ns_id, &workflow_id).await;
        let current = self.store().current_run(&ns_id, &workflow_id).await?;
        // A signal-with-start retried with the same request id must not signal twice.
        let request_id = if signal.is_some() {
            ""
        } else {
            new_run.request_id.as_str()
        };
        let decision = decide(current, request_id, reuse, conflict)?;
        let (mut changes, previous) = match decision {
            Decision::Existing { run_id, started } => {
                let key = ExecutionKey::new(&ns_id, &workflow_id, &run_id);
                let mut change = self.load_running(&key).await?;
                let first = change.info().first_execution_run_id.clone();
                if signal.is_some() {
                    limits::may_signal(&change.state, self.limits(&change.info().namespace_name))?;
                }
                // A retried eager start gets the first workflow task again while its
                // worker has not finished it.
                let again = change
                    .state
                    .workflow_task
                    .clone()
                    .filter(|w| {
                        new_run.eager && w.is_started() && w.request_id == new_run.request_id
                    })
                    .map(|w| Handed::of(&change, &w, self));
                if let Some(signal) = signal
                    && change.apply_signal(signal)
                {
                    self.commit(change).await?;
                }
                let mut existing = response(run_id, first, started);
                existing.eager_workflow_task = self.hand_over(again, &key).await?;
                return Ok((existing, None));
            }
            Decision::Create { previous } => (Vec::new(), previous),
            Decision::TerminateAndCreate { previous } => {
                let key = ExecutionKey::new(&ns_id, &workflow_id, &previous);
                (vec![self.load_running(&key).await?], Some(previous))
            }
        };
        // Eager start: the starting worker runs the first workflow task, started in the
        // run's first write, unless the task waits (a start delay, a cron schedule) or the
        // start also signals.
        let eager = new_run.eager && new_run.backoff.is_none() && signal.is_none();
        let (identity, start_request_id) =
            (new_run.started.identity.clone(), new_run.request_id.clone());
        let mut new_run = new_run;
        new_run.started.eager_execution_accepted = eager;
        let mut change =
            NewRun { signal, ..new_run }.into_change(self.context(&ns_id, &workflow_id)?, previous);
        let run_id = change.key.run_id.clone();
        if let Some(old) = changes.first_mut() {
            // As in Temporal: the replaced run names its replacement in the details.
            let details = Payloads {
                payloads: vec![payload::json_string(&run_id)],
            };
            old.terminate(
                "TerminateIfRunning WorkflowIdReusePolicy",
                Some(details),
                "history-service",
            );
        }
        let first = change.info().first_execution_run_id.clone();
        let limits = self.limits(&change.info().namespace_name);
        let eager_task = match change.state.workflow_task.clone() {
            Some(scheduled) if eager && update.is_none() && !scheduled.is_started() => {
                let suggest = SuggestAt::of(limits);
                let wft =
                    change.start_workflow_task(scheduled, &identity, &start_request_id, suggest);
                Some(Handed::of(&change, &wft, self))
            }
            _ => None,
        };
        let admitted = update
            .map(|u| {
                self.inner
                    .updates
                    .admit(&change.key, u, &change.state.updates, limits)
            })
            .transpose()?
            .map(|(receiver, _)| receiver);
        let key = change.key.clone();
        changes.push(change);
        self.commit_all(changes).await?;
        let mut started = response(run_id, first, true);
        started.eager_workflow_task = self.hand_over(eager_task, &key).await?;
        Ok((started, admitted))
    }
}
