//! The string fields of a `CalendarSpec` (and so of a cron string) turned into `Range`s,
//! as Temporal's `makeRange` turns them, errors and compact encoding included.
//!
//! A field is a comma-separated list of `*`, `x`, `x-z`, `x-z/y`, `x/y` (x to the maximum by
//! y) and `*/y`; months also by name and days of the week by name or as 7 for Sunday.

use chronicle_api::schedule::v1::{CalendarSpec, Range, StructuredCalendarSpec};

/// The earliest and latest years a calendar may name.
pub(crate) const MIN_YEAR: i64 = 2000;
pub(crate) const MAX_YEAR: i64 = 2100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Int,
    /// `*` alone is the empty list, which means every year.
    Year,
    /// Also month names by a prefix of at least three letters.
    Month,
    /// Also weekday names by a prefix of at least two letters.
    DayOfWeek,
}

/// How one field is read: its name in messages, the text an empty field stands for, and the
/// values it accepts (7 is accepted for Sunday).
struct Field {
    name: &'static str,
    default: &'static str,
    min: i64,
    max: i64,
    mode: Mode,
}

const SECOND: Field = Field {
    name: "Second",
    default: "0",
    min: 0,
    max: 59,
    mode: Mode::Int,
};
const MINUTE: Field = Field {
    name: "Minute",
    default: "0",
    min: 0,
    max: 59,
    mode: Mode::Int,
};
const HOUR: Field = Field {
    name: "Hour",
    default: "0",
    min: 0,
    max: 23,
    mode: Mode::Int,
};
const DAY_OF_WEEK: Field = Field {
    name: "DayOfWeek",
    default: "*",
    min: 0,
    max: 7,
    mode: Mode::DayOfWeek,
};
const DAY_OF_MONTH: Field = Field {
    name: "DayOfMonth",
    default: "*",
    min: 1,
    max: 31,
    mode: Mode::Int,
};
const MONTH: Field = Field {
    name: "Month",
    default: "*",
    min: 1,
    max: 12,
    mode: Mode::Month,
};
const YEAR: Field = Field {
    name: "Year",
    default: "*",
    min: MIN_YEAR,
    max: MAX_YEAR,
    mode: Mode::Year,
};

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// A `CalendarSpec` as a `StructuredCalendarSpec`. Every field is read and the errors of all
/// joined with ", ", in the order Temporal reads them.
pub(crate) fn calendar_to_structured(cal: &CalendarSpec) -> Result<StructuredCalendarSpec, String> {
    let mut errors = Vec::new();
    let mut read = |text: &str, field: &Field| {
        parse_field(text, field).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        })
    };
    let second = read(&cal.second, &SECOND);
    let minute = read(&cal.minute, &MINUTE);
    let hour = read(&cal.hour, &HOUR);
    let day_of_week = read(&cal.day_of_week, &DAY_OF_WEEK);
    let day_of_month = read(&cal.day_of_month, &DAY_OF_MONTH);
    let month = read(&cal.month, &MONTH);
    let year = read(&cal.year, &YEAR);
    if !errors.is_empty() {
        return Err(errors.join(", "));
    }
    Ok(StructuredCalendarSpec {
        second,
        minute,
        hour,
        day_of_month,
        month,
        year,
        day_of_week,
        comment: cal.comment.clone(),
    })
}

