//! Durations as Temporal's Go server reads them: protobuf `Duration` to Go's `time.Duration`
//! (nanoseconds in an `i64`, saturating), its validity check, and the text form `@every`
//! accepts (Go's `time.ParseDuration` plus Temporal's `d` unit of 24 hours).

use chronicle_api::wkt::Duration;

pub(crate) const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Go's `durationpb.AsDuration`: nanoseconds, saturating at the ends of `i64` instead of
/// wrapping, so an absurd interval is still "very long" rather than negative.
pub(crate) fn as_nanos(d: Option<&Duration>) -> i64 {
    let Some(d) = d else { return 0 };
    let nanos = i128::from(d.seconds) * i128::from(NANOS_PER_SEC) + i128::from(d.nanos);
    i64::try_from(nanos).unwrap_or(if d.seconds < 0 { i64::MIN } else { i64::MAX })
}

/// Go's `durationpb.Duration.CheckValid`, with its messages.
pub(crate) fn check_valid(d: &Duration) -> Result<(), String> {
    const MAX_SECONDS: i64 = 315_576_000_000; // 10,000 years of 365.25 days
    let shown = format!("seconds:{} nanos:{}", d.seconds, d.nanos);
    if d.seconds < -MAX_SECONDS {
        Err(format!("proto: duration ({shown}) exceeds -10000 years"))
    } else if d.seconds > MAX_SECONDS {
        Err(format!("proto: duration ({shown}) exceeds +10000 years"))
    } else if d.nanos <= -1_000_000_000 || d.nanos >= 1_000_000_000 {
        Err(format!("proto: duration ({shown}) has out-of-range nanos"))
    } else if (d.seconds > 0 && d.nanos < 0) || (d.seconds < 0 && d.nanos > 0) {
        Err(format!(
            "proto: duration ({shown}) has seconds and nanos with different signs"
        ))
    } else {
        Ok(())
    }
}

/// A protobuf `Duration` of Go nanoseconds, split as `durationpb.New` splits them (both
/// parts carry the sign).
pub(crate) fn to_proto(nanos: i64) -> Duration {
    Duration {
        seconds: nanos / NANOS_PER_SEC,
        // |remainder| < 1e9 always fits.
        nanos: i32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0),
    }
}

/// Temporal's `timestamp.ParseDuration`: each `<number>d` becomes `<24*number>h` written
/// with six decimals (as Go's `%f`), then Go's `time.ParseDuration` reads the result, so
/// its errors quote the rewritten text, as Temporal's do.
pub(crate) fn parse(s: &str) -> Result<i64, String> {
    parse_go(&expand_days(s))
}

/// Rewrites the matches of Temporal's `(\d+(\.\d*)?|(\.\d+))d`, leftmost first.
fn expand_days(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 16);
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        let Some(end) = day_number_at(b, i) else {
            i += 1;
            continue;
        };
        let number = &s[i..end];
        let value = number.parse::<f64>().unwrap_or(f64::INFINITY);
        // Go keeps the text when the number overflows a float; `d` then fails as a unit.
        if value.is_finite() {
            out.push_str(&s[copied..i]);
            let hours = 24.0 * value;
            if hours.is_finite() {
                out.push_str(&format!("{hours:.6}h"));
            } else {
                out.push_str("+Infh");
            }
            copied = end + 1;
        }
        i = end + 1;
    }
    out.push_str(&s[copied..]);
    out
}

/// If a number followed by `d` starts at `i`, the index of that `d`.
fn day_number_at(b: &[u8], i: usize) -> Option<usize> {
    let digits_from = |j: usize| j + b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
    let end = if b[i].is_ascii_digit() {
        let j = digits_from(i);
        if b.get(j) == Some(&b'.') {
            digits_from(j + 1)
        } else {
            j
        }
    } else if b[i] == b'.' {
        let j = digits_from(i + 1);
        if j == i + 1 {
            return None;
        }
        j
    } else {
        return None;
    };
    (b.get(end) == Some(&b'd')).then_some(end)
}

/// Go's `time.ParseDuration`, in nanoseconds, with its error messages.
fn parse_go(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        let (value, rest) = parse_component(s, orig)?.ok_or_else(invalid)?;
        s = rest;
        total = total
            .checked_add(value)
            .filter(|&t| t <= LIMIT)
            .ok_or_else(invalid)?;
    }
    if neg {
        // -(1<<63) is i64::MIN exactly.
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// One `<number><unit>` of a Go duration: its nanoseconds and the text after it. `Ok(None)`
/// means "invalid duration"; unit errors carry their own message.
fn parse_component<'a>(s: &'a str, orig: &str) -> Result<Option<(u64, &'a str)>, String> {
    const LIMIT: u64 = 1 << 63;
    let b = s.as_bytes();
    if !(b[0] == b'.' || b[0].is_ascii_digit()) {
        return Ok(None);
    }
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let Some(whole) = leading_int(&b[..int_len]) else {
        return Ok(None);
    };
    let mut rest = &s[int_len..];
    let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0);
    let has_point = rest.starts_with('.');
    if has_point {
        rest = &rest[1..];
        frac_len = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
        (frac, scale) = leading_fraction(&rest.as_bytes()[..frac_len]);
        rest = &rest[frac_len..];
    }
    if int_len == 0 && frac_len == 0 {
        return Ok(None);
    }
    let unit_len = rest
        .bytes()
        .take_while(|&c| c != b'.' && !c.is_ascii_digit())
        .count();
    if unit_len == 0 {
        return Err(format!("time: missing unit in duration {}", quote(orig)));
    }
    let unit_text = &rest[..unit_len];
    let unit: u64 = match unit_text {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                quote(unit_text),
                quote(orig)
            ));
        }
    };
    if whole > LIMIT / unit {
        return Ok(None);
    }
    let mut value = whole * unit;
    if frac > 0 {
        // Go adds the fraction through a float, truncating; mirror it bit for bit.
        let extra = (frac as f64 * (unit as f64 / scale)) as u64;
        value = value.saturating_add(extra);
        if value > LIMIT {
            return Ok(None);
        }
    }
    Ok(Some((value, &rest[unit_len..])))
}

