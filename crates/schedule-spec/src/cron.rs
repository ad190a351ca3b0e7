//! Cron strings, read as Temporal's `parseCronString` reads them.
//!
//! Accepted: an optional `TZ=<zone> ` or `CRON_TZ=<zone> ` prefix; a `#comment` suffix (it
//! becomes the calendar's comment); `@every <duration>[/<phase>]` (Go durations plus `d`);
//! `@yearly @annually @monthly @weekly @daily @midnight @hourly`; otherwise 5 fields
//! (minute hour day-of-month month day-of-week), 6 (plus year) or 7 (second first, then the
//! six), each field as `ranges` reads it.

use chronicle_api::schedule::v1::{CalendarSpec, IntervalSpec, StructuredCalendarSpec};

use crate::{godur, ranges};

/// What one cron string stands for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cron {
    Calendar(StructuredCalendarSpec),
    Interval(IntervalSpec),
}

/// A cron string's meaning and the time zone it named ("" for none). `@every` strings
/// report no zone even after a prefix, as Temporal's do.
pub(crate) fn parse(text: &str) -> Result<(Cron, String), String> {
    let mut c = text.trim();
    let mut zone = "";
    if c.starts_with("TZ=") || c.starts_with("CRON_TZ=") {
        let (prefix, rest) = c
            .split_once(' ')
            .ok_or_else(|| "CronString has time zone but missing fields".to_owned())?;
        zone = prefix.split_once('=').map_or("", |(_, z)| z);
        c = rest;
    }
    let (body, comment) = c.split_once('#').unwrap_or((c, ""));
    let (body, comment) = (body.trim(), comment.trim());

    if body.starts_with("@every") {
        return Ok((Cron::Interval(parse_every(body)?), String::new()));
    }
    let calendar = fields_to_calendar(expand_shorthand(body), comment)?;
    let structured = ranges::calendar_to_structured(&calendar)?;
    Ok((Cron::Calendar(structured), zone.to_owned()))
}

/// `@every 90m` or `@every 14h/3h` (interval / phase).
fn parse_every(body: &str) -> Result<IntervalSpec, String> {
    let (_, every) = body
        .split_once(' ')
        .ok_or_else(|| "CronString does not have interval after @every".to_owned())?;
    let (interval, phase) = every.split_once('/').unwrap_or((every, ""));
    let interval = godur::to_proto(godur::parse(interval)?);
    // An absent phase stays absent, so the canonical form shows none.
    let phase = match phase {
        "" => None,
        p => Some(godur::to_proto(godur::parse(p)?)),
    };
    Ok(IntervalSpec {
        interval: Some(interval),
        phase,
    })
}

fn expand_shorthand(body: &str) -> &str {
    match body {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    }
}

fn fields_to_calendar(body: &str, comment: &str) -> Result<CalendarSpec, String> {
    let f: Vec<&str> = body.split_whitespace().take(8).collect();
    let s = |i: usize| f[i].to_owned();
    let mut cal = CalendarSpec {
        comment: comment.to_owned(),
        ..Default::default()
    };
    // The seventh field, when present, comes first: seconds.
    let first = match f.len() {
        5 | 6 => 0,
        7 => {
            cal.second = s(0);
            1
        }
        _ => return Err("CronString does not have 5-7 fields".to_owned()),
    };
    cal.minute = s(first);
    cal.hour = s(first + 1);
    cal.day_of_month = s(first + 2);
    cal.month = s(first + 3);
    cal.day_of_week = s(first + 4);
    if f.len() > 5 {
        cal.year = s(first + 5);
    }
    Ok(cal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_api::schedule::v1::Range;
    use chronicle_api::wkt::Duration;

    fn r(start: i32, end: i32, step: i32) -> Range {
        Range { start, end, step }
    }

    fn calendar(text: &str) -> (StructuredCalendarSpec, String) {
        match parse(text).unwrap() {
            (Cron::Calendar(c), zone) => (c, zone),
            other => panic!("not a calendar: {other:?}"),
        }
    }

    fn interval(text: &str) -> IntervalSpec {
        match parse(text).unwrap() {
            (Cron::Interval(i), _) => i,
            other => panic!("not an interval: {other:?}"),
        }
    }

    fn secs(seconds: i64) -> Option<Duration> {
        Some(Duration { seconds, nanos: 0 })
    }

    #[test]
    fn five_six_and_seven_fields() {
        let (c, zone) = calendar("15 3 * * 1-5");
        assert_eq!(
            (c.second, c.minute, c.hour),
            (vec![r(0, 0, 0)], vec![r(15, 0, 0)], vec![r(3, 0, 0)])
        );
        assert_eq!(
            (c.day_of_week, c.year, zone),
            (vec![r(1, 5, 0)], vec![], String::new())
        );
        let (c, _) = calendar("0 12 * * * 2030");
        assert_eq!((c.minute, c.year), (vec![r(0, 0, 0)], vec![r(2030, 0, 0)]));
        let (c, _) = calendar("*/10 0 12 1 * * 2030-2032");
        assert_eq!(c.second, vec![r(0, 59, 10)]);
        assert_eq!(
            (c.minute, c.hour, c.day_of_month),
            (vec![r(0, 0, 0)], vec![r(12, 0, 0)], vec![r(1, 0, 0)])
        );
        assert_eq!(c.year, vec![r(2030, 2032, 0)]);
        for bad in ["", "* * * *", "1 2 3 4 5 6 7 8", "@reboot", "@every"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("* * * *").unwrap_err(),
            "CronString does not have 5-7 fields"
        );
    }

    #[test]
    fn shorthands_zone_and_comment() {
        assert_eq!(calendar("@weekly").0, calendar("0 0 * * 0").0);
        assert_eq!(calendar("@annually").0, calendar("0 0 1 1 *").0);
        let (c, zone) = calendar("  CRON_TZ=Asia/Tokyo @daily # every day  ");
        assert_eq!(
            (c.comment.as_str(), zone.as_str()),
            ("every day", "Asia/Tokyo")
        );
        assert_eq!(calendar("TZ=UTC 0 0 * * *").1, "UTC");
        assert_eq!(
            parse("TZ=UTC").unwrap_err(),
            "CronString has time zone but missing fields"
        );
    }

    #[test]
    fn every() {
        assert_eq!(
            interval("@every 90m"),
            IntervalSpec {
                interval: secs(5400),
                phase: None
            }
        );
        assert_eq!(
            interval("@every 14h/3h"),
            IntervalSpec {
                interval: secs(50_400),
                phase: secs(10_800)
            }
        );
        assert_eq!(interval("@every 1d/5m").interval, secs(86_400));
        assert_eq!(interval("@every 5m/").phase, None);
        // The zone of an @every string is dropped.
        assert_eq!(parse("CRON_TZ=Asia/Tokyo @every 1h").unwrap().1, "");
        assert_eq!(
            parse("@every5m").unwrap_err(),
            "CronString does not have interval after @every"
        );
        assert_eq!(
            parse("@every 5").unwrap_err(),
            "time: missing unit in duration \"5\""
        );
    }
}
