//! Activities: dispatch, results, server-side retries, heartbeats and cancellation.

use super::{QUEUE, TestEnv, command, payloads, secs, start_request};
use crate::engine::activity::ActivityResponse;
use crate::engine::timer::Timer;
use chronicle_api::command::v1::{
    RequestCancelActivityTaskCommandAttributes, ScheduleActivityTaskCommandAttributes,
    command::Attributes as C,
};
use chronicle_api::common::v1::{ActivityType, RetryPolicy};
use chronicle_api::enums::v1::{EventType as E, RetryState};
use chronicle_api::failure::v1::{ApplicationFailureInfo, Failure, failure::FailureInfo};
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::taskqueue::v1::TaskQueue;
use chronicle_common::QueueKind;

pub(super) fn schedule(activity_id: &str, retry: Option<RetryPolicy>) -> C {
    C::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
        activity_id: activity_id.into(),
        activity_type: Some(ActivityType {
            name: "charge".into(),
        }),
        task_queue: Some(TaskQueue {
            name: QUEUE.into(),
            ..Default::default()
        }),
        start_to_close_timeout: Some(chronicle_common::time::duration(secs(10))),
        input: payloads("card"),
        retry_policy: retry,
        ..Default::default()
    })
}

pub(super) fn retry(maximum_attempts: i32) -> Option<RetryPolicy> {
    Some(RetryPolicy {
        initial_interval: Some(chronicle_common::time::duration(secs(1))),
        backoff_coefficient: 2.0,
        maximum_attempts,
        ..Default::default()
    })
}

/// A run whose first workflow task scheduled `attributes`.
pub(super) fn with_activity(attributes: C) -> TestEnv {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![command(attributes)]).unwrap();
    env.new_events();
    env
}

pub(super) fn failure(message: &str, non_retryable: bool) -> ActivityResponse {
    ActivityResponse::Failed {
        failure: Some(Box::new(Failure {
            message: message.into(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    non_retryable,
                    ..Default::default()
                },
            )),
            ..Default::default()
        })),
        last_heartbeat_details: None,
    }
}

#[test]
fn a_scheduled_activity_is_dispatched_and_its_result_wakes_the_workflow() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![command(schedule("charge-1", None))])
        .unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::WorkflowExecutionStarted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::ActivityTaskScheduled
        ]
    );
    let tasks = env.queued(QueueKind::Activity);
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_queue, QUEUE);

    let ai = env.poll_activity();
    assert!(env.queued(QueueKind::Activity).is_empty());
    // The started event is written only when the attempt ends.
    assert!(env.new_events().is_empty());
    env.respond_activity(&ai, ActivityResponse::Completed(payloads("paid")))
        .unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::ActivityTaskStarted,
            E::ActivityTaskCompleted,
            E::WorkflowTaskScheduled
        ]
    );
    assert!(env.state.activities.is_empty());
    assert_eq!(env.queued(QueueKind::Workflow).len(), 1);
}

#[test]
fn a_failed_attempt_is_retried_after_its_backoff_and_leaves_no_event() {
    let mut env = with_activity(schedule("charge-1", retry(3)));
    let ai = env.poll_activity();
    env.respond_activity(&ai, failure("declined", false))
        .unwrap();
    assert!(
        env.new_events().is_empty(),
        "retries leave no trace in history"
    );
    let retry_at = env.armed(|t| matches!(t, Timer::ActivityRetry(_)));
    assert_eq!(retry_at, Some(env.now + secs(1)));
    assert!(env.queued(QueueKind::Activity).is_empty());

    env.advance(secs(1));
    let second = env.poll_activity();
    assert_eq!(second.attempt, 2);
    assert_eq!(
        second.last_failure.as_ref().map(|f| f.message.as_str()),
        Some("declined")
    );
}

#[test]
fn retries_stop_at_the_maximum_attempts_and_the_last_failure_is_recorded() {
    let mut env = with_activity(schedule("charge-1", retry(2)));
    let first = env.poll_activity();
    env.respond_activity(&first, failure("declined", false))
        .unwrap();
    env.advance(secs(1));
    let second = env.poll_activity();
    env.respond_activity(&second, failure("declined again", false))
        .unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::ActivityTaskStarted,
            E::ActivityTaskFailed,
            E::WorkflowTaskScheduled
        ]
    );
    let A::ActivityTaskFailedEventAttributes(failed) =
        super::find(&env.history, E::ActivityTaskFailed)
    else {
        unreachable!()
    };
    assert_eq!(
        failed.retry_state,
        RetryState::MaximumAttemptsReached as i32
    );
    assert_eq!(failed.failure.as_ref().unwrap().message, "declined again");
    let A::ActivityTaskStartedEventAttributes(started) =
        super::find(&env.history, E::ActivityTaskStarted)
    else {
        unreachable!()
    };
    assert_eq!(started.attempt, 2);
}

#[test]
fn a_non_retryable_failure_ends_the_activity_at_once() {
    let mut env = with_activity(schedule("charge-1", retry(10)));
    let ai = env.poll_activity();
    env.respond_activity(&ai, failure("card stolen", true))
        .unwrap();
    let A::ActivityTaskFailedEventAttributes(failed) =
        super::find(&env.history, E::ActivityTaskFailed)
    else {
        unreachable!()
    };
    assert_eq!(failed.retry_state, RetryState::NonRetryableFailure as i32);
}

