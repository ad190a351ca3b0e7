//! Workflow id policies: what a start does when the id has a current run.

use super::{TestEnv, command, start_request};
use crate::HistoryError;
use crate::engine::start::{Decision, decide};
use chronicle_api::command::v1::{
    FailWorkflowExecutionCommandAttributes, command::Attributes as C,
};
use chronicle_api::enums::v1::{
    WorkflowIdConflictPolicy as Conflict, WorkflowIdReusePolicy as Reuse,
};
use chronicle_persistence::CurrentRun;

fn running() -> (TestEnv, CurrentRun) {
    let env = TestEnv::start(start_request("order-1"));
    let current = env.current.clone().unwrap();
    (env, current)
}

fn failed() -> CurrentRun {
    let (mut env, _) = running();
    let wft = env.poll_workflow_task();
    let fail = C::FailWorkflowExecutionCommandAttributes(FailWorkflowExecutionCommandAttributes {
        failure: None,
    });
    env.complete(&wft, vec![command(fail)]).unwrap();
    env.current.unwrap()
}

#[test]
fn a_start_repeated_with_its_request_id_finds_the_run_it_made() {
    let (env, current) = running();
    let decision = decide(
        Some(current),
        "start-order-1",
        Reuse::RejectDuplicate as i32,
        Conflict::Fail as i32,
    );
    assert!(matches!(
        decision,
        Ok(Decision::Existing { run_id, started: true }) if run_id == env.key.run_id
    ));
}

#[test]
fn conflict_policies_decide_about_a_running_run() {
    let (env, current) = running();
    let run_id = env.key.run_id.clone();
    let decide_with = |conflict: Conflict| {
        decide(
            Some(current.clone()),
            "another-request",
            Reuse::AllowDuplicate as i32,
            conflict as i32,
        )
    };
    assert!(matches!(
        decide_with(Conflict::Fail),
        Err(HistoryError::AlreadyStarted { run_id: r, .. }) if r == run_id
    ));
    assert!(matches!(
        decide_with(Conflict::UseExisting),
        Ok(Decision::Existing { run_id: r, started: false }) if r == run_id
    ));
    assert!(matches!(
        decide_with(Conflict::TerminateExisting),
        Ok(Decision::TerminateAndCreate { previous }) if previous == run_id
    ));
}

#[test]
fn reuse_policies_decide_about_a_closed_run() {
    let closed = failed();
    let decide_with =
        |reuse: Reuse| decide(Some(closed.clone()), "another-request", reuse as i32, 0);
    assert!(matches!(
        decide_with(Reuse::AllowDuplicate),
        Ok(Decision::Create { previous: Some(_) })
    ));
    assert!(matches!(
        decide_with(Reuse::AllowDuplicateFailedOnly),
        Ok(Decision::Create { .. })
    ));
    assert!(matches!(
        decide_with(Reuse::RejectDuplicate),
        Err(HistoryError::AlreadyStarted { .. })
    ));
}

#[test]
#[allow(deprecated)]
fn terminate_if_running_cannot_be_combined_with_a_conflict_policy() {
    let mut request = start_request("order-1");
    request.workflow_id_reuse_policy = Reuse::TerminateIfRunning as i32;
    request.workflow_id_conflict_policy = Conflict::UseExisting as i32;
    assert!(matches!(
        TestEnv::try_start(request),
        Err(HistoryError::InvalidArgument(_))
    ));
}
