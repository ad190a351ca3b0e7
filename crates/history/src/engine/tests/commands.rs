//! User timers and the rules a command batch is held to.

use super::{TestEnv, command, secs, start_request};
use crate::HistoryError;
use crate::engine::timer::Timer;
use chronicle_api::command::v1::{
    CancelTimerCommandAttributes, CompleteWorkflowExecutionCommandAttributes,
    RecordMarkerCommandAttributes, StartTimerCommandAttributes, command::Attributes as C,
};
use chronicle_api::enums::v1::{EventType as E, WorkflowTaskFailedCause};
use chronicle_common::time;

fn start_timer(id: &str, after: u64) -> C {
    C::StartTimerCommandAttributes(StartTimerCommandAttributes {
        timer_id: id.into(),
        start_to_fire_timeout: Some(time::duration(secs(after))),
    })
}

fn with_timer(id: &str, after: u64) -> TestEnv {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    env.complete(&wft, vec![command(start_timer(id, after))])
        .unwrap();
    env.new_events();
    env
}

#[test]
fn a_timer_fires_after_its_duration_and_wakes_the_workflow() {
    let mut env = with_timer("reminder", 30);
    assert_eq!(env.state.timers.len(), 1);
    env.advance(secs(29));
    assert!(env.new_events().is_empty());
    env.advance(secs(1));
    assert_eq!(env.new_events(), [E::TimerFired, E::WorkflowTaskScheduled]);
    assert!(env.state.timers.is_empty());
}

#[test]
fn a_zero_length_timer_fires_at_once() {
    let mut env = with_timer("yield", 0);
    env.advance(secs(0));
    assert_eq!(env.new_events(), [E::TimerFired, E::WorkflowTaskScheduled]);
}

#[test]
fn a_timer_without_a_duration_fails_the_task() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    let unset = C::StartTimerCommandAttributes(StartTimerCommandAttributes {
        timer_id: "t".into(),
        start_to_fire_timeout: None,
    });
    let refused = env.complete(&wft, vec![command(unset)]);
    assert!(matches!(
        refused,
        Err(HistoryError::BadCommand {
            cause: WorkflowTaskFailedCause::BadStartTimerAttributes,
            ..
        })
    ));
}

#[test]
fn a_canceled_timer_never_fires() {
    let mut env = with_timer("reminder", 30);
    env.signal("done early", "").unwrap();
    let wft = env.poll_workflow_task();
    let cancel = C::CancelTimerCommandAttributes(CancelTimerCommandAttributes {
        timer_id: "reminder".into(),
    });
    env.complete(&wft, vec![command(cancel)]).unwrap();
    assert_eq!(env.new_events().last(), Some(&E::TimerCanceled));
    env.advance(secs(60));
    assert!(env.new_events().is_empty());
}

#[test]
fn a_timer_that_fired_during_the_task_can_still_be_canceled() {
    let mut env = with_timer("reminder", 5);
    env.signal("wake", "").unwrap();
    let wft = env.poll_workflow_task();
    env.advance(secs(5));
    assert_eq!(env.buffered_types(), [E::TimerFired]);
    let cancel = C::CancelTimerCommandAttributes(CancelTimerCommandAttributes {
        timer_id: "reminder".into(),
    });
    env.complete(&wft, vec![command(cancel)]).unwrap();
    let events = env.new_events();
    assert!(events.contains(&E::TimerCanceled));
    assert!(
        !events.contains(&E::TimerFired),
        "the workflow never saw it fire"
    );
}

#[test]
fn a_second_timer_with_a_running_timers_id_fails_the_task() {
    let mut env = with_timer("reminder", 30);
    env.signal("wake", "").unwrap();
    let wft = env.poll_workflow_task();
    let before = env.history.len();
    let refused = env.complete(&wft, vec![command(start_timer("reminder", 5))]);
    assert!(matches!(
        refused,
        Err(HistoryError::BadCommand {
            cause: WorkflowTaskFailedCause::StartTimerDuplicateId,
            ..
        })
    ));
    assert_eq!(env.history.len(), before, "nothing the batch did is kept");
}

#[test]
fn a_command_that_closes_the_run_must_come_last() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    let complete =
        C::CompleteWorkflowExecutionCommandAttributes(CompleteWorkflowExecutionCommandAttributes {
            result: None,
        });
    let refused = env.complete(
        &wft,
        vec![command(complete), command(start_timer("late", 1))],
    );
    assert!(matches!(
        refused,
        Err(HistoryError::BadCommand {
            cause: WorkflowTaskFailedCause::UnhandledCommand,
            ..
        })
    ));
    assert!(env.state.is_running());
    assert!(env.armed(|t| matches!(t, Timer::User { .. })).is_none());
}

#[test]
fn a_marker_is_recorded_and_needs_a_name() {
    let mut env = TestEnv::start(start_request("order-1"));
    let wft = env.poll_workflow_task();
    let unnamed = C::RecordMarkerCommandAttributes(RecordMarkerCommandAttributes::default());
    let refused = env.complete(&wft, vec![command(unnamed)]);
    assert!(matches!(
        refused,
        Err(HistoryError::BadCommand {
            cause: WorkflowTaskFailedCause::BadRecordMarkerAttributes,
            ..
        })
    ));
    let marker = C::RecordMarkerCommandAttributes(RecordMarkerCommandAttributes {
        marker_name: "LocalActivity".into(),
        ..Default::default()
    });
    env.complete(&wft, vec![command(marker)]).unwrap();
    assert_eq!(env.new_events().last(), Some(&E::MarkerRecorded));
}
