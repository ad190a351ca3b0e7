//! Queries and updates: where a query waits for a worker, which closed runs refuse it, and
//! how a worker's update messages become events and answers.

use super::{TestEnv, command, payloads, start_request};
use crate::engine::effects::Progress;
use crate::engine::queries::{Route, TaskState, rejected};
use crate::engine::updates::tests::request;
use crate::engine::updates::{PendingUpdates, any};
use chronicle_api::command::v1::{
    CompleteWorkflowExecutionCommandAttributes, ProtocolMessageCommandAttributes,
    command::Attributes as C,
};
use chronicle_api::enums::v1::{EventType as E, QueryRejectCondition, WorkflowExecutionStatus};
use chronicle_api::failure::v1::Failure;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_api::protocol::v1::Message;
use chronicle_api::update::v1::{Acceptance, Outcome, Rejection, Response, outcome};
use chronicle_common::QueueKind;

/// An idle run with one update admitted for it, and the workflow task that carries it, as
/// the service's admission schedules it.
fn with_update(update_id: &str) -> (TestEnv, crate::engine::state::WorkflowTaskInfo) {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![]).unwrap();
    env.updates = PendingUpdates {
        requests: [(update_id.to_owned(), request(update_id, 8))].into(),
        undecided: vec![update_id.to_owned()],
    };
    env.change(|c| {
        c.schedule_workflow_task_if_needed();
        Ok(())
    })
    .unwrap();
    let wft = env.poll_workflow_task();
    env.new_events();
    (env, wft)
}

fn message(update_id: &str, suffix: &str, body: chronicle_api::wkt::Any) -> Message {
    Message {
        id: format!("{update_id}/{suffix}"),
        protocol_instance_id: update_id.into(),
        body: Some(body),
        ..Default::default()
    }
}

fn points_at(message_id: &str) -> chronicle_api::command::v1::Command {
    command(C::ProtocolMessageCommandAttributes(
        ProtocolMessageCommandAttributes {
            message_id: message_id.into(),
        },
    ))
}

#[test]
fn an_accepted_then_completed_update_is_recorded_and_announced_in_order() {
    let (mut env, wft) = with_update("u1");
    let accept = message(
        "u1",
        "accept",
        any(&Acceptance {
            accepted_request_message_id: "u1/request".into(),
            ..Default::default()
        }),
    );
    let outcome = Outcome {
        value: Some(outcome::Value::Success(payloads("approved").unwrap())),
    };
    let respond = message(
        "u1",
        "respond",
        any(&Response {
            meta: None,
            outcome: Some(outcome.clone()),
        }),
    );
    env.complete_with(
        &wft,
        vec![points_at("u1/accept"), points_at("u1/respond")],
        vec![accept, respond],
        Default::default(),
    )
    .unwrap();
    assert_eq!(
        env.new_events(),
        [
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionUpdateAccepted,
            E::WorkflowExecutionUpdateCompleted
        ]
    );
    let A::WorkflowExecutionUpdateAcceptedEventAttributes(accepted) =
        super::find(&env.history, E::WorkflowExecutionUpdateAccepted)
    else {
        unreachable!()
    };
    assert!(
        accepted.accepted_request.is_some(),
        "the request is filled in from memory"
    );
    let record = &env.state.updates["u1"];
    assert!(record.accepted_event_id > 0 && record.completed_event_id > record.accepted_event_id);
    let progress: Vec<_> = env.announced.iter().map(|e| e.progress.clone()).collect();
    assert_eq!(
        progress,
        [Progress::Accepted, Progress::Completed(Box::new(outcome))]
    );
    assert!(
        env.queued(QueueKind::Workflow).is_empty(),
        "nothing is left undecided"
    );
}

#[test]
fn a_rejected_update_leaves_no_event_and_answers_with_its_failure() {
    let (mut env, wft) = with_update("u1");
    let reject = message(
        "u1",
        "reject",
        any(&Rejection {
            failure: Some(Failure {
                message: "not in this state".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    );
    env.complete_with(&wft, vec![], vec![reject], Default::default())
        .unwrap();
    assert_eq!(env.new_events(), [E::WorkflowTaskCompleted]);
    let [effect] = env.announced.as_slice() else {
        panic!("one answer")
    };
    let Progress::Completed(outcome) = &effect.progress else {
        panic!("the update is over")
    };
    assert!(matches!(
        &outcome.value,
        Some(outcome::Value::Failure(f)) if f.message == "not in this state"
    ));
}

#[test]
fn an_update_the_worker_did_not_decide_on_gets_another_task() {
    let (mut env, wft) = with_update("u1");
    env.complete(&wft, vec![]).unwrap();
    assert_eq!(
        env.new_events(),
        [E::WorkflowTaskCompleted, E::WorkflowTaskScheduled]
    );
}

#[test]
fn a_message_no_update_knows_fails_the_task() {
    let (mut env, wft) = with_update("u1");
    let refused = env.complete_with(
        &wft,
        vec![points_at("u9/accept")],
        vec![],
        Default::default(),
    );
    assert!(matches!(
        refused,
        Err(crate::HistoryError::BadCommand { .. })
    ));
}

#[test]
fn a_query_rides_with_the_pending_task_and_is_dispatched_when_none_comes() {
    let mut env = TestEnv::start(start_request("order-1"));
    let pending = TaskState::of(&env.state);
    assert_eq!(Route::Buffered.after(pending), Some(Route::Buffered));

    let wft = env.poll_workflow_task();
    let running = TaskState::of(&env.state);
    let with_task = Route::WithTask(wft.scheduled_event_id, wft.attempt);
    assert_eq!(
        with_task.after(running),
        None,
        "it waits for the task's answer"
    );

    // The task completed without answering and nothing more is pending.
    env.complete(&wft, vec![]).unwrap();
    let idle = TaskState::of(&env.state);
    assert_eq!(with_task.after(idle), Some(Route::Dispatched));
    assert_eq!(Route::Buffered.after(idle), Some(Route::Dispatched));
    assert_eq!(Route::Dispatched.after(idle), None);
}

#[test]
fn closed_runs_refuse_queries_as_the_reject_condition_says() {
    let mut env = TestEnv::start(start_request("order-1"));
    let not_open = QueryRejectCondition::NotOpen as i32;
    let not_clean = QueryRejectCondition::NotCompletedCleanly as i32;
    assert_eq!(rejected(&env.state, not_open), None);
    let wft = env.poll_workflow_task();
    let complete =
        C::CompleteWorkflowExecutionCommandAttributes(CompleteWorkflowExecutionCommandAttributes {
            result: None,
        });
    env.complete(&wft, vec![command(complete)]).unwrap();
    let completed = WorkflowExecutionStatus::Completed as i32;
    assert_eq!(rejected(&env.state, not_open), Some(completed));
    assert_eq!(rejected(&env.state, not_clean), None);
    assert_eq!(
        rejected(&env.state, QueryRejectCondition::None as i32),
        None
    );

    let mut terminated = TestEnv::start(start_request("order-2"));
    terminated
        .change(|c| {
            c.terminate("operator", None, "admin");
            Ok(())
        })
        .unwrap();
    let status = WorkflowExecutionStatus::Terminated as i32;
    assert_eq!(rejected(&terminated.state, not_clean), Some(status));
}
