//! Operators pausing, unpausing and resetting activities.

use super::activities::{failure, retry, schedule, with_activity};
use super::{TestEnv, secs};
use crate::HistoryError;
use crate::engine::activity_ops::{NO_SUCH_ACTIVITY, ResetOptions, Selection};
use crate::engine::state::ActivityInfo;
use chronicle_common::QueueKind;

const ID: &str = "charge-1";

fn one() -> Selection {
    Selection::Id(ID.into())
}

fn activity(env: &TestEnv) -> ActivityInfo {
    env.state
        .activity_by_id(ID)
        .cloned()
        .expect("the activity is pending")
}

#[test]
fn a_paused_attempt_runs_on_and_its_retry_waits_for_the_unpause() {
    let mut env = with_activity(schedule(ID, retry(5)));
    let running = env.poll_activity();
    env.change(|c| c.pause_activities(&one(), "operator", "looking"))
        .unwrap();
    let paused = activity(&env);
    assert_eq!(
        paused.paused.as_ref().map(|p| p.reason.as_str()),
        Some("looking")
    );
    env.respond_activity(&running, failure("gave up", false))
        .unwrap();
    env.advance(secs(60));
    assert_eq!(activity(&env).attempt, 2);
    assert!(
        env.queued(QueueKind::Activity).is_empty(),
        "nothing dispatched while paused"
    );

    env.change(|c| c.unpause_activities(&one())).unwrap();
    assert!(activity(&env).paused.is_none());
    let next = env.poll_activity();
    assert_eq!(next.attempt, 2);
}

#[test]
fn pausing_a_queued_attempt_takes_it_back_and_pausing_twice_changes_nothing() {
    let mut env = with_activity(schedule(ID, None));
    env.change(|c| c.pause_activities(&one(), "operator", "first"))
        .unwrap();
    assert!(env.queued(QueueKind::Activity).is_empty());
    env.change(|c| c.pause_activities(&one(), "other", "second"))
        .unwrap();
    assert_eq!(activity(&env).paused.unwrap().reason, "first");
    let missing = env.change(|c| c.pause_activities(&Selection::Id("nope".into()), "o", ""));
    assert!(matches!(missing, Err(HistoryError::WorkflowNotFound(m)) if m == NO_SUCH_ACTIVITY));
}

#[test]
fn a_reset_counts_attempts_from_the_first_again() {
    let mut env = with_activity(schedule(ID, retry(10)));
    for _ in 0..2 {
        let attempt = env.poll_activity();
        env.respond_activity(&attempt, failure("no", false))
            .unwrap();
        env.advance(secs(60));
    }
    env.change(|c| c.pause_activities(&one(), "operator", ""))
        .unwrap();
    assert_eq!(activity(&env).attempt, 3);
    let keep = ResetOptions {
        keep_paused: true,
        ..Default::default()
    };
    env.change(|c| c.reset_activities(&one(), keep)).unwrap();
    assert_eq!(activity(&env).attempt, 1);
    assert!(env.queued(QueueKind::Activity).is_empty());
    env.change(|c| c.reset_activities(&one(), ResetOptions::default()))
        .unwrap();
    let first = env.poll_activity();
    assert_eq!(first.attempt, 1);
    assert!(first.last_failure.is_none());

    // Reset while it runs: the attempt finishes, and the next one is the second.
    env.change(|c| c.reset_activities(&one(), ResetOptions::default()))
        .unwrap();
    assert!(activity(&env).reset_requested);
    env.respond_activity(&first, failure("reset", false))
        .unwrap();
    env.advance(secs(60));
    assert_eq!(env.poll_activity().attempt, 2);
}
