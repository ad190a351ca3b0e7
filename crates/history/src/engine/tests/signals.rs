//! Signals: delivery, deduplication, buffering behind a running workflow task, and the
//! per-run limit.

use super::{TestEnv, command, start_request};
use chronicle_api::command::v1::{
    CompleteWorkflowExecutionCommandAttributes, command::Attributes as C,
};
use chronicle_api::enums::v1::{EventType as E, WorkflowTaskFailedCause};
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_common::QueueKind;

/// A run whose first workflow task completed with nothing more to do.
fn idle() -> TestEnv {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![]).unwrap();
    env.new_events();
    env
}

fn complete() -> C {
    C::CompleteWorkflowExecutionCommandAttributes(CompleteWorkflowExecutionCommandAttributes {
        result: None,
    })
}

#[test]
fn a_signal_to_an_idle_run_schedules_a_workflow_task() {
    let mut env = idle();
    env.signal("approve", "").unwrap();
    assert_eq!(
        env.new_events(),
        [E::WorkflowExecutionSignaled, E::WorkflowTaskScheduled]
    );
    assert_eq!(env.queued(QueueKind::Workflow).len(), 1);
    assert_eq!(env.state.info().signal_count, 1);
}

#[test]
fn signals_while_a_task_runs_wait_in_the_buffer_and_follow_its_completion() {
    let mut env = idle();
    env.signal("approve", "").unwrap();
    let wft = env.poll_workflow_task();
    env.new_events();
    env.signal("ship", "").unwrap();
    env.signal("notify", "").unwrap();
    assert!(
        env.new_events().is_empty(),
        "a started task is followed by its own end"
    );
    assert_eq!(
        env.buffered_types(),
        [E::WorkflowExecutionSignaled, E::WorkflowExecutionSignaled]
    );
    env.complete(&wft, vec![]).unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionSignaled,
            E::WorkflowExecutionSignaled,
            E::WorkflowTaskScheduled
        ]
    );
    assert!(env.buffered_types().is_empty());
    let names: Vec<_> = env
        .history
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(A::WorkflowExecutionSignaledEventAttributes(s)) => Some(s.signal_name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        ["approve", "ship", "notify"],
        "arrival order is kept"
    );
}

#[test]
fn a_signal_repeated_with_its_request_id_is_applied_once() {
    let mut env = idle();
    env.signal("approve", "req-1").unwrap();
    env.signal("approve", "req-1").unwrap();
    assert_eq!(
        env.new_events(),
        [E::WorkflowExecutionSignaled, E::WorkflowTaskScheduled]
    );
    assert_eq!(env.state.info().signal_count, 1);
}

#[test]
fn closing_while_signals_wait_fails_the_task_so_the_workflow_sees_them() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.signal("cancel-order", "").unwrap();
    env.new_events();
    env.complete(&wft, vec![command(complete())]).unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::WorkflowTaskFailed,
            E::WorkflowExecutionSignaled,
            E::WorkflowTaskScheduled
        ]
    );
    assert_eq!(
        super::workflow_task_failure_cause(&env.history),
        WorkflowTaskFailedCause::UnhandledCommand
    );
    assert!(env.state.is_running());
}

#[test]
fn signals_stop_at_the_per_run_limit() {
    let mut env = idle();
    env.limits.signals_per_execution = 2;
    env.signal("one", "").unwrap();
    env.signal("two", "").unwrap();
    let refused = env.signal("three", "");
    assert!(matches!(
        refused,
        Err(crate::HistoryError::InvalidArgument(_))
    ));
    assert_eq!(env.state.info().signal_count, 2);
}

#[test]
fn a_closed_run_takes_no_signal() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![command(complete())]).unwrap();
    let refused = env.signal("late", "");
    assert!(matches!(
        refused,
        Err(crate::HistoryError::WorkflowCompleted)
    ));
}

fn suggests_continue_as_new(env: &TestEnv) -> bool {
    let started = env.history.iter().rev().find_map(|e| match &e.attributes {
        Some(A::WorkflowTaskStartedEventAttributes(a)) => Some(a.suggest_continue_as_new),
        _ => None,
    });
    started.expect("a started workflow task")
}

#[test]
fn a_workflow_task_suggests_continue_as_new_past_the_configured_history_length() {
    for (limit, suggested) in [(4, true), (4096, false)] {
        let mut env = TestEnv::start(start_request("order-1"));
        env.limits.suggest_continue_as_new_events = limit;
        for i in 0..3 {
            env.signal("ping", &format!("ping-{i}")).unwrap();
        }
        env.poll_workflow_task();
        assert_eq!(suggests_continue_as_new(&env), suggested, "limit {limit}");
    }
}
