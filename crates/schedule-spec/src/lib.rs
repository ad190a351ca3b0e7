//! Temporal schedule specs as Temporal's server reads them: the canonical form
//! `DescribeSchedule` shows, the validation `CreateSchedule` applies (with its messages), and
//! the next action time, DST handling and jitter included.
//!
//! Pure logic: no I/O, no clock. Times are whole seconds, as in Temporal; jitter adds
//! milliseconds.
//!
//! Where this differs from Temporal 1.32 (all outside what clients send in practice):
//! - `timezone_data` (a compiled tzfile) is not read; the zone is taken by `timezone_name`,
//!   or UTC when that names no zone chrono-tz knows. `timezone_name = "Local"` is UTC.
//! - Zone rules come from chrono-tz's tz database, whose transitions stop after 2099, so
//!   DST in the year 2100 (the last year Temporal searches) is not applied.
//! - An unvalidated exclusion range with a negative step counts as step 1 (Temporal's loop
//!   never ends on one), and negative values in exclusions never match (Go would panic).

mod calendar;
mod canonical;
mod cron;
mod godur;
mod jitter;
mod ranges;
mod zone;

#[cfg(test)]
mod tests;

use chronicle_api::schedule::v1::ScheduleSpec;
use chronicle_api::wkt::Timestamp;
use chrono::{DateTime, TimeDelta, Utc};

use crate::calendar::Calendar;
use crate::godur::NANOS_PER_SEC;
use crate::zone::Zone;

/// A spec Temporal would refuse. The message is the whole `InvalidArgument` message
/// Temporal's frontend returns for it, e.g. `Invalid schedule spec: Hour is not in range [0-23]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Invalid(String),
}

impl SpecError {
    fn invalid(inner: impl std::fmt::Display) -> SpecError {
        SpecError::Invalid(format!("Invalid schedule spec: {inner}"))
    }
}

/// An action time: the time the spec names, and that time plus the jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    pub nominal: DateTime<Utc>,
    pub actual: DateTime<Utc>,
}

/// The search for a next time gave up: the spec's exclusions rejected more candidate times
/// in a row than Temporal's default bound (two weeks of seconds) allows. Temporal stops
/// such a schedule and fails `ListScheduleMatchingTimes` for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the schedule calendar specification has too many exclusions. Please modify the specification."
)]
pub struct ComputeLimitExceeded;

/// Temporal's default `scheduler.specMaxIterations`.
const MAX_ITERATIONS: usize = 2 * 7 * 24 * 60 * 60;

/// The first second of 2101, from which Temporal finds no more times.
pub(crate) const END_OF_2100: i64 = 4_133_980_800;

/// A compiled `ScheduleSpec`.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The canonical form, as described.
    canonical: ScheduleSpec,
    calendars: Vec<Calendar>,
    excludes: Vec<Calendar>,
    /// (interval, phase) in whole seconds, as Temporal rounds them.
    intervals: Vec<(i64, i64)>,
    /// The first Unix second the search may consider is `floor` + 1.
    floor: i64,
    /// The last Unix second allowed, if any.
    end: Option<i64>,
    jitter_nanos: i64,
}

/// The spec as `DescribeSchedule` returns it after `CreateSchedule`: cron strings and the
/// deprecated `calendar` / `exclude_calendar` converted to `structured_calendar`,
/// `interval` and `exclude_structured_calendar` (appended after the ones given), a cron
/// string's zone moved to `timezone_name`, every range's end and step written out. Fails
/// as `CreateSchedule` would.
pub fn canonical(spec: &ScheduleSpec) -> Result<ScheduleSpec, SpecError> {
    Spec::compile(spec).map(|s| s.canonical)
}

