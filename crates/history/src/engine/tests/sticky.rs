//! Sticky execution: the next workflow task goes to the worker that has the workflow
//! cached, and falls back to the normal queue when that worker is gone or slow.

use super::{QUEUE, TestEnv, secs, start_request};
use chronicle_api::enums::v1::{EventType as E, TimeoutType};
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::taskqueue::v1::{StickyExecutionAttributes, TaskQueue};
use chronicle_api::workflowservice::RespondWorkflowTaskCompletedRequest;
use chronicle_common::{QueueKind, time};

const STICKY: &str = "worker-1-sticky";

/// A run whose worker keeps it cached on `STICKY`; `polled` says whether that worker polls.
fn sticky_run(polled: bool) -> TestEnv {
    let mut env = TestEnv::start(start_request("order-1"));
    if polled {
        env.polled_sticky.push(STICKY.into());
    }
    let wft = env.poll_workflow_task();
    let request = RespondWorkflowTaskCompletedRequest {
        sticky_attributes: Some(StickyExecutionAttributes {
            worker_task_queue: Some(TaskQueue {
                name: STICKY.into(),
                ..Default::default()
            }),
            schedule_to_start_timeout: Some(time::duration(secs(5))),
        }),
        ..Default::default()
    };
    env.complete_with(&wft, vec![], vec![], request).unwrap();
    env.new_events();
    env
}

fn queue_of_next_task(env: &TestEnv) -> String {
    let tasks = env.queued(QueueKind::Workflow);
    assert_eq!(tasks.len(), 1);
    tasks[0].task_queue.clone()
}

#[test]
fn the_next_task_goes_to_the_sticky_worker_that_polls() {
    let mut env = sticky_run(true);
    env.signal("next", "").unwrap();
    assert_eq!(queue_of_next_task(&env), STICKY);
    let wft = env.poll_workflow_task();
    assert_eq!(wft.task_queue, STICKY);
}

#[test]
fn a_sticky_queue_nobody_polls_is_passed_over_at_once() {
    let mut env = sticky_run(false);
    env.signal("next", "").unwrap();
    assert_eq!(queue_of_next_task(&env), QUEUE);
}

#[test]
fn a_sticky_task_not_picked_up_in_time_moves_to_the_normal_queue() {
    let mut env = sticky_run(true);
    env.signal("next", "").unwrap();
    env.new_events();
    env.advance(secs(5));
    assert_eq!(
        env.new_events(),
        [E::WorkflowTaskTimedOut, E::WorkflowTaskScheduled]
    );
    let A::WorkflowTaskTimedOutEventAttributes(timed_out) =
        super::find(&env.history, E::WorkflowTaskTimedOut)
    else {
        unreachable!()
    };
    assert_eq!(timed_out.timeout_type, TimeoutType::ScheduleToStart as i32);
    assert_eq!(queue_of_next_task(&env), QUEUE);
    assert!(env.state.info().sticky_task_queue.is_empty());
}

#[test]
fn a_failed_task_forgets_the_sticky_worker() {
    let mut env = sticky_run(true);
    env.signal("next", "").unwrap();
    let wft = env.poll_workflow_task();
    env.fail_workflow_task(&wft);
    assert_eq!(
        queue_of_next_task(&env),
        QUEUE,
        "the full history goes to any worker"
    );
}