fn parse_field(text: &str, field: &Field) -> Result<Vec<Range>, String> {
    let text = match text.trim() {
        "" => field.default,
        t => t,
    };
    if text == "*" && field.mode == Mode::Year {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    for part in text.split(',') {
        parse_part(part, field, &mut ranges)?;
    }
    Ok(ranges)
}

/// One comma-separated item, appended to `ranges` (a day-of-week item may need two).
fn parse_part(part: &str, field: &Field, ranges: &mut Vec<Range>) -> Result<(), String> {
    let name = field.name;
    let (part, step) = match part.split_once('/') {
        None => (part, None),
        Some((_, step)) if step.contains('/') => {
            return Err(format!("{name} has too many slashes"));
        }
        Some((_, "")) => return Err(format!("{name} missing step value")),
        Some((value, step)) => (value, Some(atoi(step)?)),
    };
    if step.is_some_and(|s| s < 1) {
        return Err(format!("{name} has invalid Step"));
    }
    let (min, max) = (field.min, field.max);
    let (mut start, mut end) = (min, max);
    if part != "*" {
        if let Some((from, to)) = part.split_once('-') {
            if to.contains('-') {
                return Err(format!("{name} has too many dashes"));
            }
            start = parse_value(from, min, max, field.mode)
                .ok_or_else(|| format!("{name} Start is not in range [{min}-{max}]"))?;
            end = parse_value(to, start, max, field.mode).ok_or_else(|| {
                format!("{name} End is before Start or not in range [{min}-{max}]")
            })?;
        } else {
            start = parse_value(part, min, max, field.mode)
                .ok_or_else(|| format!("{name} is not in range [{min}-{max}]"))?;
            // With a step a single value runs to the maximum; without, it is itself.
            if step.is_none() {
                end = start;
            }
        }
    }
    let step = step.unwrap_or(1);
    if field.mode == Mode::DayOfWeek && end == 7 {
        // 7 is Sunday, which is 0. Ending the range at 6 loses nothing unless 7 itself was
        // one of the values and 0 is not already covered; then 0 is added as its own range.
        if (7 - start) % step == 0 && (step > 1 || start > 1) {
            ranges.push(Range {
                start: 0,
                end: 0,
                step: 0,
            });
            if start == 7 {
                return Ok(());
            }
        }
        end = 6;
    }
    ranges.push(compact(start, end, step));
    Ok(())
}

/// A range in Temporal's smallest encoding: end 0 when it equals start, step 0 when 1.
/// Values narrow to `i32` by wrapping, as Go's `int32()` conversion does.
fn compact(start: i64, end: i64, step: i64) -> Range {
    let end = if start == end { 0 } else { end };
    let step = if step == 1 { 0 } else { step };
    #[allow(clippy::cast_possible_truncation)]
    Range {
        start: start as i32,
        end: end as i32,
        step: step as i32,
    }
}

/// One value: a decimal integer, or a month or weekday name, within [min, max].
fn parse_value(text: &str, min: i64, max: i64, mode: Mode) -> Option<i64> {
    let named = match mode {
        Mode::Month if text.len() >= 3 => find_prefix(&MONTHS, text).map(|i| i + 1),
        Mode::DayOfWeek if text.len() >= 2 => find_prefix(&WEEKDAYS, text),
        _ => None,
    };
    let value = match named {
        Some(v) => v,
        None => text.parse::<i64>().ok()?,
    };
    (min..=max).contains(&value).then_some(value)
}

fn find_prefix(names: &[&str], text: &str) -> Option<i64> {
    let lower = text.to_lowercase();
    let index = names.iter().position(|n| n.starts_with(&lower))?;
    i64::try_from(index).ok()
}

/// Go's `strconv.Atoi`, with its error message.
fn atoi(text: &str) -> Result<i64, String> {
    text.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing \"{text}\": {why}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: i32, end: i32, step: i32) -> Range {
        Range { start, end, step }
    }

    fn dow(text: &str) -> Vec<Range> {
        parse_field(text, &DAY_OF_WEEK).unwrap()
    }

    #[test]
    fn defaults_for_empty_fields() {
        assert_eq!(parse_field("", &SECOND).unwrap(), vec![r(0, 0, 0)]);
        assert_eq!(parse_field("  ", &HOUR).unwrap(), vec![r(0, 0, 0)]);
        assert_eq!(parse_field("", &DAY_OF_MONTH).unwrap(), vec![r(1, 31, 0)]);
        assert_eq!(parse_field("", &MONTH).unwrap(), vec![r(1, 12, 0)]);
        assert_eq!(dow(""), vec![r(0, 6, 0)]);
        assert!(parse_field("", &YEAR).unwrap().is_empty());
        assert_eq!(parse_field("*/10", &YEAR).unwrap(), vec![r(2000, 2100, 10)]);
    }

    #[test]
    fn lists_ranges_steps() {
        let f = |t| parse_field(t, &MINUTE).unwrap();
        assert_eq!(
            f("1-5/2,8,10-11"),
            vec![r(1, 5, 2), r(8, 0, 0), r(10, 11, 0)]
        );
        assert_eq!(f("3/5"), vec![r(3, 59, 5)]);
        assert_eq!(f("*/15"), vec![r(0, 59, 15)]);
        assert_eq!(f("7-7"), vec![r(7, 0, 0)]);
        assert_eq!(f("+7"), vec![r(7, 0, 0)], "Go's Atoi takes a sign");
    }

    #[test]
    fn names() {
        let m = |t| parse_field(t, &MONTH).unwrap();
        assert_eq!(m("JAN-mar,Dec"), vec![r(1, 3, 0), r(12, 0, 0)]);
        assert_eq!(m("sept"), vec![r(9, 0, 0)]);
        assert!(
            parse_field("ja", &MONTH).is_err(),
            "month names need three letters"
        );
        assert_eq!(dow("mon-FRI"), vec![r(1, 5, 0)]);
        assert_eq!(dow("Tu,th"), vec![r(2, 0, 0), r(4, 0, 0)]);
        assert!(
            parse_field("s", &DAY_OF_WEEK).is_err(),
            "weekday names need two letters"
        );
    }

    #[test]
    fn sunday_as_seven() {
        assert_eq!(dow("7"), vec![r(0, 0, 0)]);
        assert_eq!(dow("0-7"), vec![r(0, 6, 0)]);
        assert_eq!(dow("1-7"), vec![r(1, 6, 0)]);
        assert_eq!(dow("5-7"), vec![r(0, 0, 0), r(5, 6, 0)]);
        assert_eq!(dow("1-7/2"), vec![r(0, 0, 0), r(1, 6, 2)]);
        assert_eq!(dow("3-7/3"), vec![r(3, 6, 3)]);
        assert_eq!(dow("*/2"), vec![r(0, 6, 2)]);
        assert_eq!(dow("fri-7"), vec![r(0, 0, 0), r(5, 6, 0)]);
    }

    #[test]
    fn errors_as_temporal_words_them() {
        let e = |t, f: &Field| parse_field(t, f).unwrap_err();
        assert_eq!(e("60", &MINUTE), "Minute is not in range [0-59]");
        assert_eq!(e("1/2/3", &MINUTE), "Minute has too many slashes");
        assert_eq!(e("1/", &MINUTE), "Minute missing step value");
        assert_eq!(e("1/0", &MINUTE), "Minute has invalid Step");
        assert_eq!(
            e("*/x", &MINUTE),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(e("1-2-3", &HOUR), "Hour has too many dashes");
        assert_eq!(e("x-3", &HOUR), "Hour Start is not in range [0-23]");
        assert_eq!(
            e("5-3", &HOUR),
            "Hour End is before Start or not in range [0-23]"
        );
        assert_eq!(
            e("sat-sun", &DAY_OF_WEEK),
            "DayOfWeek End is before Start or not in range [0-7]"
        );
        assert_eq!(e("1999", &YEAR), "Year is not in range [2000-2100]");
        assert_eq!(e("1,,2", &MINUTE), "Minute is not in range [0-59]");
    }

    #[test]
    fn all_field_errors_joined() {
        let cal = CalendarSpec {
            second: "61".into(),
            hour: "25".into(),
            month: "foo".into(),
            ..Default::default()
        };
        assert_eq!(
            calendar_to_structured(&cal).unwrap_err(),
            "Second is not in range [0-59], Hour is not in range [0-23], Month is not in range [1-12]"
        );
    }

    #[test]
    fn steps_narrow_like_go() {
        // 2^32 narrows to 0, which a Range reads as 1.
        assert_eq!(
            parse_field("*/4294967296", &MINUTE).unwrap(),
            vec![r(0, 59, 0)]
        );
    }
}