#[test]
fn heartbeat_details_are_handed_to_the_next_attempt() {
    let mut env = with_activity(schedule("charge-1", retry(3)));
    let ai = env.poll_activity();
    assert!(!env.heartbeat(&ai, payloads("page 7")).unwrap());
    env.respond_activity(&ai, failure("lost connection", false))
        .unwrap();
    env.advance(secs(1));
    let second = env.poll_activity();
    assert_eq!(second.heartbeat_details, payloads("page 7"));
}

/// A started attempt whose workflow then asks for its cancellation.
fn running_then_cancel_requested() -> (TestEnv, crate::engine::state::ActivityInfo) {
    let mut env = with_activity(schedule("charge-1", retry(0)));
    let ai = env.poll_activity();
    env.signal("wake", "").unwrap();
    let wft = env.poll_workflow_task();
    let cancel =
        C::RequestCancelActivityTaskCommandAttributes(RequestCancelActivityTaskCommandAttributes {
            scheduled_event_id: ai.scheduled_event_id,
        });
    env.complete(&wft, vec![command(cancel)]).unwrap();
    (env, ai)
}

#[test]
fn a_cancel_request_reaches_the_running_attempt_through_its_heartbeat() {
    let (mut env, ai) = running_then_cancel_requested();
    assert_eq!(
        env.new_events().last(),
        Some(&E::ActivityTaskCancelRequested)
    );
    assert!(env.heartbeat(&ai, None).unwrap(), "the worker learns of it");
    env.respond_activity(&ai, ActivityResponse::Canceled(payloads("refunded")))
        .unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::ActivityTaskStarted,
            E::ActivityTaskCanceled,
            E::WorkflowTaskScheduled
        ]
    );
}

#[test]
fn a_cancel_requested_activity_is_not_retried() {
    let (mut env, ai) = running_then_cancel_requested();
    env.new_events();
    env.respond_activity(&ai, failure("gave up", false))
        .unwrap();
    assert!(
        env.new_events().contains(&E::ActivityTaskFailed),
        "a failure after a cancel request is final"
    );
    assert!(
        env.armed(|t| matches!(t, Timer::ActivityRetry(_)))
            .is_none()
    );
}

#[test]
fn an_activity_no_worker_started_is_canceled_at_once() {
    let mut env = with_activity(schedule("charge-1", None));
    let scheduled_event_id = *env.state.activities.keys().next().unwrap();
    env.signal("wake", "").unwrap();
    let wft = env.poll_workflow_task();
    env.new_events();
    let cancel =
        C::RequestCancelActivityTaskCommandAttributes(RequestCancelActivityTaskCommandAttributes {
            scheduled_event_id,
        });
    env.complete(&wft, vec![command(cancel)]).unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::WorkflowTaskCompleted,
            E::ActivityTaskCancelRequested,
            E::ActivityTaskCanceled,
            E::WorkflowTaskScheduled
        ]
    );
    assert!(
        env.queued(QueueKind::Activity).is_empty(),
        "its backlog row is withdrawn"
    );
    assert!(env.state.activities.is_empty());
}

#[test]
fn a_report_for_an_attempt_that_is_over_is_refused() {
    let mut env = with_activity(schedule("charge-1", retry(3)));
    let first = env.poll_activity();
    env.respond_activity(&first, failure("declined", false))
        .unwrap();
    env.advance(secs(1));
    env.poll_activity();
    let late = env.respond_activity(&first, ActivityResponse::Completed(None));
    assert!(matches!(late, Err(crate::HistoryError::TaskNotFound(_))));
}

fn eager(activity_id: &str, queue: &str) -> C {
    let C::ScheduleActivityTaskCommandAttributes(mut a) = schedule(activity_id, None) else {
        unreachable!("schedule builds a ScheduleActivityTask command")
    };
    a.request_eager_execution = true;
    a.task_queue = Some(TaskQueue {
        name: queue.into(),
        ..Default::default()
    });
    C::ScheduleActivityTaskCommandAttributes(a)
}

#[test]
fn an_activity_asked_for_eagerly_on_the_workers_queue_starts_in_the_completion() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    let started = env
        .complete(
            &wft,
            vec![
                command(eager("mine", QUEUE)),
                command(eager("elsewhere", "other")),
            ],
        )
        .unwrap();
    assert_eq!(started.len(), 1, "only the worker's own queue runs eagerly");
    assert_eq!(started[0].activity_id, "mine");
    assert!(started[0].is_started());
    let queued = env.queued(QueueKind::Activity);
    assert_eq!(queued.len(), 1, "the other goes to its queue: {queued:?}");
    assert_eq!(queued[0].task_queue, "other");
}

#[test]
fn a_completion_that_closes_the_run_starts_no_eager_activity() {
    use chronicle_api::command::v1::CompleteWorkflowExecutionCommandAttributes;
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    let complete = C::CompleteWorkflowExecutionCommandAttributes(
        CompleteWorkflowExecutionCommandAttributes::default(),
    );
    let started = env
        .complete(&wft, vec![command(eager("mine", QUEUE)), command(complete)])
        .unwrap();
    assert!(started.is_empty());
}
