//! A `ScheduleSpec` in the canonical form Temporal stores and describes: deprecated
//! calendars and cron strings converted to structured calendars and intervals, validated,
//! and (for describing) every range's end and step written out.

use chronicle_api::schedule::v1::{IntervalSpec, Range, ScheduleSpec, StructuredCalendarSpec};

use crate::cron::{self, Cron};
use crate::godur::{self, NANOS_PER_SEC};
use crate::ranges::{self, MAX_YEAR, MIN_YEAR};

/// Longest calendar comment Temporal accepts, in bytes.
const MAX_COMMENT_LEN: usize = 200;

/// The checks Temporal's frontend makes on the durations of the spec as sent, before
/// anything else.
pub(crate) fn check_durations(spec: &ScheduleSpec) -> Result<(), String> {
    for interval in &spec.interval {
        if let Some(d) = &interval.interval {
            godur::check_valid(d).map_err(|e| format!("interval is not a valid duration: {e}"))?;
        }
        if let Some(d) = &interval.phase {
            godur::check_valid(d).map_err(|e| format!("phase is not a valid duration: {e}"))?;
        }
    }
    Ok(())
}

/// Temporal's `canonicalizeSpec`: converted and validated, ranges left as written.
#[allow(deprecated)] // exclude_calendar is deprecated, and still honoured.
pub(crate) fn canonicalize(spec: &ScheduleSpec) -> Result<ScheduleSpec, String> {
    let mut spec = spec.clone();
    for cal in std::mem::take(&mut spec.calendar) {
        spec.structured_calendar
            .push(ranges::calendar_to_structured(&cal)?);
    }
    for cal in std::mem::take(&mut spec.exclude_calendar) {
        spec.exclude_structured_calendar
            .push(ranges::calendar_to_structured(&cal)?);
    }
    let cron_zone = convert_cron_strings(&mut spec)?;
    // A zone named by the cron strings becomes the spec's, unless the spec names another
    // (or carries zone data, whose name could mean anything).
    if let Some(zone) = cron_zone.filter(|z| !z.is_empty()) {
        let name = &spec.timezone_name;
        if (!name.is_empty() && *name != zone) || !spec.timezone_data.is_empty() {
            return Err(CONFLICTING_ZONES.to_owned());
        }
        spec.timezone_name = zone;
    }
    for cal in &spec.structured_calendar {
        validate_calendar(cal)?;
    }
    for interval in &spec.interval {
        validate_interval(interval)?;
    }
    Ok(spec)
}

const CONFLICTING_ZONES: &str = "conflicting timezone names";

/// Moves the cron strings into calendars and intervals; returns the zone they agree on
/// (`None` when there are none). All must name the same zone, or all none.
fn convert_cron_strings(spec: &mut ScheduleSpec) -> Result<Option<String>, String> {
    let mut agreed: Option<String> = None;
    for text in std::mem::take(&mut spec.cron_string) {
        let (item, zone) = cron::parse(&text)?;
        if agreed.as_ref().is_some_and(|z| *z != zone) {
            return Err(CONFLICTING_ZONES.to_owned());
        }
        agreed = Some(zone);
        match item {
            Cron::Calendar(c) => spec.structured_calendar.push(c),
            Cron::Interval(i) => spec.interval.push(i),
        }
    }
    Ok(agreed)
}

/// Temporal's `validateStructuredCalendar`. Exclusions are not validated, as in Temporal.
fn validate_calendar(cal: &StructuredCalendarSpec) -> Result<(), String> {
    let mut errors = Vec::new();
    let fields: [(&[Range], &str, i64, i64); 7] = [
        (&cal.second, "Second", 0, 59),
        (&cal.minute, "Minute", 0, 59),
        (&cal.hour, "Hour", 0, 23),
        (&cal.day_of_month, "DayOfMonth", 1, 31),
        (&cal.month, "Month", 1, 12),
        (&cal.year, "Year", MIN_YEAR, MAX_YEAR),
        (&cal.day_of_week, "DayOfWeek", 0, 6),
    ];
    for (ranges, name, min, max) in fields {
        for r in ranges {
            let (start, end) = (i64::from(r.start), i64::from(r.end));
            if start < min || start > max {
                errors.push(format!("{name} Start is not in range [{min}-{max}]"));
            }
            if end != 0 && (end < start || end > max) {
                errors.push(format!(
                    "{name} End is before Start or not in range [{min}-{max}]"
                ));
            }
            if r.step < 0 {
                errors.push(format!("{name} has invalid Step"));
            }
        }
    }
    if cal.comment.len() > MAX_COMMENT_LEN {
        errors.push("comment is too long".to_owned());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("invalid calendar spec: {}", errors.join(", ")))
    }
}

/// Temporal's `validateInterval`.
fn validate_interval(interval: &IntervalSpec) -> Result<(), String> {
    let every = godur::as_nanos(interval.interval.as_ref());
    let phase = godur::as_nanos(interval.phase.as_ref());
    if every < NANOS_PER_SEC {
        Err("interval is too small".to_owned())
    } else if phase < 0 {
        Err("phase is negative".to_owned())
    } else if phase >= every {
        Err("phase cannot be greater than Interval".to_owned())
    } else {
        Ok(())
    }
}

