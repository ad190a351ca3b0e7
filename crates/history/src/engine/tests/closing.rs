//! How runs close — completion, cancellation, termination, continue-as-new — and the next
//! run of a chain: the workflow's retry policy and its cron schedule.

use super::activities::{schedule, with_activity};
use super::{TestEnv, command, payloads, secs, start_request};
use crate::engine::timer::Timer;
use chronicle_api::command::v1::{
    CancelWorkflowExecutionCommandAttributes, CompleteWorkflowExecutionCommandAttributes,
    ContinueAsNewWorkflowExecutionCommandAttributes, FailWorkflowExecutionCommandAttributes,
    command::Attributes as C,
};
use chronicle_api::common::v1::{RetryPolicy, WorkflowType};
use chronicle_api::enums::v1::{
    ContinueAsNewInitiator, EventType as E, RetryState, WorkflowExecutionStatus as Status,
    WorkflowTaskFailedCause,
};
use chronicle_api::failure::v1::Failure;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_common::{QueueKind, time};

fn started_of(
    env: &TestEnv,
) -> chronicle_api::history::v1::WorkflowExecutionStartedEventAttributes {
    match super::find(&env.history, E::WorkflowExecutionStarted) {
        A::WorkflowExecutionStartedEventAttributes(a) => a.clone(),
        _ => unreachable!(),
    }
}

fn fail(message: &str) -> C {
    C::FailWorkflowExecutionCommandAttributes(FailWorkflowExecutionCommandAttributes {
        failure: Some(Failure {
            message: message.into(),
            ..Default::default()
        }),
    })
}

fn complete(result: &str) -> C {
    C::CompleteWorkflowExecutionCommandAttributes(CompleteWorkflowExecutionCommandAttributes {
        result: payloads(result),
    })
}

#[test]
fn completing_closes_the_run_and_frees_the_workflow_id() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![command(complete("shipped"))])
        .unwrap();
    assert_eq!(
        env.new_events().last(),
        Some(&E::WorkflowExecutionCompleted)
    );
    assert_eq!(env.state.info().status, Status::Completed as i32);
    let current = env.current.as_ref().unwrap();
    assert!(!current.running);
    assert_eq!(current.status, Status::Completed as i32);
    assert!(
        env.visibility_writes >= 2,
        "start and close are both listed"
    );
    assert!(env.next_run.is_none());
}

#[test]
fn continue_as_new_closes_the_run_and_starts_the_next_with_the_new_input() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    let continue_as_new = C::ContinueAsNewWorkflowExecutionCommandAttributes(
        ContinueAsNewWorkflowExecutionCommandAttributes {
            workflow_type: Some(WorkflowType {
                name: "Checkout".into(),
            }),
            input: payloads("page 2"),
            ..Default::default()
        },
    );
    env.complete(&wft, vec![command(continue_as_new)]).unwrap();
    let A::WorkflowExecutionContinuedAsNewEventAttributes(closed) = env.last_event().clone() else {
        panic!("the run closes as continued-as-new")
    };
    assert_eq!(env.state.info().status, Status::ContinuedAsNew as i32);

    let mut next = env.take_next_run();
    assert_eq!(closed.new_execution_run_id, next.key.run_id);
    let started = started_of(&next);
    assert_eq!(started.continued_execution_run_id, env.key.run_id);
    assert_eq!(started.initiator, ContinueAsNewInitiator::Workflow as i32);
    assert_eq!(started.input, payloads("page 2"));
    assert_eq!(started.first_execution_run_id, env.key.run_id, "one chain");
    let current = next.current.as_ref().unwrap();
    assert!(current.running && current.run_id == next.key.run_id);
    assert_eq!(
        next.new_events(),
        [E::WorkflowExecutionStarted, E::WorkflowTaskScheduled]
    );
}

#[test]
fn a_cancel_request_reaches_the_workflow_which_then_cancels_itself() {
    let mut env = with_activity(schedule("charge-1", None));
    let asked = env.change(|c| Ok(c.request_cancellation("customer left", "client", None)));
    assert!(asked.unwrap());
    assert_eq!(
        env.new_events(),
        [
            E::WorkflowExecutionCancelRequested,
            E::WorkflowTaskScheduled
        ]
    );
    let again = env.change(|c| Ok(c.request_cancellation("again", "client", None)));
    assert!(!again.unwrap(), "a repeated request changes nothing");

    let wft = env.poll_workflow_task();
    let cancel =
        C::CancelWorkflowExecutionCommandAttributes(CancelWorkflowExecutionCommandAttributes {
            details: None,
        });
    env.complete(&wft, vec![command(cancel)]).unwrap();
    assert_eq!(env.new_events().last(), Some(&E::WorkflowExecutionCanceled));
    assert_eq!(env.state.info().status, Status::Canceled as i32);
    assert!(
        env.queued(QueueKind::Activity).is_empty(),
        "work nobody started is withdrawn"
    );
}

