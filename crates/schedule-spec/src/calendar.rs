//! A structured calendar compiled for matching, and the search for its next matching second,
//! following Temporal's `compiledCalendar` step for step: which instants it finds around DST
//! changes is part of what a schedule means.
//!
//! Around DST changes Temporal's search (and so this one) behaves like this: a local time the
//! clocks skip never matches (a 02:30 daily calendar does not fire on a spring-forward day in
//! New York); a repeated local time matches on both its instants when the search walks
//! through the repeated hour from before it, which it does in zones west of UTC (01:30 fires
//! at both 01:30 EDT and 01:30 EST); east of UTC Go's resolution lands on the second instant
//! only (Berlin's repeated 02:30 fires once, at 02:30 CET).

use chronicle_api::schedule::v1::{Range, StructuredCalendarSpec};

use crate::END_OF_2100;
use crate::ranges::MAX_YEAR;
use crate::zone::{Zone, days_in_month};

/// The (start, end, step) a range stands for: end 0 or below start means start, and a step
/// of 0 means one. A negative step, which only an unvalidated exclusion can carry and which
/// would never end Temporal's loop, is read as one too.
fn span(r: &Range) -> (i64, i64, i64) {
    let start = i64::from(r.start);
    let end = i64::from(r.end).max(start);
    let step = if r.step <= 0 { 1 } else { i64::from(r.step) };
    (start, end, step)
}

/// The values 0..=63 of a list of ranges, as Temporal's bit set holds them (values beyond
/// never match).
#[derive(Clone, Copy, Debug)]
struct Bits(u64);

impl Bits {
    fn new(ranges: &[Range]) -> Bits {
        let mut bits = 0u64;
        for r in ranges {
            let (start, end, step) = span(r);
            // Begin at the first value of the range that is not negative.
            let mut v = if start >= 0 {
                start
            } else {
                start.rem_euclid(step)
            };
            while v <= end.min(63) {
                bits |= 1 << v;
                v += step;
            }
        }
        Bits(bits)
    }

    fn has(self, v: i64) -> bool {
        (0..64).contains(&v) && self.0 & (1 << v) != 0
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Years: no ranges means every year.
#[derive(Clone, Debug)]
struct Years(Vec<(i64, i64, i64)>);

impl Years {
    fn has(&self, year: i64) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|&(start, end, step)| {
                (start..=end).contains(&year) && (year - start) % step == 0
            })
    }
}

/// A structured calendar compiled against its zone.
#[derive(Clone, Debug)]
pub(crate) struct Calendar {
    zone: Zone,
    year: Years,
    month: Bits,
    day_of_month: Bits,
    day_of_week: Bits,
    hour: Bits,
    minute: Bits,
    second: Bits,
}

impl Calendar {
    pub(crate) fn new(cal: &StructuredCalendarSpec, zone: Zone) -> Calendar {
        Calendar {
            zone,
            year: Years(cal.year.iter().map(span).collect()),
            month: Bits::new(&cal.month),
            day_of_month: Bits::new(&cal.day_of_month),
            day_of_week: Bits::new(&cal.day_of_week),
            hour: Bits::new(&cal.hour),
            minute: Bits::new(&cal.minute),
            second: Bits::new(&cal.second),
        }
    }

    /// A field with no values matches nothing, so neither does the calendar.
    fn matches_nothing(&self) -> bool {
        [
            self.month,
            self.day_of_month,
            self.day_of_week,
            self.hour,
            self.minute,
            self.second,
        ]
        .iter()
        .any(|b| b.is_empty())
    }

    /// Whether the Unix second matches, read in the calendar's zone.
    pub(crate) fn matches(&self, unix: i64) -> bool {
        let c = self.zone.civil(unix);
        self.year.has(c.year)
            && self.month.has(c.month)
            && self.day_of_month.has(c.day)
            && self.day_of_week.has(c.weekday)
            && self.hour.has(c.hour)
            && self.minute.has(c.minute)
            && self.second.has(c.second)
    }

    /// The first matching Unix second after `after`, up to the end of year 2100.
    pub(crate) fn next(&self, after: i64) -> Option<i64> {
        // Past 2100 nothing matches; stopping early also keeps the arithmetic far from
        // overflow for absurd start times.
        if self.matches_nothing() || after >= END_OF_2100 {
            return None;
        }
        let mut cursor = Cursor::after(self.zone, after);
        loop {
            cursor.carry(self.zone);
            if cursor.year > MAX_YEAR {
                return None;
            }
            if !cursor.seek(self) {
                continue;
            }
            let t = self.zone.date(
                cursor.year,
                cursor.month,
                cursor.day,
                cursor.hour,
                cursor.minute,
                cursor.second,
            );
            // A skipped local time resolves to an instant whose wall clock shows another
            // hour: none of that hour exists, so go on from the next.
            if self.zone.civil(t).hour != cursor.hour {
                cursor.next_hour();
                continue;
            }
            return Some(t + cursor.repeat);
        }
    }
}