impl Spec {
    /// Validates and compiles a spec, in the canonical form or not.
    pub fn compile(spec: &ScheduleSpec) -> Result<Spec, SpecError> {
        canonical::check_durations(spec).map_err(SpecError::invalid)?;
        let mut spec = canonical::canonicalize(spec).map_err(SpecError::invalid)?;
        let zone = match Zone::load(&spec.timezone_name) {
            Ok(zone) => zone,
            // With zone data Temporal never looks the name up, so any name passes; the data
            // itself is not read here (see the crate docs).
            Err(_) if !spec.timezone_data.is_empty() => Zone::UTC,
            Err(e) => return Err(SpecError::invalid(e)),
        };
        canonical::clean(&mut spec);
        let compile = |cals: &[_]| cals.iter().map(|c| Calendar::new(c, zone)).collect();
        let intervals = spec
            .interval
            .iter()
            .map(|i| {
                let every = godur::as_nanos(i.interval.as_ref()) / NANOS_PER_SEC;
                let phase = godur::as_nanos(i.phase.as_ref()) / NANOS_PER_SEC;
                (every.max(1), phase.max(0))
            })
            .collect();
        Ok(Spec {
            calendars: compile(&spec.structured_calendar),
            excludes: compile(&spec.exclude_structured_calendar),
            intervals,
            // Without a start time Temporal starts at the Unix epoch.
            floor: spec
                .start_time
                .as_ref()
                .map_or(0, unix_floor)
                .saturating_sub(1),
            end: spec.end_time.as_ref().map(unix_floor),
            jitter_nanos: godur::as_nanos(spec.jitter.as_ref()),
            canonical: spec,
        })
    }

    /// The canonical form of the compiled spec, as [`canonical`] returns it.
    pub fn canonical_form(&self) -> &ScheduleSpec {
        &self.canonical
    }

    /// First action strictly after `after` (respecting start_time/end_time, exclusions;
    /// jitter applied deterministically from `jitter_seed`, as Temporal does). None when no
    /// more, or when the search hit Temporal's bound (see [`Spec::try_next`]).
    pub fn next(&self, jitter_seed: &str, after: DateTime<Utc>) -> Option<Next> {
        self.try_next(jitter_seed, after).ok().flatten()
    }

    /// [`Spec::next`], telling apart "no more times" from "gave up searching".
    /// Temporal's scheduler passes `"<namespace id>-<schedule id>"` as the seed.
    pub fn try_next(
        &self,
        jitter_seed: &str,
        after: DateTime<Utc>,
    ) -> Result<Option<Next>, ComputeLimitExceeded> {
        let Some(nominal) = self.next_nominal(after.timestamp())? else {
            return Ok(None);
        };
        // The jitter may not carry an action past the next time the spec names (not
        // counting exclusions or the end time, as in Temporal).
        let mut max_jitter = self.jitter_nanos;
        if let Some(following) = self.raw_next(nominal) {
            max_jitter = max_jitter.min((following - nominal).saturating_mul(NANOS_PER_SEC));
        }
        let jitter = jitter::jitter_millis(jitter_seed, nominal, max_jitter);
        let Some(nominal) = DateTime::from_timestamp(nominal, 0) else {
            return Ok(None);
        };
        Ok(Some(Next {
            nominal,
            actual: nominal + TimeDelta::milliseconds(jitter),
        }))
    }

    /// The first nominal second after `after` that is within the bounds and not excluded.
    fn next_nominal(&self, after: i64) -> Result<Option<i64>, ComputeLimitExceeded> {
        let mut after = after.max(self.floor);
        for _ in 0..MAX_ITERATIONS {
            let Some(t) = self.raw_next(after) else {
                return Ok(None);
            };
            if self.end.is_some_and(|end| t > end) || t >= END_OF_2100 {
                return Ok(None);
            }
            if !self.excludes.iter().any(|x| x.matches(t)) {
                return Ok(Some(t));
            }
            after = t;
        }
        Err(ComputeLimitExceeded)
    }

    /// The earliest second after `after` that any calendar or interval names.
    fn raw_next(&self, after: i64) -> Option<i64> {
        let calendars = self.calendars.iter().filter_map(|c| c.next(after));
        let intervals = self.intervals.iter().filter_map(|&(every, phase)| {
            // Go's division truncates towards zero, as Rust's does; keep it so times
            // before the phase land where Temporal's do.
            ((after - phase) / every + 1)
                .checked_mul(every)?
                .checked_add(phase)
        });
        calendars.chain(intervals).min()
    }
}

/// A timestamp's whole Unix second (nanos carried as Go's `AsTime` carries them).
fn unix_floor(t: &Timestamp) -> i64 {
    t.seconds
        .saturating_add(i64::from(t.nanos).div_euclid(NANOS_PER_SEC))
}
