use super::*;
use chronicle_api::schedule::v1::{IntervalSpec, ScheduleSpec};

const MINUTE: Duration = Duration::from_secs(60);

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 - 1_700_000_000 % 60 + secs)
}

fn every_minute() -> Spec {
    Spec::compile(&ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(time::duration(MINUTE)),
            phase: None,
        }],
        ..Default::default()
    })
    .unwrap()
}

fn job(overlap: ScheduleOverlapPolicy) -> ScheduleJob {
    ScheduleJob {
        namespace: "default".into(),
        namespace_id: "ns".into(),
        schedule_id: "s".into(),
        schedule: Some(Schedule {
            policies: Some(SchedulePolicies {
                overlap_policy: overlap as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        processed_until: ts(t(0)),
        ..Default::default()
    }
}

fn run(id: &str) -> WorkflowExecution {
    WorkflowExecution {
        workflow_id: id.into(),
        run_id: format!("{id}-run"),
    }
}

fn trigger() -> BufferedStart {
    BufferedStart {
        nominal: ts(t(1)),
        actual: ts(t(1)),
        overlap_policy: 0,
        manual: true,
    }
}

fn close(job: &mut ScheduleJob, id: &str, status: WorkflowExecutionStatus) {
    job.closed(Closed {
        execution: run(id),
        status,
        result: None,
        failure: None,
    });
}

#[test]
fn due_times_are_buffered_once_and_the_first_starts() {
    let spec = every_minute();
    let mut job = job(ScheduleOverlapPolicy::Skip);
    assert!(!job.take_due(&spec, t(150)));
    assert_eq!(job.buffer.len(), 2, "the times at 60 s and 120 s");
    assert!(
        !job.take_due(&spec, t(150)),
        "taken times are not taken again"
    );
    assert_eq!(job.buffer.len(), 2);
    let action = job.process_buffer();
    assert_eq!(action.starts.len(), 1, "one at a time under SKIP");
    assert_eq!(action.starts[0].nominal, ts(t(60)));
    assert_eq!(job.info_mut().overlap_skipped, 1);
    assert_eq!(job.next_wake(&spec), Some(t(180)));
}

#[test]
fn times_older_than_the_catchup_window_are_missed() {
    let spec = every_minute();
    let mut job = job(ScheduleOverlapPolicy::AllowAll);
    job.schedule
        .as_mut()
        .unwrap()
        .policies
        .as_mut()
        .unwrap()
        .catchup_window = Some(time::duration(Duration::from_secs(90)));
    job.take_due(&spec, t(300));
    // 60 and 120 are more than 90 s old at 300; 240 and 300 are within it, 180 is 120 s old.
    assert_eq!(job.info_mut().missed_catchup_window, 3);
    assert_eq!(job.buffer.len(), 2);
}

#[test]
fn running_workflows_decide_what_each_overlap_policy_does() {
    for (policy, starts, buffered, skipped, cancel, terminate) in [
        (ScheduleOverlapPolicy::Skip, 0, 0, 2, false, false),
        (ScheduleOverlapPolicy::BufferOne, 0, 1, 1, false, false),
        (ScheduleOverlapPolicy::BufferAll, 0, 2, 0, false, false),
        (ScheduleOverlapPolicy::CancelOther, 0, 1, 0, true, false),
        (ScheduleOverlapPolicy::TerminateOther, 0, 1, 0, false, true),
        (ScheduleOverlapPolicy::AllowAll, 2, 0, 0, false, false),
    ] {
        let mut job = job(policy);
        job.started(&trigger(), run("first"), t(1));
        job.buffer_start(trigger());
        job.buffer_start(trigger());
        let action = job.process_buffer();
        assert_eq!(action.starts.len(), starts, "{policy:?}");
        assert_eq!(job.buffer.len(), buffered, "{policy:?}");
        assert_eq!(job.info_mut().overlap_skipped, skipped, "{policy:?}");
        assert_eq!(action.cancel_running, cancel, "{policy:?}");
        assert_eq!(action.terminate_running, terminate, "{policy:?}");
    }
}

#[test]
fn a_buffered_start_begins_once_the_running_workflow_closes() {
    let mut job = job(ScheduleOverlapPolicy::BufferOne);
    job.started(&trigger(), run("first"), t(1));
    job.buffer_start(trigger());
    assert!(job.process_buffer().starts.is_empty());
    close(&mut job, "first", WorkflowExecutionStatus::Completed);
    assert!(job.running().is_empty());
    assert_eq!(job.process_buffer().starts.len(), 1);
    let recent = &job.info.as_ref().unwrap().recent_actions[0];
    assert_eq!(
        recent.start_workflow_status,
        WorkflowExecutionStatus::Completed as i32
    );
}

#[test]
fn a_paused_or_spent_schedule_takes_only_manual_starts() {
    let spec = every_minute();
    let mut job = job(ScheduleOverlapPolicy::AllowAll);
    job.set_paused(true, "maintenance".into());
    job.take_due(&spec, t(120));
    assert!(job.process_buffer().starts.is_empty());
    job.buffer_start(trigger());
    assert_eq!(
        job.process_buffer().starts.len(),
        1,
        "a trigger runs while paused"
    );

    let mut job = self::job(ScheduleOverlapPolicy::AllowAll);
    let state = job.state_mut();
    state.limited_actions = true;
    state.remaining_actions = 1;
    job.take_due(&spec, t(180));
    assert_eq!(job.process_buffer().starts.len(), 1);
    assert_eq!(job.state().remaining_actions, 0);
    assert!(job.future_action_times(&spec).is_empty());
}

#[test]
fn a_failure_pauses_a_schedule_that_asks_and_goes_to_the_next_run() {
    let mut job = job(ScheduleOverlapPolicy::Skip);
    job.schedule
        .as_mut()
        .unwrap()
        .policies
        .as_mut()
        .unwrap()
        .pause_on_failure = true;
    job.started(&trigger(), run("w"), t(1));
    job.closed(Closed {
        execution: run("w"),
        status: WorkflowExecutionStatus::Failed,
        result: None,
        failure: Some(Failure {
            message: "boom".into(),
            ..Default::default()
        }),
    });
    assert!(job.state().paused);
    assert_eq!(job.state().notes, "paused due to workflow failure: w: boom");
    assert_eq!(job.last_failure.as_ref().unwrap().message, "boom");
}

#[test]
fn backfills_take_every_time_in_the_range_inclusive() {
    let spec = every_minute();
    let mut job = job(ScheduleOverlapPolicy::AllowAll);
    job.backfill(&spec, t(60), t(300), 0);
    let nominal: Vec<_> = job.buffer.iter().map(|s| s.nominal).collect();
    assert_eq!(nominal, [60, 120, 180, 240, 300].map(|s| ts(t(s))).to_vec());
    assert!(job.buffer.iter().all(|s| s.manual));
}

#[test]
fn a_full_buffer_drops_and_counts_what_does_not_fit() {
    let mut job = job(ScheduleOverlapPolicy::BufferAll);
    for _ in 0..MAX_BUFFER + 3 {
        job.buffer_start(trigger());
    }
    assert_eq!(job.buffer.len(), MAX_BUFFER);
    assert_eq!(job.info_mut().buffer_dropped, 3);
}
