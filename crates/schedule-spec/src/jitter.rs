//! Deterministic jitter, as Temporal computes it: FarmHash's 32-bit fingerprint (the
//! `farmhash` crate computes the same as Go's go-farm) of the nominal time in Go's binary
//! encoding followed by the seed, scaled to the allowed range in milliseconds. Matching the hash bit for bit keeps a migrated schedule's actions at the
//! instants Temporal would have picked.

/// Seconds from 0001-01-01 (Go's internal epoch) to 1970-01-01.
const GO_UNIX_TO_INTERNAL: i64 = 62_135_596_800;

/// The jitter, in milliseconds, for a nominal Unix second: at most `max_nanos` (a negative
/// bound means none), and never more than 2^32-1 ms (about 49.7 days), as in Temporal.
pub(crate) fn jitter_millis(seed: &str, nominal: i64, max_nanos: i64) -> i64 {
    let max_ms = u64::try_from(max_nanos.max(0) / 1_000_000)
        .unwrap_or(0)
        .min(u64::from(u32::MAX));
    let mut bytes = go_binary_utc(nominal).to_vec();
    bytes.extend_from_slice(seed.as_bytes());
    let fp = u64::from(farmhash::fingerprint32(&bytes));
    // Both factors are below 2^32, so the product fits; the shift keeps it below max_ms.
    i64::try_from((fp * max_ms) >> 32).unwrap_or(0)
}

/// Go's `time.Time.MarshalBinary` of a whole Unix second in UTC: version 1, seconds since
/// year 1 and nanoseconds big-endian, and -1 as the zone offset, which Go writes for UTC.
fn go_binary_utc(unix: i64) -> [u8; 15] {
    let mut out = [0u8; 15];
    out[0] = 1;
    out[1..9].copy_from_slice(&(unix + GO_UNIX_TO_INTERNAL).to_be_bytes());
    // nanoseconds: 0
    out[13..15].copy_from_slice(&(-1i16).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farmhash_reference_vectors() {
        // FarmHash Hash32 vectors, one or more per length class.
        let cases: [(u32, &str); 12] = [
            (0xdc56_d17a, ""),
            (0x3c97_3d4d, "a"),
            (0x98b5_1e95, "abcd"),
            (0xa3f3_66ac, "abcde"),
            (0x0f81_3aa4, "abcdef"),
            (0xf8cc_7928, "0123456789-0"),
            (0x0d92_cafb, "0123456789~01"),
            (0x3884_aa05, "0123456789&012345678"),
            (0xfa88_d020, "0123456789$0123456789!0"),
            (0xc624_6b8d, "size:  a.out:  bad magic"),
            (0x3229_84d9, "Nepal premier won't resign."),
            (
                0x2cc3_0bb7,
                "The days of the digital watch are numbered.  -Tom Stoppard",
            ),
        ];
        for (want, input) in cases {
            assert_eq!(farmhash::fingerprint32(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(
            farmhash::fingerprint32("0123456789%0123456789£".as_bytes()),
            0x1723_dd7a
        );
    }

    #[test]
    fn go_binary_time() {
        let b = go_binary_utc(0);
        assert_eq!(b[0], 1);
        assert_eq!(
            i64::from_be_bytes(b[1..9].try_into().unwrap()),
            62_135_596_800
        );
        assert_eq!(&b[9..], &[0, 0, 0, 0, 0xff, 0xff]);
    }

    #[test]
    fn bounds() {
        assert_eq!(jitter_millis("seed", 1_700_000_000, 0), 0);
        assert_eq!(jitter_millis("seed", 1_700_000_000, -5), 0);
        assert_eq!(
            jitter_millis("seed", 1_700_000_000, 999_999),
            0,
            "below a millisecond"
        );
        for t in 0..200 {
            let j = jitter_millis("ns-sched", 1_700_000_000 + t * 60, 60_000_000_000);
            assert!((0..60_000).contains(&j));
        }
        // The cap of 2^32-1 ms holds even for a bound of centuries.
        assert!(jitter_millis("x", 0, i64::MAX) < 1 << 32);
    }
}