/// Go's `leadingInt` over ASCII digits: `None` on overflow past 1<<63.
fn leading_int(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |x, &c| {
        let x = x.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        (x <= 1 << 63).then_some(x)
    })
}

/// Go's `leadingFraction`: the digits that fit, and ten to the power of their count.
fn leading_fraction(digits: &[u8]) -> (u64, f64) {
    let (mut x, mut scale) = (0u64, 1f64);
    for &c in digits {
        match x
            .checked_mul(10)
            .and_then(|y| y.checked_add(u64::from(c - b'0')))
        {
            Some(y) if y <= 1 << 63 && x <= (i64::MAX as u64) / 10 => {
                x = y;
                scale *= 10.0;
            }
            // Go stops accumulating on overflow but keeps consuming digits.
            _ => break,
        }
    }
    (x, scale)
}

/// Go's `time.quote`: double quotes, `"` and `\` escaped, bytes of non-ASCII or control
/// characters as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if !c.is_ascii() || c < ' ' {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SEC;

    #[test]
    fn go_durations() {
        assert_eq!(parse("90m"), Ok(5400 * S));
        assert_eq!(parse("1h30m15s"), Ok(5415 * S));
        assert_eq!(parse("1.5h"), Ok(5400 * S));
        assert_eq!(parse(".5s"), Ok(S / 2));
        assert_eq!(
            parse("2."),
            Err(r#"time: missing unit in duration "2.""#.to_owned())
        );
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("-5m"), Ok(-300 * S));
        assert_eq!(parse("+5m"), Ok(300 * S));
        assert_eq!(parse("300ms"), Ok(S * 3 / 10));
        assert_eq!(parse("1µs1us1ns"), Ok(2001));
        assert_eq!(parse("2562047h47m16.854775807s"), Ok(i64::MAX));
        assert!(parse("2562047h47m16.854775808s").is_err());
    }

    #[test]
    fn go_duration_errors() {
        assert_eq!(parse(""), Err(r#"time: invalid duration """#.to_owned()));
        assert_eq!(
            parse("abc"),
            Err(r#"time: invalid duration "abc""#.to_owned())
        );
        assert_eq!(
            parse("5"),
            Err(r#"time: missing unit in duration "5""#.to_owned())
        );
        assert_eq!(
            parse("5x"),
            Err(r#"time: unknown unit "x" in duration "5x""#.to_owned())
        );
        assert_eq!(
            parse("5 m"),
            Err(r#"time: unknown unit " m" in duration "5 m""#.to_owned())
        );
        assert_eq!(parse("."), Err(r#"time: invalid duration ".""#.to_owned()));
        assert_eq!(
            parse("5é"),
            Err(r#"time: unknown unit "\xc3\xa9" in duration "5\xc3\xa9""#.to_owned())
        );
    }

    #[test]
    fn days_become_hours_first() {
        assert_eq!(expand_days("1d"), "24.000000h");
        assert_eq!(expand_days("1.5d2h"), "36.000000h2h");
        assert_eq!(expand_days(".5d"), "12.000000h");
        assert_eq!(expand_days("1.2.3d"), "1.55.200000h");
        assert_eq!(expand_days("dd"), "dd");
        assert_eq!(parse("2d"), Ok(48 * 3600 * S));
        // Errors quote the rewritten text, as Temporal's do.
        assert_eq!(
            parse("1dx"),
            Err(r#"time: unknown unit "hx" in duration "24.000000hx""#.to_owned())
        );
    }

    #[test]
    fn proto_durations() {
        let d = |seconds, nanos| Duration { seconds, nanos };
        assert_eq!(as_nanos(None), 0);
        assert_eq!(as_nanos(Some(&d(2, 5))), 2 * S + 5);
        assert_eq!(as_nanos(Some(&d(-2, -5))), -2 * S - 5);
        assert_eq!(as_nanos(Some(&d(315_576_000_000, 0))), i64::MAX);
        assert_eq!(as_nanos(Some(&d(-315_576_000_000, 0))), i64::MIN);
        assert!(check_valid(&d(5, 0)).is_ok());
        assert!(
            check_valid(&d(5, -1))
                .unwrap_err()
                .contains("different signs")
        );
        assert!(
            check_valid(&d(0, 1_000_000_000))
                .unwrap_err()
                .contains("out-of-range nanos")
        );
        assert!(
            check_valid(&d(315_576_000_001, 0))
                .unwrap_err()
                .contains("+10000 years")
        );
        assert_eq!(to_proto(-1_500_000_000), d(-1, -500_000_000));
    }
}
