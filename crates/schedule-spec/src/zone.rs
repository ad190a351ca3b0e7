//! Civil-date arithmetic and time zones, resolved the way Go's `time` package resolves them.
//!
//! Temporal's calendar search is written against Go's `time.Date`, whose choice for a local
//! time that a DST change skips or repeats decides which instants a schedule fires at. This
//! module reproduces that choice on top of chrono-tz's offsets, in whole Unix seconds.

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;

pub(crate) const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date. `day` may run past the month's end:
/// it just counts on, as Go's `time.Date` normalizes it.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March so that the leap day is the last day of a "year".
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(crate) fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(crate) fn days_in_month(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The local wall-clock fields of an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    /// 0 = Sunday, as Go's `time.Weekday`.
    pub weekday: i64,
}

/// A loaded time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Zone(Tz);

impl Zone {
    pub(crate) const UTC: Zone = Zone(Tz::UTC);

    /// Loads a zone by IANA name, accepting and refusing names as Go's `time.LoadLocation`
    /// does, with its error messages.
    pub(crate) fn load(name: &str) -> Result<Zone, String> {
        // Go gives "" and "UTC" UTC, and "Local" the server's own zone; a Temporal server
        // normally runs in UTC, and this crate must not depend on the host's setting.
        if name.is_empty() || name == "UTC" || name == "Local" {
            return Ok(Zone::UTC);
        }
        if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
            return Err("time: invalid location name".to_owned());
        }
        name.parse::<Tz>()
            .map(Zone)
            .map_err(|_| format!("unknown time zone {name}"))
    }

    /// Seconds east of UTC in force at a Unix second.
    fn offset_at(self, unix: i64) -> i64 {
        match DateTime::from_timestamp(unix, 0) {
            Some(t) => {
                let off = self.0.offset_from_utc_datetime(&t.naive_utc());
                i64::from(off.fix().local_minus_utc())
            }
            // Beyond chrono's range (hundreds of millennia): no schedule reaches it.
            None => 0,
        }
    }

    /// The local fields of a Unix second.
    pub(crate) fn civil(self, unix: i64) -> Civil {
        let local = unix + self.offset_at(unix);
        let days = local.div_euclid(SECS_PER_DAY);
        let secs = local.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            weekday: (days + 4).rem_euclid(7),
        }
    }

    /// The Unix second Go's `time.Date(year, month, day, hour, minute, second, 0, zone)`
    /// returns. Go first takes the offset in force at the wall-clock reading taken as if it
    /// were UTC, and if the instant that offset gives lies outside that offset's span, the
    /// offset in force at that instant instead. So a repeated local time resolves to the
    /// first of its two instants in zones west of UTC and to the second east of it, and a
    /// skipped one to an instant whose wall clock reads differently.
    pub(crate) fn date(
        self,
        year: i64,
        month: i64,
        day: i64,
        hour: i64,
        min: i64,
        sec: i64,
    ) -> i64 {
        let wall = days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + min * 60 + sec;
        let guess = self.offset_at(wall);
        wall - self.offset_at(wall - guess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny() -> Zone {
        Zone::load("America/New_York").unwrap()
    }

    #[test]
    fn civil_days_round_trip() {
        for days in [-800_000, -1, 0, 1, 11_016, 59, 60, 47_541, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        // Overflowing days roll into the next month.
        assert_eq!(days_from_civil(2024, 1, 32), days_from_civil(2024, 2, 1));
    }

    #[test]
    fn month_lengths() {
        assert_eq!(days_in_month(2, 2000), 29);
        assert_eq!(days_in_month(2, 2100), 28);
        assert_eq!(days_in_month(2, 2024), 29);
        assert_eq!(days_in_month(4, 2023), 30);
        assert_eq!(days_in_month(12, 2023), 31);
    }

    #[test]
    fn load_names_as_go_does() {
        assert_eq!(Zone::load("").unwrap(), Zone::UTC);
        assert_eq!(Zone::load("UTC").unwrap(), Zone::UTC);
        assert_eq!(
            Zone::load("Mars/Olympus").unwrap_err(),
            "unknown time zone Mars/Olympus"
        );
        assert_eq!(
            Zone::load("../etc/passwd").unwrap_err(),
            "time: invalid location name"
        );
        assert_eq!(
            Zone::load("/etc/localtime").unwrap_err(),
            "time: invalid location name"
        );
        assert!(
            Zone::load("america/new_york").is_err(),
            "names are case-sensitive"
        );
        assert!(Zone::load("US/Eastern").is_ok());
    }

    #[test]
    fn civil_fields_and_weekday() {
        // 2024-03-10T06:59:59Z is 01:59:59 EST, a Sunday.
        let c = ny().civil(1_710_053_999);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2024, 3, 10, 1, 59, 59)
        );
        assert_eq!(c.weekday, 0);
        assert_eq!(ny().civil(1_710_054_000).hour, 3, "02:00 EST is 03:00 EDT");
        assert_eq!(Zone::UTC.civil(-1).weekday, 3, "1969-12-31 was a Wednesday");
    }

    #[test]
    fn date_resolves_skipped_and_repeated_times_as_go() {
        // Spring forward: 02:30 does not exist in New York; Go gives 06:30Z (01:30 EST).
        assert_eq!(ny().date(2024, 3, 10, 2, 30, 0), 1_710_052_200);
        // Fall back: 01:30 happens twice; Go gives the first (EDT, 05:30Z) west of UTC.
        assert_eq!(ny().date(2024, 11, 3, 1, 30, 0), 1_730_611_800);
        // East of UTC the second (CET, 01:30Z) for Berlin's repeated 02:30.
        let berlin = Zone::load("Europe/Berlin").unwrap();
        assert_eq!(berlin.date(2024, 10, 27, 2, 30, 0), 1_729_992_600);
        // Spring forward in Berlin: 02:30 gives 01:30Z, read as 03:30 CEST.
        assert_eq!(berlin.date(2024, 3, 31, 2, 30, 0), 1_711_848_600);
        // Hour 24 rolls into the next day.
        assert_eq!(
            Zone::UTC.date(2024, 1, 1, 24, 0, 0),
            Zone::UTC.date(2024, 1, 2, 0, 0, 0)
        );
    }
}
