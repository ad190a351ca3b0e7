//! Whole-spec tests. The files in `testdata/` hold what Temporal 1.32.0 (the
//! `temporal server start-dev` of CLI 1.9.1) answered for 327 specs: for each the spec as
//! sent to CreateSchedule, then either the error, or the spec DescribeSchedule returned and
//! the times ListScheduleMatchingTimes returned for a window (jittered, with the seed
//! `<namespace id>-<schedule id>` the server used). `testdata/record.py` records such a
//! file; an observed file is also a valid input for it, to re-record against a newer server.

use chronicle_api::schedule::v1::{
    CalendarSpec, IntervalSpec, Range, ScheduleSpec, StructuredCalendarSpec,
};
use chronicle_api::wkt::{Duration, Timestamp};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::{ComputeLimitExceeded, Next, Spec, SpecError, canonical};

const OBSERVED: &str = include_str!("../testdata/temporal-1.32-observed.json");
/// Random cron strings (some with exclusions, intervals and jitter) in zones with unusual
/// DST rules (Lord Howe's half hour, Chatham's 12:45 offset, Sao Paulo's midnight change,
/// Havana's) over their transition days, answered the same way; windows cut to 12 times.
const OBSERVED_DST_RANDOM: &str =
    include_str!("../testdata/temporal-1.32-observed-dst-random.json");

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

// --- protobuf JSON, as the Python SDK writes it, read back into the messages ---

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn duration(v: Option<&Value>) -> Option<Duration> {
    let s = v?.as_str()?.strip_suffix('s')?;
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |rest| (true, rest));
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut d = Duration {
        seconds: whole.parse().unwrap(),
        nanos: format!("{frac:0<9}").parse().unwrap(),
    };
    if neg {
        (d.seconds, d.nanos) = (-d.seconds, -d.nanos);
    }
    Some(d)
}

fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    let t = at(v?.as_str()?);
    Some(Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap(),
    })
}

fn ranges(v: Option<&Value>) -> Vec<Range> {
    let int = |r: &Value, k| {
        r.get(k)
            .map_or(0, |x| i32::try_from(x.as_i64().unwrap()).unwrap())
    };
    let list = v.and_then(Value::as_array).cloned().unwrap_or_default();
    list.iter()
        .map(|r| Range {
            start: int(r, "start"),
            end: int(r, "end"),
            step: int(r, "step"),
        })
        .collect()
}

fn structured(v: &Value) -> StructuredCalendarSpec {
    StructuredCalendarSpec {
        second: ranges(v.get("second")),
        minute: ranges(v.get("minute")),
        hour: ranges(v.get("hour")),
        day_of_month: ranges(v.get("dayOfMonth")),
        month: ranges(v.get("month")),
        year: ranges(v.get("year")),
        day_of_week: ranges(v.get("dayOfWeek")),
        comment: text(v, "comment"),
    }
}

fn calendar(v: &Value) -> CalendarSpec {
    CalendarSpec {
        second: text(v, "second"),
        minute: text(v, "minute"),
        hour: text(v, "hour"),
        day_of_month: text(v, "dayOfMonth"),
        month: text(v, "month"),
        year: text(v, "year"),
        day_of_week: text(v, "dayOfWeek"),
        comment: text(v, "comment"),
    }
}

fn list<T>(v: &Value, key: &str, f: impl Fn(&Value) -> T) -> Vec<T> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(f).collect())
        .unwrap_or_default()
}

#[allow(deprecated)]
fn spec(v: &Value) -> ScheduleSpec {
    ScheduleSpec {
        structured_calendar: list(v, "structuredCalendar", structured),
        cron_string: v.get("cronString").map(strings).unwrap_or_default(),
        calendar: list(v, "calendar", calendar),
        interval: list(v, "interval", |i| IntervalSpec {
            interval: duration(i.get("interval")),
            phase: duration(i.get("phase")),
        }),
        exclude_calendar: list(v, "excludeCalendar", calendar),
        exclude_structured_calendar: list(v, "excludeStructuredCalendar", structured),
        start_time: timestamp(v.get("startTime")),
        end_time: timestamp(v.get("endTime")),
        jitter: duration(v.get("jitter")),
        timezone_name: text(v, "timezoneName"),
        timezone_data: Vec::new(),
    }
}