/// Local wall-clock fields being advanced towards a match. Fields may run one past their
/// range until `carry` normalizes them.
struct Cursor {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    /// 3600 while the cursor is in the second copy of an hour that DST repeats: the wall
    /// clock resolves to the first copy, so the match is an hour later than it.
    repeat: i64,
}

impl Cursor {
    /// The second after `after`, in local fields.
    fn after(zone: Zone, after: i64) -> Cursor {
        let c = zone.civil(after);
        // An hour ago showed the same hour: we are in the second copy of a repeated hour.
        let repeat = if zone.civil(after - 3600).hour == c.hour {
            3600
        } else {
            0
        };
        Cursor {
            year: c.year,
            month: c.month,
            day: c.day,
            hour: c.hour,
            minute: c.minute,
            second: c.second + 1,
            repeat,
        }
    }

    fn next_hour(&mut self) {
        (self.hour, self.minute, self.second) = (self.hour + 1, 0, 0);
    }

    fn next_day(&mut self) {
        (self.day, self.hour, self.minute, self.second, self.repeat) = (self.day + 1, 0, 0, 0, 0);
    }

    /// Normalizes overflowing fields, from seconds up. Leaving an hour whose successor
    /// begins two hours after it means DST repeats that hour: the cursor then walks its
    /// second copy before moving on.
    fn carry(&mut self, zone: Zone) {
        if self.second >= 60 {
            (self.minute, self.second) = (self.minute + 1, 0);
        }
        if self.minute >= 60 {
            let this_hour = zone.date(self.year, self.month, self.day, self.hour, 0, 0);
            let next_hour = zone.date(self.year, self.month, self.day, self.hour + 1, 0, 0);
            if self.repeat == 0 && next_hour - this_hour > 3600 {
                (self.minute, self.repeat) = (0, 3600);
            } else {
                (self.hour, self.minute, self.repeat) = (self.hour + 1, 0, 0);
            }
        }
        if self.hour >= 24 {
            (self.day, self.hour) = (self.day + 1, 0);
        }
        if self.day > days_in_month(self.month, self.year) {
            (self.month, self.day) = (self.month + 1, 1);
        }
        if self.month > 12 {
            (self.year, self.month) = (self.year + 1, 1);
        }
    }

    /// Advances each field, outermost first, to its next matching value. Returns false when
    /// a field ran past its range and the cursor must be carried again.
    fn seek(&mut self, cal: &Calendar) -> bool {
        if !cal.year.has(self.year) {
            *self = Cursor {
                year: self.year + 1,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                repeat: 0,
            };
            return false;
        }
        while !cal.month.has(self.month) {
            (
                self.month,
                self.day,
                self.hour,
                self.minute,
                self.second,
                self.repeat,
            ) = (self.month + 1, 1, 0, 0, 0, 0);
            if self.month > 12 {
                return false;
            }
        }
        while !self.day_matches(cal) {
            self.next_day();
            if self.day > days_in_month(self.month, self.year) {
                return false;
            }
        }
        while !cal.hour.has(self.hour) {
            self.next_hour();
            self.repeat = 0;
            if self.hour >= 24 {
                return false;
            }
        }
        while !cal.minute.has(self.minute) {
            (self.minute, self.second) = (self.minute + 1, 0);
            if self.minute >= 60 {
                return false;
            }
        }
        while !cal.second.has(self.second) {
            self.second += 1;
            if self.second >= 60 {
                return false;
            }
        }
        true
    }

