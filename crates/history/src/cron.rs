//! Cron schedules as Temporal accepts them: five fields (minute hour day-of-month month
//! day-of-week), the `@yearly`/`@monthly`/`@weekly`/`@daily`/`@hourly` nicknames, and
//! `@every <duration>` with a Go-style duration ("@every 1h30m"). Times are UTC.

use chronicle_common::search_attributes::go_duration;
use chrono::{DateTime, Utc};
use std::time::{Duration, SystemTime};

#[derive(Debug)]
pub(crate) enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let invalid = |why: String| format!("Invalid CronSchedule {spec:?}: {why}");
        if let Some(every) = spec.strip_prefix("@every ") {
            let interval = go_duration(every.trim())
                .ok_or_else(|| invalid(format!("bad duration {every:?}")))?;
            return if interval.is_zero() {
                Err(invalid("interval must be positive".into()))
            } else {
                Ok(Self::Every(interval))
            };
        }
        if spec.split_whitespace().count() != 5 && !spec.starts_with('@') {
            return Err(invalid(
                "expected 5 fields: minute hour day-of-month month day-of-week".into(),
            ));
        }
        spec.parse::<croner::Cron>()
            .map(|c| Self::Cron(Box::new(c)))
            .map_err(|e| invalid(e.to_string()))
    }

    /// The first scheduled time after `start` that is not before `now`.
    fn next(&self, start: SystemTime, now: SystemTime) -> SystemTime {
        match self {
            Self::Every(interval) => {
                let mut next = start + *interval;
                while next < now {
                    next += *interval;
                }
                next
            }
            Self::Cron(cron) => {
                let from: DateTime<Utc> = start.max(now).into();
                cron.find_next_occurrence(&from, true)
                    .map(SystemTime::from)
                    .unwrap_or(now)
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
}
