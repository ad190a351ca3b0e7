//! Conversions between protobuf time types and std time, with Temporal's validation rules.

use chronicle_api::wkt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field} must not be negative")]
pub struct NegativeDuration {
    pub field: &'static str,
}

pub fn now() -> SystemTime {
    SystemTime::now()
}

pub fn timestamp(t: SystemTime) -> wkt::Timestamp {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    wkt::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

pub fn from_timestamp(t: &wkt::Timestamp) -> SystemTime {
    let nanos = t.nanos.clamp(0, 999_999_999) as u32;
    if t.seconds >= 0 {
        UNIX_EPOCH + Duration::new(t.seconds as u64, nanos)
    } else {
        UNIX_EPOCH
    }
}

/// Unix nanoseconds: the ordering key of timer rows.
pub fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

pub fn from_unix_nanos(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64)
}

pub fn duration(d: Duration) -> wkt::Duration {
    wkt::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A protobuf duration as std. Zero and absent both mean "not set", as in Temporal.
pub fn optional_duration(
    d: Option<&wkt::Duration>,
    field: &'static str,
) -> Result<Option<Duration>, NegativeDuration> {
    let Some(d) = d else { return Ok(None) };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(NegativeDuration { field });
    }
    let d = Duration::new(d.seconds as u64, d.nanos as u32);
    Ok((!d.is_zero()).then_some(d))
}

/// A duration this server stored after validating it: negative cannot happen, zero is unset.
pub fn stored_duration(d: Option<&wkt::Duration>) -> Option<Duration> {
    optional_duration(d, "stored").ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_and_reject_negatives() {
        let d = Duration::from_millis(1500);
        assert_eq!(optional_duration(Some(&duration(d)), "x"), Ok(Some(d)));
        assert_eq!(optional_duration(None, "x"), Ok(None));
        assert_eq!(
            optional_duration(Some(&duration(Duration::ZERO)), "x"),
            Ok(None)
        );
        let negative = wkt::Duration {
            seconds: -1,
            nanos: 0,
        };
        assert!(optional_duration(Some(&negative), "timeout").is_err());
    }

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        assert_eq!(from_timestamp(&timestamp(t)), t);
        assert_eq!(from_unix_nanos(unix_nanos(t)), t);
    }
}