    /// Day of month and day of week; the weekday is that of the instant the cursor's wall
    /// clock resolves to, as in Temporal.
    fn day_matches(&self, cal: &Calendar) -> bool {
        if !cal.day_of_month.has(self.day) {
            return false;
        }
        let t = cal.zone.date(
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        );
        cal.day_of_week.has(cal.zone.civil(t).weekday)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::days_from_civil;

    fn r(start: i32, end: i32) -> Range {
        Range {
            start,
            end,
            step: 0,
        }
    }

    /// A calendar firing daily at hh:mm:00 in a zone.
    fn daily(hour: i32, minute: i32, zone: &str) -> Calendar {
        let cal = StructuredCalendarSpec {
            second: vec![r(0, 0)],
            minute: vec![r(minute, 0)],
            hour: vec![r(hour, 0)],
            day_of_month: vec![r(1, 31)],
            month: vec![r(1, 12)],
            day_of_week: vec![r(0, 6)],
            ..Default::default()
        };
        Calendar::new(&cal, Zone::load(zone).unwrap())
    }

    fn utc(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    fn run(cal: &Calendar, from: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..n {
            let Some(next) = cal.next(t) else { break };
            out.push(next);
            t = next;
        }
        out
    }

    #[test]
    fn bits_and_years() {
        let b = Bits::new(&[
            Range {
                start: 1,
                end: 9,
                step: 4,
            },
            r(63, 70),
            Range {
                start: -5,
                end: 6,
                step: 5,
            },
        ]);
        let set: Vec<i64> = (0..70).filter(|&v| b.has(v)).collect();
        assert_eq!(set, vec![0, 1, 5, 9, 63]);
        let y = Years(vec![span(&Range {
            start: 2024,
            end: 2030,
            step: 3,
        })]);
        assert!(y.has(2027) && !y.has(2028) && Years(vec![]).has(1990));
    }

    #[test]
    fn skipped_time_does_not_fire() {
        // Observed on Temporal 1.32: 02:30 New York, from 2024-03-09: no run on the 10th.
        let got = run(&daily(2, 30, "America/New_York"), utc(2024, 3, 9, 0, 0), 3);
        assert_eq!(
            got,
            vec![
                utc(2024, 3, 9, 7, 30),
                utc(2024, 3, 11, 6, 30),
                utc(2024, 3, 12, 6, 30)
            ]
        );
    }

    #[test]
    fn repeated_time_fires_twice_west_of_utc() {
        // Observed on Temporal 1.32: 01:30 New York fires at 01:30 EDT and at 01:30 EST.
        let got = run(&daily(1, 30, "America/New_York"), utc(2024, 11, 2, 0, 0), 4);
        let want = [
            utc(2024, 11, 2, 5, 30),
            utc(2024, 11, 3, 5, 30),
            utc(2024, 11, 3, 6, 30),
            utc(2024, 11, 4, 6, 30),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn repeated_time_fires_once_east_of_utc() {
        // Observed on Temporal 1.32: 02:30 Berlin fires only at 02:30 CET on 2024-10-27.
        let got = run(&daily(2, 30, "Europe/Berlin"), utc(2024, 10, 26, 0, 0), 3);
        assert_eq!(
            got,
            vec![
                utc(2024, 10, 26, 0, 30),
                utc(2024, 10, 27, 1, 30),
                utc(2024, 10, 28, 1, 30)
            ]
        );
    }

    #[test]
    fn hourly_through_fall_back() {
        let mut cal = daily(0, 0, "America/New_York");
        cal.hour = Bits::new(&[r(0, 23)]);
        let got = run(&cal, utc(2024, 11, 3, 3, 30), 4);
        // 00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST.
        assert_eq!(
            got,
            vec![
                utc(2024, 11, 3, 4, 0),
                utc(2024, 11, 3, 5, 0),
                utc(2024, 11, 3, 6, 0),
                utc(2024, 11, 3, 7, 0)
            ]
        );
    }

    #[test]
    fn matches_in_zone() {
        let cal = daily(9, 0, "Asia/Tokyo");
        assert!(cal.matches(utc(2024, 5, 1, 0, 0)));
        assert!(!cal.matches(utc(2024, 5, 1, 0, 0) + 1));
        assert!(!cal.matches(utc(2024, 5, 1, 9, 0)));
    }

    #[test]
    fn ends_with_2100() {
        let mut cal = daily(0, 0, "UTC");
        cal.year = Years(vec![(2100, 2100, 1)]);
        assert_eq!(cal.next(0), Some(utc(2100, 1, 1, 0, 0)));
        assert_eq!(cal.next(utc(2100, 12, 31, 0, 0)), None);
        cal.second = Bits::new(&[]);
        assert_eq!(cal.next(0), None);
    }

    #[test]
    fn leap_days_only() {
        let mut cal = daily(12, 0, "UTC");
        cal.day_of_month = Bits::new(&[r(29, 0)]);
        cal.month = Bits::new(&[r(2, 0)]);
        assert_eq!(
            run(&cal, utc(2024, 3, 1, 0, 0), 2),
            vec![utc(2028, 2, 29, 12, 0), utc(2032, 2, 29, 12, 0)]
        );
    }
}
