//! Conversions between protobuf time types and std time, with protobuf's ranges and
//! Temporal's validation rules. Every instant this server computes goes through `after`, so
//! no client value can overflow the clock.

use chronicle_api::wkt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Protobuf's Duration range: ±10,000 years.
pub const MAX_DURATION_SECONDS: i64 = 315_576_000_000;
const MAX_NANOS: i32 = 999_999_999;
/// Protobuf's Timestamp range: 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999999Z.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// Why a client's duration is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum DurationFault {
    #[error("negative duration")]
    Negative,
    #[error("duration has seconds and nanos with different signs")]
    MixedSigns,
    #[error("duration out of range")]
    OutOfRange,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("An invalid {field} is set on request. cause: {fault}")]
pub struct InvalidDuration {
    pub field: &'static str,
    pub fault: DurationFault,
}

pub fn now() -> SystemTime {
    SystemTime::now()
}

/// The latest instant a Timestamp can carry; every computed deadline saturates here.
pub fn end_of_time() -> SystemTime {
    UNIX_EPOCH + Duration::new(MAX_TIMESTAMP_SECONDS as u64, MAX_NANOS as u32)
}

/// `t + d`, saturating at the end of time instead of overflowing.
pub fn after(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_add(d)
        .map_or_else(end_of_time, |sum| sum.min(end_of_time()))
}

pub fn timestamp(t: SystemTime) -> wkt::Timestamp {
    let since = t
        .min(end_of_time())
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    wkt::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

/// Any timestamp, valid or not, as an instant: before the epoch counts as the epoch, past the
/// end of time as the end of time.
pub fn from_timestamp(t: &wkt::Timestamp) -> SystemTime {
    if t.seconds < 0 {
        return UNIX_EPOCH;
    }
    let seconds = t.seconds.min(MAX_TIMESTAMP_SECONDS) as u64;
    let nanos = t.nanos.clamp(0, MAX_NANOS) as u32;
    UNIX_EPOCH + Duration::new(seconds, nanos)
}

/// Whether a client's timestamp lies in protobuf's range.
pub fn valid_timestamp(t: &wkt::Timestamp) -> bool {
    (MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&t.seconds)
        && (0..=MAX_NANOS).contains(&t.nanos)
}

/// Unix nanoseconds: the ordering key of timer rows; saturates in year 2262.
pub fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// Unix milliseconds: membership leases; saturates far beyond any lease.
pub fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

pub fn from_unix_nanos(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64)
}

