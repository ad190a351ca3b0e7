//! The four activity timeouts, the workflow task timeout and the run timeout.

use super::activities::{retry, schedule, with_activity};
use super::{TestEnv, secs, start_request};
use chronicle_api::command::v1::command::Attributes as C;
use chronicle_api::enums::v1::{EventType as E, TimeoutType, WorkflowExecutionStatus};
use chronicle_api::failure::v1::failure::FailureInfo;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_common::{QueueKind, time};

fn timed_out_as(env: &TestEnv) -> TimeoutType {
    let A::ActivityTaskTimedOutEventAttributes(a) =
        super::find(&env.history, E::ActivityTaskTimedOut)
    else {
        unreachable!()
    };
    match a.failure.as_ref().and_then(|f| f.failure_info.as_ref()) {
        Some(FailureInfo::TimeoutFailureInfo(t)) => TimeoutType::try_from(t.timeout_type).unwrap(),
        other => panic!("not a timeout failure: {other:?}"),
    }
}

fn with_timeouts(
    retry_policy: Option<chronicle_api::common::v1::RetryPolicy>,
    edit: impl FnOnce(&mut chronicle_api::command::v1::ScheduleActivityTaskCommandAttributes),
) -> TestEnv {
    let C::ScheduleActivityTaskCommandAttributes(mut a) = schedule("charge-1", retry_policy) else {
        unreachable!()
    };
    edit(&mut a);
    with_activity(C::ScheduleActivityTaskCommandAttributes(a))
}

#[test]
fn schedule_to_start_ends_an_attempt_nobody_polled_without_retry() {
    let mut env = with_timeouts(retry(0), |a| {
        a.schedule_to_start_timeout = Some(time::duration(secs(5)));
    });
    env.advance(secs(4));
    assert!(env.new_events().is_empty());
    env.advance(secs(1));
    assert_eq!(
        env.new_events(),
        [E::ActivityTaskTimedOut, E::WorkflowTaskScheduled]
    );
    assert_eq!(timed_out_as(&env), TimeoutType::ScheduleToStart);
    assert!(env.queued(QueueKind::Activity).is_empty());
}

#[test]
fn start_to_close_ends_the_attempt_and_the_policy_retries_it() {
    let mut env = with_timeouts(retry(0), |_| {});
    let first = env.poll_activity();
    env.advance(secs(10));
    assert!(
        env.new_events().is_empty(),
        "a retried attempt leaves no event"
    );
    env.advance(secs(1));
    let second = env.poll_activity();
    assert_eq!(second.attempt, first.attempt + 1);
}

#[test]
fn start_to_close_is_final_once_attempts_run_out() {
    let mut env = with_timeouts(retry(1), |_| {});
    env.poll_activity();
    env.advance(secs(10));
    assert_eq!(
        env.new_events(),
        [
            E::ActivityTaskStarted,
            E::ActivityTaskTimedOut,
            E::WorkflowTaskScheduled
        ]
    );
    assert_eq!(timed_out_as(&env), TimeoutType::StartToClose);
}

#[test]
fn schedule_to_close_bounds_every_attempt_together() {
    let mut env = with_timeouts(retry(0), |a| {
        a.schedule_to_close_timeout = Some(time::duration(secs(15)));
    });
    env.poll_activity();
    // Attempt 1 times out at 10 s; attempt 2 is dispatched at 11 s and nobody takes it.
    env.advance(secs(11));
    assert_eq!(env.queued(QueueKind::Activity).len(), 1);
    env.advance(secs(4));
    assert_eq!(
        env.new_events(),
        [E::ActivityTaskTimedOut, E::WorkflowTaskScheduled]
    );
    assert_eq!(timed_out_as(&env), TimeoutType::ScheduleToClose);
    assert!(env.queued(QueueKind::Activity).is_empty());
}

#[test]
fn heartbeats_keep_an_attempt_alive_and_a_missed_one_ends_it() {
    let mut env = with_timeouts(retry(1), |a| {
        a.start_to_close_timeout = Some(time::duration(secs(60)));
        a.heartbeat_timeout = Some(time::duration(secs(5)));
    });
    let ai = env.poll_activity();
    env.advance(secs(3));
    env.heartbeat(&ai, None).unwrap();
    env.advance(secs(3));
    env.heartbeat(&ai, None).unwrap();
    env.advance(secs(4));
    assert!(
        env.new_events().is_empty(),
        "each heartbeat pushed the deadline out"
    );
    env.advance(secs(1));
    assert_eq!(timed_out_as(&env), TimeoutType::Heartbeat);
}

#[test]
fn a_timed_out_workflow_task_is_retried_as_a_transient_attempt() {
    let mut env = TestEnv::start(start_request("order-1"));
    env.poll_workflow_task();
    env.new_events();
    env.advance(secs(10));
    assert_eq!(env.new_events(), [E::WorkflowTaskTimedOut]);
    let wft = env.state.workflow_task.clone().unwrap();
    assert_eq!(wft.attempt, 2);
    assert!(
        wft.is_transient(),
        "later attempts are not written until one completes"
    );
    assert_eq!(env.queued(QueueKind::Workflow).len(), 1);

    let second = env.poll_workflow_task();
    assert!(env.new_events().is_empty());
    env.complete(&second, vec![]).unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted
        ]
    );
    let A::WorkflowTaskScheduledEventAttributes(scheduled) = &env.history[env.history.len() - 3]
        .attributes
        .clone()
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(scheduled.attempt, 2);
}

#[test]
fn a_failed_workflow_task_is_retried_and_new_events_make_it_ordinary_again() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.fail_workflow_task(&wft);
    assert_eq!(env.state.workflow_task.as_ref().unwrap().attempt, 2);
    env.signal("nudge", "").unwrap();
    let task = env.state.workflow_task.clone().unwrap();
    assert_eq!(
        task.attempt, 1,
        "an event behind a transient task makes it a first attempt"
    );
    assert!(env.event_types().ends_with(&[
        E::WorkflowTaskFailed,
        E::WorkflowExecutionSignaled,
        E::WorkflowTaskScheduled
    ]));
    assert_eq!(
        env.queued(QueueKind::Workflow).len(),
        1,
        "the old dispatch is withdrawn"
    );
}

#[test]
fn the_run_timeout_fails_the_running_task_and_closes_the_run() {
    let mut request = start_request("order-1");
    request.workflow_run_timeout = Some(time::duration(secs(30)));
    request.workflow_task_timeout = Some(time::duration(secs(20)));
    let mut env = TestEnv::start(request);
    env.advance(secs(15));
    env.poll_workflow_task();
    env.new_events();
    env.advance(secs(15));
    assert_eq!(
        env.new_events(),
        [E::WorkflowTaskFailed, E::WorkflowExecutionTimedOut]
    );
    assert_eq!(
        env.state.info().status,
        WorkflowExecutionStatus::TimedOut as i32
    );
    assert!(env.backlog.is_empty(), "nothing is left for workers");
    assert!(!env.current.as_ref().unwrap().running);
}
