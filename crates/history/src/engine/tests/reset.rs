//! Reset: a new run from a prefix of another's history, the reset point's task failed,
//! pending work re-armed and later signals applied again.

use super::{TestEnv, command, secs, start_request};
use crate::engine::reset::{ResetPoint, reapplies_signals, reset_point, reset_run};
use crate::engine::timer::Timer;
use chronicle_api::command::v1::{StartTimerCommandAttributes, command::Attributes as C};
use chronicle_api::enums::v1::{EventType as E, ResetReapplyExcludeType, WorkflowTaskFailedCause};
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::workflowservice::ResetWorkflowExecutionRequest;
use chronicle_common::{QueueKind, time};

/// A run that started a timer in its first task, then took two signals, the first handled
/// by a second task:
/// 1 started, 2-4 task, 5 timer started, 6 signal, 7-9 task, 10 signal, 11 task scheduled.
fn base() -> TestEnv {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    let timer = C::StartTimerCommandAttributes(StartTimerCommandAttributes {
        timer_id: "deadline".into(),
        start_to_fire_timeout: Some(time::duration(secs(60))),
    });
    env.complete(&wft, vec![command(timer)]).unwrap();
    env.signal("first", "").unwrap();
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![]).unwrap();
    env.signal("second", "").unwrap();
    assert_eq!(env.history.len(), 11);
    env
}

fn reset_to(base: &TestEnv, finish_event_id: i64, r: &ResetWorkflowExecutionRequest) -> TestEnv {
    let point = &base.history[finish_event_id as usize - 1];
    let (scheduled, started) = reset_point(point).expect("a workflow task event");
    let later = if reapplies_signals(r) {
        base.history[started as usize..].to_vec()
    } else {
        Vec::new()
    };
    let point = ResetPoint {
        base: &base.state,
        kept: base.history[..started as usize].to_vec(),
        workflow_task: (scheduled, started),
        request_id: "reset-1".into(),
        current_run_id: base.key.run_id.clone(),
        later,
    };
    let change = reset_run(base.context(), point, r);
    TestEnv::created(change, base.ids.clone(), base.limits.clone())
}

fn signal_names(env: &TestEnv) -> Vec<String> {
    env.history
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(A::WorkflowExecutionSignaledEventAttributes(s)) => Some(s.signal_name.clone()),
            _ => None,
        })
        .collect()
}

fn request() -> ResetWorkflowExecutionRequest {
    ResetWorkflowExecutionRequest {
        reason: "bad deploy".into(),
        ..Default::default()
    }
}

#[test]
fn reset_keeps_the_prefix_fails_the_point_and_applies_later_signals_again() {
    let base = base();
    let mut reset = reset_to(&base, 4, &request());
    assert_eq!(
        reset.new_events(),
        [
            E::WorkflowExecutionStarted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskFailed,
            E::WorkflowExecutionSignaled,
            E::WorkflowExecutionSignaled,
            E::WorkflowTaskScheduled
        ]
    );
    let A::WorkflowTaskFailedEventAttributes(failed) =
        &reset.history[3].attributes.clone().unwrap()
    else {
        unreachable!()
    };
    assert_eq!(failed.cause, WorkflowTaskFailedCause::ResetWorkflow as i32);
    assert_eq!(failed.base_run_id, base.key.run_id);
    assert_eq!(failed.new_run_id, reset.key.run_id);
    assert_eq!(signal_names(&reset), ["first", "second"]);
    assert!(
        reset.state.timers.is_empty(),
        "the timer was started after the point"
    );
    assert_eq!(reset.queued(QueueKind::Workflow).len(), 1);
    let current = reset.current.as_ref().unwrap();
    assert!(current.running && current.run_id == reset.key.run_id);
}

#[test]
fn work_pending_at_the_reset_point_is_armed_again() {
    let base = base();
    let reset = reset_to(&base, 9, &request());
    assert_eq!(
        reset.history.len(),
        8 + 1 + 1 + 1,
        "kept, failed, second signal, task"
    );
    assert_eq!(signal_names(&reset), ["first", "second"]);
    let timer = reset
        .state
        .timers
        .get("deadline")
        .expect("the timer is pending again");
    let at = reset.armed(|t| matches!(t, Timer::User { started_event_id } if *started_event_id == timer.started_event_id));
    assert_eq!(
        at,
        Some(TestEnv::epoch() + secs(60)),
        "it keeps its deadline"
    );
}

#[test]
fn signals_excluded_from_reapply_stay_behind() {
    let base = base();
    let r = ResetWorkflowExecutionRequest {
        reset_reapply_exclude_types: vec![ResetReapplyExcludeType::Signal as i32],
        ..request()
    };
    let reset = reset_to(&base, 4, &r);
    assert!(signal_names(&reset).is_empty());
}