/// ListScheduleMatchingTimes as Temporal computes it: each search starts from the previous
/// jittered time, at most 1000 times, none after the window's end.
fn matching_times(
    spec: &Spec,
    seed: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, ComputeLimitExceeded> {
    let mut out = Vec::new();
    let mut t = start;
    while out.len() < 1000 {
        match spec.try_next(seed, t)? {
            Some(Next { actual, .. }) if actual <= end => {
                out.push(actual);
                t = actual;
            }
            _ => break,
        }
    }
    Ok(out)
}

#[test]
fn matches_what_temporal_answered() {
    assert_eq!(check_observed(OBSERVED), 129);
}

#[test]
fn matches_what_temporal_answered_around_dst() {
    assert_eq!(check_observed(OBSERVED_DST_RANDOM), 198);
}

/// Checks a file of observations recorded the same way (one made with the reference server
/// at hand): `CHRONICLE_SPEC_OBSERVED=path cargo test -p chronicle-schedule-spec -- --ignored`.
#[test]
#[ignore = "needs a recorded file"]
fn matches_recorded_file() {
    let path = std::env::var("CHRONICLE_SPEC_OBSERVED").unwrap();
    check_observed(&std::fs::read_to_string(path).unwrap());
}

/// Compares every case; returns how many there were.
fn check_observed(json: &str) -> usize {
    let cases: Vec<Value> = serde_json::from_str(json).unwrap();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let input = spec(&case["spec"]);
        if let Some(error) = case.get("error") {
            assert_eq!(
                canonical(&input).unwrap_err().to_string(),
                error.as_str().unwrap(),
                "{id}"
            );
            continue;
        }
        assert_eq!(
            canonical(&input).unwrap(),
            spec(&case["describe"]),
            "{id}: described form"
        );
        let compiled = Spec::compile(&input).unwrap();
        let seed = case["seed"].as_str().unwrap();
        let Some(start) = case.get("start").map(|t| at(t.as_str().unwrap())) else {
            continue;
        };
        let end = at(case["end"].as_str().unwrap());
        if case.get("list_error").is_some() {
            assert!(
                matching_times(&compiled, seed, start, end).is_err(),
                "{id}: compute limit"
            );
            continue;
        }
        let want: Vec<DateTime<Utc>> = strings(&case["times"]).iter().map(|t| at(t)).collect();
        assert_eq!(
            matching_times(&compiled, seed, start, end),
            Ok(want),
            "{id}: matching times"
        );
    }
    cases.len()
}

// --- properties beyond the recorded cases ---

#[test]
fn described_form_of_a_cron_string() {
    // As Temporal 1.32 described it (case c014 of the recorded file).
    let spec = canonical(&cron("0,15 9-17/4 * JAN-mar,dec mon-FRI,7")).unwrap();
    let r = |start, end, step| Range { start, end, step };
    let want = StructuredCalendarSpec {
        second: vec![r(0, 0, 1)],
        minute: vec![r(0, 0, 1), r(15, 15, 1)],
        hour: vec![r(9, 17, 4)],
        day_of_month: vec![r(1, 31, 1)],
        month: vec![r(1, 3, 1), r(12, 12, 1)],
        year: vec![],
        day_of_week: vec![r(1, 5, 1), r(0, 0, 1)],
        comment: String::new(),
    };
    assert_eq!(spec.structured_calendar, vec![want]);
    assert!(spec.cron_string.is_empty() && spec.timezone_name.is_empty());
}

fn cron(cron: &str) -> ScheduleSpec {
    ScheduleSpec {
        cron_string: vec![cron.to_owned()],
        ..Default::default()
    }
}

