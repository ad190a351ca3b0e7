//! Long-poll deadlines from the client's own: answer empty just before the client gives up.

use chronicle_common::limits::LONG_POLL_MARGIN;
use std::time::Duration;
use tokio::time::Instant;

/// The `grpc-timeout` header: an integer and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// When a long poll must answer: a margin before the client's deadline, at most `cap` away.
pub fn long_poll_deadline(metadata: &tonic::metadata::MetadataMap, cap: Duration) -> Instant {
    let client = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        // Short deadlines keep a proportional margin, so the call still waits most of it.
        .map(|t| t.saturating_sub(LONG_POLL_MARGIN.min(t / 5)));
    Instant::now() + client.map_or(cap, |t| t.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("70S"), Some(Duration::from_secs(70)));
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_keeps_a_margin_and_a_cap() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        let cap = Duration::from_secs(60);
        let now = Instant::now();
        assert_eq!(long_poll_deadline(&metadata, cap) - now, cap);
        metadata.insert("grpc-timeout", "10S".parse().unwrap());
        assert_eq!(
            long_poll_deadline(&metadata, cap) - now,
            Duration::from_secs(9)
        );
        metadata.insert("grpc-timeout", "1S".parse().unwrap());
        assert_eq!(
            long_poll_deadline(&metadata, cap) - now,
            Duration::from_millis(800)
        );
        metadata.insert("grpc-timeout", "70S".parse().unwrap());
        assert_eq!(long_poll_deadline(&metadata, cap) - now, cap);
    }
}