/// Temporal's `CleanSpec`, applied when a spec is described: every range gets an explicit
/// end (at least its start) and step (1 for 0).
pub(crate) fn clean(spec: &mut ScheduleSpec) {
    let calendars = spec
        .structured_calendar
        .iter_mut()
        .chain(&mut spec.exclude_structured_calendar);
    for cal in calendars {
        for ranges in [
            &mut cal.second,
            &mut cal.minute,
            &mut cal.hour,
            &mut cal.day_of_month,
            &mut cal.month,
            &mut cal.year,
            &mut cal.day_of_week,
        ] {
            for r in ranges.iter_mut() {
                r.end = r.end.max(r.start);
                if r.step == 0 {
                    r.step = 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cron(cron: &[&str]) -> ScheduleSpec {
        ScheduleSpec {
            cron_string: cron.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn r(start: i32, end: i32, step: i32) -> Range {
        Range { start, end, step }
    }

    #[test]
    fn cron_zone_moves_to_spec() {
        let spec = canonicalize(&with_cron(&[
            "CRON_TZ=Asia/Tokyo 0 9 * * *",
            "TZ=Asia/Tokyo @daily",
        ]))
        .unwrap();
        assert_eq!(spec.timezone_name, "Asia/Tokyo");
        assert_eq!(spec.structured_calendar.len(), 2);
        assert!(spec.cron_string.is_empty());
    }

    #[test]
    fn conflicting_zones() {
        let e = |s: &ScheduleSpec| canonicalize(s).unwrap_err();
        assert_eq!(
            e(&with_cron(&["TZ=Asia/Tokyo @daily", "@hourly"])),
            CONFLICTING_ZONES
        );
        // @every drops its zone, so it conflicts with one that names a zone.
        assert_eq!(
            e(&with_cron(&["TZ=UTC @daily", "TZ=UTC @every 1h"])),
            CONFLICTING_ZONES
        );
        let mut spec = with_cron(&["TZ=Asia/Tokyo @daily"]);
        spec.timezone_name = "Europe/Paris".into();
        assert_eq!(e(&spec), CONFLICTING_ZONES);
        spec.timezone_name = "Asia/Tokyo".into();
        assert!(canonicalize(&spec).is_ok());
        spec.timezone_data = vec![1];
        assert_eq!(e(&spec), CONFLICTING_ZONES);
        // Cron strings without a zone keep the spec's.
        let mut spec = with_cron(&["@daily"]);
        spec.timezone_name = "Europe/Paris".into();
        assert_eq!(canonicalize(&spec).unwrap().timezone_name, "Europe/Paris");
    }

    #[test]
    fn calendar_validation_collects_every_error() {
        let cal = StructuredCalendarSpec {
            second: vec![r(60, 0, 0)],
            hour: vec![r(5, 3, 0), r(1, 2, -1)],
            day_of_week: vec![r(7, 0, 0)],
            comment: "x".repeat(201),
            ..Default::default()
        };
        let spec = ScheduleSpec {
            structured_calendar: vec![cal],
            ..Default::default()
        };
        assert_eq!(
            canonicalize(&spec).unwrap_err(),
            "invalid calendar spec: Second Start is not in range [0-59], Hour End is before Start or \
             not in range [0-23], Hour has invalid Step, DayOfWeek Start is not in range [0-6], \
             comment is too long"
        );
    }

    #[test]
    fn interval_validation() {
        let d = |seconds| Some(chronicle_api::wkt::Duration { seconds, nanos: 0 });
        let check = |interval, phase| {
            let spec = ScheduleSpec {
                interval: vec![IntervalSpec { interval, phase }],
                ..Default::default()
            };
            canonicalize(&spec).err()
        };
        assert_eq!(check(d(60), d(59)), None);
        assert_eq!(check(None, None).as_deref(), Some("interval is too small"));
        assert_eq!(check(d(60), d(-1)).as_deref(), Some("phase is negative"));
        assert_eq!(
            check(d(60), d(60)).as_deref(),
            Some("phase cannot be greater than Interval")
        );
    }

    #[test]
    fn clean_fills_end_and_step() {
        let mut spec = ScheduleSpec {
            structured_calendar: vec![StructuredCalendarSpec {
                hour: vec![r(5, 0, 0), r(1, 9, 2)],
                ..Default::default()
            }],
            exclude_structured_calendar: vec![StructuredCalendarSpec {
                minute: vec![r(3, 1, 0)],
                ..Default::default()
            }],
            ..Default::default()
        };
        clean(&mut spec);
        assert_eq!(
            spec.structured_calendar[0].hour,
            vec![r(5, 5, 1), r(1, 9, 2)]
        );
        assert_eq!(spec.exclude_structured_calendar[0].minute, vec![r(3, 3, 1)]);
    }
}