/// A std duration as protobuf, saturating at protobuf's maximum.
pub fn duration(d: Duration) -> wkt::Duration {
    let d = d.min(Duration::new(MAX_DURATION_SECONDS as u64, MAX_NANOS as u32));
    wkt::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Checks a client's duration as protobuf defines it, then Temporal's "not negative".
fn checked(d: &wkt::Duration) -> Result<Duration, DurationFault> {
    if d.seconds.unsigned_abs() > MAX_DURATION_SECONDS as u64
        || d.nanos.unsigned_abs() > MAX_NANOS as u32
    {
        return Err(DurationFault::OutOfRange);
    }
    if (d.seconds < 0 && d.nanos > 0) || (d.seconds > 0 && d.nanos < 0) {
        return Err(DurationFault::MixedSigns);
    }
    if d.seconds < 0 || d.nanos < 0 {
        return Err(DurationFault::Negative);
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

/// A protobuf duration as std. Zero and absent both mean "not set", as in Temporal.
pub fn optional_duration(
    d: Option<&wkt::Duration>,
    field: &'static str,
) -> Result<Option<Duration>, InvalidDuration> {
    let Some(d) = d else { return Ok(None) };
    let d = checked(d).map_err(|fault| InvalidDuration { field, fault })?;
    Ok((!d.is_zero()).then_some(d))
}

/// A protobuf duration where zero is a value of its own (a timer's: it fires at once), and
/// only an absent one is unset.
pub fn present_duration(
    d: Option<&wkt::Duration>,
    field: &'static str,
) -> Result<Option<Duration>, InvalidDuration> {
    d.map(|d| checked(d).map_err(|fault| InvalidDuration { field, fault }))
        .transpose()
}

/// Checks several optional durations of one request, naming the first bad one.
pub fn check_durations(
    fields: &[(&Option<wkt::Duration>, &'static str)],
) -> Result<(), InvalidDuration> {
    fields
        .iter()
        .try_for_each(|(d, field)| optional_duration(d.as_ref(), field).map(drop))
}

/// A duration this server stored after validating it: anything invalid (written before the
/// checks existed) reads as unset rather than failing every later use of the run.
pub fn stored_duration(d: Option<&wkt::Duration>) -> Option<Duration> {
    optional_duration(d, "stored").ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(seconds: i64, nanos: i32) -> wkt::Duration {
        wkt::Duration { seconds, nanos }
    }

    fn fault(seconds: i64, nanos: i32) -> Option<DurationFault> {
        optional_duration(Some(&proto(seconds, nanos)), "x")
            .err()
            .map(|e| e.fault)
    }

    #[test]
    fn durations_round_trip_and_reject_negatives() {
        let d = Duration::from_millis(1500);
        assert_eq!(optional_duration(Some(&duration(d)), "x"), Ok(Some(d)));
        assert_eq!(optional_duration(None, "x"), Ok(None));
        assert_eq!(
            optional_duration(Some(&duration(Duration::ZERO)), "x"),
            Ok(None)
        );
        let err = optional_duration(Some(&proto(-1, 0)), "Timeout").unwrap_err();
        assert_eq!(
            err.to_string(),
            "An invalid Timeout is set on request. cause: negative duration"
        );
    }

    #[test]
    fn durations_outside_protobuf_range_are_refused() {
        assert_eq!(fault(i64::MAX, 0), Some(DurationFault::OutOfRange));
        assert_eq!(fault(i64::MIN, 0), Some(DurationFault::OutOfRange));
        assert_eq!(
            fault(MAX_DURATION_SECONDS + 1, 0),
            Some(DurationFault::OutOfRange)
        );
        assert_eq!(fault(0, 1_000_000_000), Some(DurationFault::OutOfRange));
        assert_eq!(fault(0, i32::MIN), Some(DurationFault::OutOfRange));
        assert_eq!(fault(1, -5), Some(DurationFault::MixedSigns));
        assert_eq!(fault(-1, 5), Some(DurationFault::MixedSigns));
        assert_eq!(fault(0, -5), Some(DurationFault::Negative));
        assert_eq!(fault(MAX_DURATION_SECONDS, MAX_NANOS), None);
    }

    #[test]
    fn several_durations_name_the_first_bad_one() {
        let ok = Some(proto(5, 0));
        let bad = Some(proto(-5, 0));
        assert_eq!(check_durations(&[(&ok, "A"), (&None, "B")]), Ok(()));
        let err = check_durations(&[(&ok, "A"), (&bad, "B"), (&bad, "C")]).unwrap_err();
        assert_eq!(err.field, "B");
    }

    #[test]
    fn clock_arithmetic_saturates_at_the_end_of_time() {
        let longest = Duration::new(MAX_DURATION_SECONDS as u64, 0);
        assert_eq!(after(now(), longest), end_of_time());
        assert_eq!(after(end_of_time(), Duration::MAX), end_of_time());
        assert_eq!(timestamp(end_of_time()).seconds, MAX_TIMESTAMP_SECONDS);
        assert_eq!(unix_nanos(end_of_time()), i64::MAX);
        assert_eq!(
            duration(Duration::MAX),
            proto(MAX_DURATION_SECONDS, MAX_NANOS)
        );
    }

    #[test]
    fn any_timestamp_reads_as_an_instant_in_range() {
        assert_eq!(
            from_timestamp(&wkt::Timestamp {
                seconds: i64::MIN,
                nanos: -1
            }),
            UNIX_EPOCH
        );
        let far = wkt::Timestamp {
            seconds: i64::MAX,
            nanos: i32::MAX,
        };
        assert_eq!(from_timestamp(&far), end_of_time());
        assert!(!valid_timestamp(&far));
        assert!(valid_timestamp(&wkt::Timestamp {
            seconds: MIN_TIMESTAMP_SECONDS,
            nanos: 0
        }));
        assert!(!valid_timestamp(&wkt::Timestamp {
            seconds: 0,
            nanos: -1
        }));
    }

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        assert_eq!(from_timestamp(&timestamp(t)), t);
        assert_eq!(from_unix_nanos(unix_nanos(t)), t);
    }
}
