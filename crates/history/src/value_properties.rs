//! Property tests: no duration, timestamp, retry policy or cron string a client can send makes
//! request validation or the deadlines computed from it panic or loop; each is accepted or
//! refused with a typed error. A longer run:
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p chronicle-history value_properties`

use crate::engine::activity::activity_timeouts;
use crate::engine::cron::Schedule;
use crate::engine::retry;
use crate::engine::start::NewRun;
use crate::{HistoryError, NamespaceRef};
use chronicle_api::command::v1::ScheduleActivityTaskCommandAttributes;
use chronicle_api::common::v1::{RetryPolicy, WorkflowType};
use chronicle_api::taskqueue::v1::TaskQueue;
use chronicle_api::wkt;
use chronicle_api::workflowservice::StartWorkflowExecutionRequest;
use chronicle_common::time;
use proptest::prelude::*;
use std::time::{Duration, UNIX_EPOCH};

/// Few cases by default so the suite stays quick; PROPTEST_CASES asks for more.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    ProptestConfig::with_cases(cases)
}

fn seconds() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        Just(time::MAX_DURATION_SECONDS),
        Just(time::MAX_DURATION_SECONDS + 1),
        -time::MAX_DURATION_SECONDS..=time::MAX_DURATION_SECONDS,
        0i64..100_000,
        any::<i64>(),
    ]
}

fn nanos() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0),
        Just(i32::MIN),
        Just(i32::MAX),
        Just(999_999_999),
        Just(1_000_000_000),
        -999_999_999i32..=999_999_999,
    ]
}

fn duration() -> impl Strategy<Value = Option<wkt::Duration>> {
    proptest::option::of(
        (seconds(), nanos()).prop_map(|(seconds, nanos)| wkt::Duration { seconds, nanos }),
    )
}

fn retry_policy() -> impl Strategy<Value = Option<RetryPolicy>> {
    let coefficient = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        Just(0.0),
        -10.0f64..1e6,
    ];
    proptest::option::of(
        (duration(), coefficient, duration(), any::<i32>()).prop_map(
            |(initial, backoff_coefficient, maximum, maximum_attempts)| RetryPolicy {
                initial_interval: initial,
                backoff_coefficient,
                maximum_interval: maximum,
                maximum_attempts,
                non_retryable_error_types: Vec::new(),
            },
        ),
    )
}

fn cron() -> impl Strategy<Value = String> {
    let unit = prop_oneof![
        Just("ns"),
        Just("us"),
        Just("ms"),
        Just("s"),
        Just("m"),
        Just("h"),
        Just("x")
    ];
    let field = prop_oneof![
        Just("*".to_owned()),
        Just("*/0".to_owned()),
        (0u32..100).prop_map(|n| n.to_string()),
        (1u32..100).prop_map(|n| format!("*/{n}")),
    ];
    prop_oneof![
        Just(String::new()),
        (any::<u64>(), unit.clone()).prop_map(|(n, u)| format!("@every {n}{u}")),
        (0u64..10_000, unit).prop_map(|(n, u)| format!("@every {n}{u}")),
        "@every [0-9.]{1,30}[a-z]{0,2}",
        proptest::collection::vec(field, 5).prop_map(|f| f.join(" ")),
        "\\PC{0,40}",
    ]
}

fn instant() -> impl Strategy<Value = std::time::SystemTime> {
    prop_oneof![
        Just(UNIX_EPOCH),
        Just(time::end_of_time()),
        (0u64..253_402_300_799).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s)),
    ]
}

fn namespace() -> NamespaceRef {
    NamespaceRef {
        id: "ns".into(),
        name: "default".into(),
        retention: None,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_start_request_is_accepted_or_refused(
        execution in duration(),
        run in duration(),
        task in duration(),
        delay in duration(),
        retry_policy in retry_policy(),
        cron_schedule in cron(),
    ) {
        let request = StartWorkflowExecutionRequest {
            workflow_id: "wf".into(),
            workflow_type: Some(WorkflowType { name: "W".into() }),
            task_queue: Some(TaskQueue { name: "q".into(), ..Default::default() }),
            workflow_execution_timeout: execution,
            workflow_run_timeout: run,
            workflow_task_timeout: task,
            workflow_start_delay: delay,
            retry_policy,
            cron_schedule,
            ..Default::default()
        };
        match NewRun::from_request(&namespace(), request, time::now()) {
            Ok(run) => {
                let expiration = run.started.workflow_execution_expiration_time;
                prop_assert!(expiration.is_none_or(|t| time::valid_timestamp(&t)));
            }
            Err(HistoryError::InvalidArgument(message)) => prop_assert!(!message.is_empty()),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn any_retry_policy_validates_or_backs_off_within_range(
        policy in retry_policy(),
        attempt in any::<i32>(),
        now in instant(),
        expiration in proptest::option::of(instant()),
    ) {
        let Some(policy) = policy else { return Ok(()) };
        if retry::validate(&policy).is_ok() {
            let policy = retry::with_defaults(Some(policy));
            if let Ok(backoff) = retry::next_backoff(Some(&policy), attempt, None, now, expiration) {
                prop_assert!(time::after(now, backoff) <= time::end_of_time());
            }
        }
    }

    #[test]
    fn any_cron_string_parses_or_not_and_fires_after_its_start(
        spec in cron(),
        start in instant(),
        now in instant(),
    ) {
        if let Ok(schedule) = Schedule::parse(&spec) {
            let backoff = schedule.backoff(start, now);
            prop_assert!(time::after(now, backoff) <= time::end_of_time());
        }
    }

    #[test]
    fn any_activity_timeouts_are_capped_or_refused(
        schedule_to_close in duration(),
        schedule_to_start in duration(),
        start_to_close in duration(),
        heartbeat in duration(),
        run in duration(),
    ) {
        let command = ScheduleActivityTaskCommandAttributes {
            schedule_to_close_timeout: schedule_to_close,
            schedule_to_start_timeout: schedule_to_start,
            start_to_close_timeout: start_to_close,
            heartbeat_timeout: heartbeat,
            ..Default::default()
        };
        let run = time::stored_duration(run.as_ref());
        match activity_timeouts(&command, run) {
            Ok(timeouts) => {
                if let Some(run) = run {
                    prop_assert!(timeouts.start_to_close <= run);
                }
                prop_assert!(time::after(time::now(), timeouts.start_to_close) <= time::end_of_time());
            }
            Err(HistoryError::BadCommand { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn any_duration_or_timestamp_converts_without_panic(
        seconds in seconds(),
        nanos in nanos(),
        at in instant(),
    ) {
        let proto = wkt::Duration { seconds, nanos };
        if let Ok(Some(d)) = time::optional_duration(Some(&proto), "D") {
            prop_assert_eq!(time::optional_duration(Some(&time::duration(d)), "D"), Ok(Some(d)));
            prop_assert!(time::valid_timestamp(&time::timestamp(time::after(at, d))));
        }
        let stamp = wkt::Timestamp { seconds, nanos };
        let instant = time::from_timestamp(&stamp);
        prop_assert!(time::valid_timestamp(&time::timestamp(instant)));
        let _ = time::unix_nanos(instant);
    }
}