fn secs(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

#[test]
fn next_is_strictly_after() {
    let s = Spec::compile(&cron("0 * * * *")).unwrap();
    let n = s.next("", at("2024-01-01T10:00:00Z")).unwrap();
    assert_eq!(n.nominal, at("2024-01-01T11:00:00Z"));
    assert_eq!(n.actual, n.nominal, "no jitter configured");
    // Sub-second times count by their whole second.
    assert_eq!(
        s.next("", at("2024-01-01T10:59:59.9Z")).unwrap().nominal,
        at("2024-01-01T11:00:00Z")
    );
}

#[test]
fn start_time_is_inclusive_end_time_too() {
    let mut spec = cron("0 * * * *");
    spec.start_time = Some(Timestamp {
        seconds: at("2024-01-01T10:00:00Z").timestamp(),
        nanos: 0,
    });
    spec.end_time = Some(Timestamp {
        seconds: at("2024-01-01T12:00:00Z").timestamp(),
        nanos: 0,
    });
    let s = Spec::compile(&spec).unwrap();
    assert_eq!(
        s.next("", at("2020-01-01T00:00:00Z")).unwrap().nominal,
        at("2024-01-01T10:00:00Z")
    );
    assert_eq!(
        s.next("", at("2024-01-01T11:00:00Z")).unwrap().nominal,
        at("2024-01-01T12:00:00Z")
    );
    assert_eq!(s.next("", at("2024-01-01T12:00:00Z")), None);
}

#[test]
fn jitter_stays_before_the_following_time() {
    let spec = ScheduleSpec {
        cron_string: vec!["* * * * *".into()],
        jitter: secs(3600),
        ..Default::default()
    };
    let s = Spec::compile(&spec).unwrap();
    let mut t = at("2024-01-01T00:00:00Z");
    let mut moved = 0;
    for _ in 0..300 {
        let n = s.next("ns-id-schedule", t).unwrap();
        let lag = n.actual - n.nominal;
        assert!(
            lag >= TimeDelta::zero() && lag < TimeDelta::seconds(60),
            "{n:?}"
        );
        moved += usize::from(lag > TimeDelta::zero());
        // Same seed and time, same jitter.
        assert_eq!(s.next("ns-id-schedule", t), Some(n));
        t = n.nominal;
    }
    assert!(moved > 250, "jitter applied");
    let other_seed = s.next("other", at("2024-01-01T00:00:00Z")).unwrap();
    assert_ne!(
        other_seed,
        s.next("ns-id-schedule", at("2024-01-01T00:00:00Z"))
            .unwrap()
    );
}

#[test]
fn over_excluded_spec_gives_up() {
    // Every second matches and every second is excluded: Temporal stops after two weeks of
    // candidates instead of searching to 2100.
    let mut spec = cron("* * * * * * *");
    spec.exclude_structured_calendar = canonical(&cron("* * * * * * *"))
        .unwrap()
        .structured_calendar;
    let s = Spec::compile(&spec).unwrap();
    assert_eq!(
        s.try_next("", at("2024-01-01T00:00:00Z")),
        Err(crate::ComputeLimitExceeded)
    );
    assert_eq!(s.next("", at("2024-01-01T00:00:00Z")), None);
}

#[test]
fn empty_spec_never_fires() {
    let s = Spec::compile(&ScheduleSpec::default()).unwrap();
    assert_eq!(s.next("", at("2024-01-01T00:00:00Z")), None);
    assert_eq!(
        canonical(&ScheduleSpec::default()).unwrap(),
        ScheduleSpec::default()
    );
}

#[test]
fn canonical_is_idempotent_and_kept_by_the_compiled_spec() {
    let mut spec = cron("CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI # weekday mornings");
    spec.interval.push(IntervalSpec {
        interval: secs(3600),
        phase: None,
    });
    let once = canonical(&spec).unwrap();
    assert_eq!(canonical(&once).unwrap(), once);
    assert_eq!(Spec::compile(&spec).unwrap().canonical_form(), &once);
    assert_eq!(once.structured_calendar[0].comment, "weekday mornings");
}

#[test]
fn zone_data_lets_any_name_pass() {
    let mut spec = cron("0 9 * * *");
    spec.timezone_name = "My/Own".into();
    assert!(canonical(&spec).is_err());
    spec.timezone_data = b"TZif".to_vec();
    assert_eq!(canonical(&spec).unwrap().timezone_name, "My/Own");
}

#[test]
fn frontend_duration_checks() {
    let spec = ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(Duration {
                seconds: 60,
                nanos: -1,
            }),
            phase: None,
        }],
        ..Default::default()
    };
    let SpecError::Invalid(message) = canonical(&spec).unwrap_err();
    assert!(
        message.starts_with(
            "Invalid schedule spec: interval is not a valid duration: proto: duration"
        ),
        "{message}"
    );
}

#[test]
fn absurd_bounds_do_not_overflow() {
    let mut spec = cron("@every 1h");
    spec.start_time = Some(Timestamp {
        seconds: i64::MAX,
        nanos: 999_999_999,
    });
    assert_eq!(
        Spec::compile(&spec)
            .unwrap()
            .next("", at("2024-01-01T00:00:00Z")),
        None
    );
    spec.start_time = Some(Timestamp {
        seconds: i64::MIN,
        nanos: -5,
    });
    spec.end_time = Some(Timestamp {
        seconds: i64::MIN,
        nanos: 0,
    });
    assert_eq!(
        Spec::compile(&spec)
            .unwrap()
            .next("", at("2024-01-01T00:00:00Z")),
        None
    );
    let huge = ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: secs(315_576_000_000),
            phase: None,
        }],
        ..Default::default()
    };
    // Saturates to Go's longest duration (about 292 years): the first time is past 2100.
    assert_eq!(
        Spec::compile(&huge)
            .unwrap()
            .next("", at("2024-01-01T00:00:00Z")),
        None
    );
}
