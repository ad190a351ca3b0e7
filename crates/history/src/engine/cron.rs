//! Cron schedules as Temporal accepts them: five fields (minute hour day-of-month month
//! day-of-week), the `@yearly`/`@monthly`/`@weekly`/`@daily`/`@hourly` nicknames, and
//! `@every <duration>` with a Go-style duration ("@every 1h30m"). Times are UTC.

use chronicle_common::search_attributes::go_duration;
use chronicle_common::time;
use chrono::{DateTime, Utc};
use std::time::{Duration, SystemTime};

/// Temporal's cron library rounds `@every` down to whole seconds, and up to at least one.
const MIN_EVERY: Duration = Duration::from_secs(1);
/// Go durations are i64 nanoseconds; Temporal refuses any `@every` longer than that.
const MAX_EVERY: Duration = Duration::from_nanos(i64::MAX as u64);

#[derive(Debug)]
pub(crate) enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let invalid = |why: &str| format!("Invalid CronSchedule {spec:?}: {why}");
        if let Some(every) = spec.strip_prefix("@every ") {
            return match go_duration(every.trim()) {
                None => Err(invalid("bad duration")),
                Some(d) if d > MAX_EVERY => Err(invalid("interval too long")),
                Some(d) => Ok(Self::Every(Duration::from_secs(d.as_secs()).max(MIN_EVERY))),
            };
        }
        if spec.split_whitespace().count() != 5 && !spec.starts_with('@') {
            return Err(invalid(
                "expected 5 fields: minute hour day-of-month month day-of-week",
            ));
        }
        let cron = spec
            .parse::<croner::Cron>()
            .map_err(|e| invalid(&e.to_string()))?;
        let schedule = Self::Cron(Box::new(cron));
        // "0 0 30 2 *" parses but never fires; a run waiting for it would wait forever. A spec
        // without years repeats within a few years of any start, so one fixed start tells.
        let start = std::time::SystemTime::UNIX_EPOCH;
        if schedule.next(start, start) == time::end_of_time() {
            return Err(invalid("no time can be found to satisfy the schedule"));
        }
        Ok(schedule)
    }

    /// The first scheduled time after `start` that is not before `now`; the end of time when
    /// there is none.
    fn next(&self, start: SystemTime, now: SystemTime) -> SystemTime {
        match self {
            Self::Every(interval) => every_next(*interval, start, now),
            Self::Cron(cron) => {
                let occurrence = |from: SystemTime, inclusive: bool| {
                    let from: DateTime<Utc> = from.into();
                    cron.find_next_occurrence(&from, inclusive)
                        .map_or_else(|_| time::end_of_time(), SystemTime::from)
                };
                // Strictly after `start`, as Temporal's cron library counts: a run started
                // on a scheduled minute waits for the next one.
                let after_start = occurrence(start, false);
                if after_start >= now {
                    after_start
                } else {
                    occurrence(now, true)
                }
            }
        }
    }

    /// How long a run that started at `start` and ends at `now` waits before the next.
    pub fn backoff(&self, start: SystemTime, now: SystemTime) -> Duration {
        self.next(start, now)
            .duration_since(now)
            .unwrap_or_default()
    }
}

/// `start + k × interval` for the least k ≥ 1 not before `now`, computed rather than stepped
/// so a short interval after a long pause costs nothing.
fn every_next(interval: Duration, start: SystemTime, now: SystemTime) -> SystemTime {
    let first = time::after(start, interval);
    let Ok(late) = now.duration_since(first) else {
        return first;
    };
    let step = interval.as_nanos().max(1);
    let offset = late.as_nanos().div_ceil(step) * step;
    let seconds = u64::try_from(offset / 1_000_000_000).unwrap_or(u64::MAX);
    let offset = Duration::new(seconds, (offset % 1_000_000_000) as u32);
    time::after(first, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn every_schedules_step_from_the_start() {
        let schedule = Schedule::parse("@every 10s").unwrap();
        let start = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            schedule.backoff(start, start + Duration::from_secs(3)),
            Duration::from_secs(7)
        );
        assert_eq!(
            schedule.backoff(start, start + Duration::from_secs(23)),
            Duration::from_secs(7)
        );
        assert_eq!(
            schedule.backoff(start, start + Duration::from_secs(30)),
            Duration::ZERO
        );
    }

    #[test]
    fn every_is_whole_seconds_within_go_range() {
        let interval = |spec| match Schedule::parse(spec) {
            Ok(Schedule::Every(d)) => Some(d),
            _ => None,
        };
        assert_eq!(interval("@every 1ns"), Some(MIN_EVERY));
        assert_eq!(interval("@every 1ms"), Some(MIN_EVERY));
        assert_eq!(interval("@every 0s"), Some(MIN_EVERY));
        assert_eq!(interval("@every 2500ms"), Some(Duration::from_secs(2)));
        assert_eq!(
            interval("@every 2562047h"),
            Some(Duration::from_secs(2_562_047 * 3600))
        );
        assert!(Schedule::parse("@every 2562048h").is_err());
        assert!(Schedule::parse("@every 99999999999999999999h").is_err());
        assert!(Schedule::parse("@every 1e400h").is_err());
    }

    #[test]
    fn a_long_pause_does_not_step_through_every_interval() {
        let schedule = Schedule::parse("@every 1s").unwrap();
        let start = UNIX_EPOCH;
        let now = UNIX_EPOCH + Duration::from_millis(200_000_000_000_500);
        assert_eq!(schedule.backoff(start, now), Duration::from_millis(500));
    }

    #[test]
    fn cron_fields_find_the_next_minute() {
        let schedule = Schedule::parse("*/5 * * * *").unwrap();
        // 1970-01-01 00:01:30 → 00:05:00
        let now = UNIX_EPOCH + Duration::from_secs(90);
        assert_eq!(schedule.backoff(now, now), Duration::from_secs(210));
        assert!(Schedule::parse("* * *").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("@daily").is_ok());
    }

    #[test]
    fn schedules_that_never_fire_are_refused() {
        let err = Schedule::parse("0 0 30 2 *").unwrap_err();
        assert!(err.contains("no time can be found"), "{err}");
    }
}