#[test]
fn terminating_fails_the_running_task_and_writes_what_waited_behind_it() {
    let mut env = TestEnv::start(start_request("order-1"));
    env.poll_workflow_task();
    env.signal("ignored", "").unwrap();
    env.new_events();
    env.change(|c| {
        c.terminate("operator", None, "admin");
        Ok(())
    })
    .unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::WorkflowTaskFailed,
            E::WorkflowExecutionSignaled,
            E::WorkflowExecutionTerminated
        ]
    );
    assert_eq!(
        super::workflow_task_failure_cause(&env.history),
        WorkflowTaskFailedCause::ForceCloseCommand
    );
    assert_eq!(env.state.info().status, Status::Terminated as i32);
    assert!(env.buffered_types().is_empty());
}

#[test]
fn a_failed_run_is_retried_as_its_policy_says_after_the_backoff() {
    let mut request = start_request("order-1");
    request.retry_policy = Some(RetryPolicy {
        initial_interval: Some(time::duration(secs(2))),
        backoff_coefficient: 2.0,
        maximum_attempts: 2,
        ..Default::default()
    });
    let mut env = TestEnv::start(request);
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![command(fail("out of stock"))])
        .unwrap();
    let A::WorkflowExecutionFailedEventAttributes(failed) = env.last_event().clone() else {
        panic!("the run fails")
    };
    assert_eq!(failed.retry_state, RetryState::InProgress as i32);

    let mut retry = env.take_next_run();
    assert_eq!(failed.new_execution_run_id, retry.key.run_id);
    let started = started_of(&retry);
    assert_eq!(started.attempt, 2);
    assert_eq!(started.initiator, ContinueAsNewInitiator::Retry as i32);
    assert_eq!(
        started
            .continued_failure
            .as_ref()
            .map(|f| f.message.as_str()),
        Some("out of stock")
    );
    assert!(
        retry.queued(QueueKind::Workflow).is_empty(),
        "it waits for its backoff"
    );
    retry.advance(secs(2));
    assert_eq!(retry.queued(QueueKind::Workflow).len(), 1);

    let wft = retry.poll_workflow_task();
    retry
        .complete(&wft, vec![command(fail("still out"))])
        .unwrap();
    let A::WorkflowExecutionFailedEventAttributes(last) = retry.last_event() else {
        panic!("the retry fails")
    };
    assert_eq!(last.retry_state, RetryState::MaximumAttemptsReached as i32);
    assert!(retry.next_run.is_none());
}

#[test]
fn a_cron_run_waits_for_its_schedule_and_hands_its_result_to_the_next() {
    let mut request = start_request("report");
    request.cron_schedule = "* * * * *".into();
    let mut env = TestEnv::start(request);
    // The epoch is on a minute boundary: the first run waits a whole minute.
    assert_eq!(
        env.armed(|t| *t == Timer::WorkflowBackoff),
        Some(env.now + secs(60))
    );
    assert!(env.queued(QueueKind::Workflow).is_empty());
    env.advance(secs(60));
    let wft = env.poll_workflow_task();
    env.advance(secs(5));
    env.complete(&wft, vec![command(complete("report 1"))])
        .unwrap();

    let next = env.take_next_run();
    let started = started_of(&next);
    assert_eq!(
        started.initiator,
        ContinueAsNewInitiator::CronSchedule as i32
    );
    assert_eq!(started.last_completion_result, payloads("report 1"));
    assert_eq!(
        started.first_workflow_task_backoff,
        Some(time::duration(secs(55))),
        "the next run starts on the next minute"
    );
}

#[test]
fn a_closed_run_is_deleted_once_its_namespaces_retention_passed() {
    let kept_an_hour = crate::NamespaceRef {
        retention: Some(secs(3600)),
        ..super::namespace()
    };
    let mut env = TestEnv::start_in(&kept_an_hour, start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![command(complete("done"))]).unwrap();
    env.advance(secs(3599));
    assert!(env.cross_run.is_empty());
    env.advance(secs(1));
    assert_eq!(env.cross_run, [Timer::DeleteRun]);
}

#[test]
fn a_run_continued_as_new_keeps_its_retention_and_a_namespace_without_one_keeps_runs() {
    let kept_an_hour = crate::NamespaceRef {
        retention: Some(secs(3600)),
        ..super::namespace()
    };
    let mut env = TestEnv::start_in(&kept_an_hour, start_request("order-1"));
    let wft = env.poll_workflow_task();
    let again = C::ContinueAsNewWorkflowExecutionCommandAttributes(
        ContinueAsNewWorkflowExecutionCommandAttributes {
            workflow_type: Some(WorkflowType { name: "wf".into() }),
            ..Default::default()
        },
    );
    env.complete(&wft, vec![command(again)]).unwrap();
    let next = env.take_next_run();
    assert_eq!(
        next.state.info().retention,
        Some(time::duration(secs(3600)))
    );

    let mut forever = TestEnv::start(start_request("order-2"));
    let wft = forever.poll_workflow_task();
    forever
        .complete(&wft, vec![command(complete("done"))])
        .unwrap();
    forever.advance(secs(10 * 365 * 24 * 3600));
    assert!(forever.cross_run.is_empty());
}
