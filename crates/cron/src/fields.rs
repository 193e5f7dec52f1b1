//! Parsing of a single cron field into a bitset (bit `v` set = value `v` allowed).
//!
//! Every field fits in a `u64` (seconds and minutes use bits 0-59), which
//! makes "next allowed value at or after v" a shift plus `trailing_zeros`.

use crate::error::{Field, ParseError};

const MONTH_NAMES: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One parsed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedField {
    /// Allowed values. For day-of-week, 7 is already folded into 0 (Sunday).
    pub bits: u64,
    /// The field text starts with `*` or `?`. Vixie cron treats such a
    /// day-of-month/day-of-week field as unrestricted for the day rule, even
    /// when a step narrows it (`*/2`).
    pub star: bool,
    /// The field text starts with `*` (`*`, `*/15`), as Vixie cron's
    /// `MIN_STAR`/`HR_STAR`: in the second, minute or hour field it makes the
    /// expression a cadence rather than fixed times of day, which changes how
    /// daylight-saving transitions are handled. A step without `*`
    /// (`5-40/5`, `1/2`) is a list of fixed times.
    pub cadence: bool,
}

/// The lowest set bit at or above `from`, if any.
#[inline]
pub(crate) fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask >> from;
    if rest == 0 { None } else { Some(from + rest.trailing_zeros()) }
}

/// Parse one field, e.g. `1,2,5-7`, `*/15`, `MON-FRI`.
pub(crate) fn parse_field(field: Field, text: &str) -> Result<ParsedField, ParseError> {
    let mut bits = 0u64;
    for item in text.split(',') {
        bits |= parse_item(field, item)?;
    }
    if field == Field::DayOfWeek && bits & (1 << 7) != 0 {
        bits = (bits & !(1 << 7)) | 1; // 7 is another name for Sunday
    }
    let star = text.starts_with('*') || text.starts_with('?');
    Ok(ParsedField { bits, star, cadence: text.starts_with('*') })
}

/// One list item: `*`, `?`, `v`, `a-b`, each optionally followed by `/step`.
fn parse_item(field: Field, item: &str) -> Result<u64, ParseError> {
    if item.is_empty() {
        return Err(ParseError::EmptyItem { field });
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(field, step)?)),
        None => (item, None),
    };
    let wildcard = range == "*" || (range == "?" && matches!(field, Field::DayOfMonth | Field::DayOfWeek));
    let (start, end) = if wildcard {
        if range == "?" && step.is_some() {
            return Err(invalid(field, item));
        }
        (field.min(), field.max())
    } else if let Some((a, b)) = range.split_once('-') {
        if a.is_empty() || b.is_empty() {
            return Err(invalid(field, item));
        }
        let start = parse_value(field, a)?;
        let mut end = parse_value(field, b)?;
        if field == Field::DayOfWeek && end == 0 && start > 0 && !b.starts_with('0') {
            end = 7; // a range ending in SUN ("FRI-SUN") means up to 7
        }
        if start > end {
            return Err(ParseError::ReversedRange { field, start, end });
        }
        (start, end)
    } else {
        let start = parse_value(field, range)?;
        // `10/5` means 10-max/5, as in Vixie cron.
        (start, if step.is_some() { field.max() } else { start })
    };
    let mut bits = 0u64;
    for v in (start..=end).step_by(step.unwrap_or(1) as usize) {
        bits |= 1 << v;
    }
    Ok(bits)
}

fn parse_step(field: Field, text: &str) -> Result<u32, ParseError> {
    let max = field.max();
    match parse_number(text) {
        Some(step) if (1..=max).contains(&step) => Ok(step),
        _ => Err(ParseError::InvalidStep { field, step: text.to_string(), max }),
    }
}

/// A number, or a month / weekday name in the fields that have names.
fn parse_value(field: Field, text: &str) -> Result<u32, ParseError> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match parse_number(text) {
            Some(v) if (field.min()..=field.max()).contains(&v) => Ok(v),
            _ => Err(ParseError::OutOfRange {
                field,
                value: text.to_string(),
                min: field.min(),
                max: field.max(),
            }),
        };
    }
    let (names, first): (&[&str], u32) = match field {
        Field::Month => (&MONTH_NAMES, 1),
        Field::DayOfWeek => (&DAY_NAMES, 0),
        _ => (&[], 0),
    };
    names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .map(|i| first + i as u32)
        .ok_or_else(|| invalid(field, text))
}

/// Decimal digits only; `None` for anything else or a value beyond `u32`.
fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn invalid(field: Field, token: &str) -> ParseError {
    ParseError::InvalidValue { field, token: token.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(field: Field, text: &str) -> u64 {
        parse_field(field, text).unwrap().bits
    }

    fn set(values: &[u32]) -> u64 {
        values.iter().fold(0, |acc, v| acc | 1 << v)
    }

    #[test]
    fn forms() {
        assert_eq!(bits(Field::Minute, "*"), (1 << 60) - 1);
        assert_eq!(bits(Field::Minute, "*/15"), set(&[0, 15, 30, 45]));
        assert_eq!(bits(Field::Minute, "5-40/5"), set(&[5, 10, 15, 20, 25, 30, 35, 40]));
        assert_eq!(bits(Field::Minute, "50/5"), set(&[50, 55]));
        assert_eq!(bits(Field::Hour, "1,2,5-7"), set(&[1, 2, 5, 6, 7]));
        assert_eq!(bits(Field::Month, "jan-Mar"), set(&[1, 2, 3]));
        assert_eq!(bits(Field::Month, "*/4"), set(&[1, 5, 9]));
        assert_eq!(bits(Field::DayOfWeek, "MON-fri"), set(&[1, 2, 3, 4, 5]));
        assert_eq!(bits(Field::DayOfWeek, "5-7"), set(&[0, 5, 6]));
        assert_eq!(bits(Field::DayOfWeek, "7"), set(&[0]));
        assert_eq!(bits(Field::DayOfWeek, "FRI-SUN"), set(&[0, 5, 6]));
        assert_eq!(bits(Field::DayOfWeek, "sat-sun"), set(&[0, 6]));
        assert_eq!(bits(Field::DayOfWeek, "SUN-SUN"), set(&[0]));
        assert_eq!(bits(Field::DayOfWeek, "SUN-TUE"), set(&[0, 1, 2]));
        assert_eq!(bits(Field::DayOfWeek, "?"), set(&[0, 1, 2, 3, 4, 5, 6]));
        assert_eq!(bits(Field::DayOfMonth, "?"), set(&(1..=31).collect::<Vec<_>>()));
        assert_eq!(bits(Field::Minute, "07"), set(&[7]));
    }

    #[test]
    fn flags() {
        let f = parse_field(Field::DayOfMonth, "*/2").unwrap();
        assert!(f.star && f.cadence);
        let f = parse_field(Field::DayOfMonth, "1-31").unwrap();
        assert!(!f.star && !f.cadence);
        // A step without `*` is fixed times (Vixie cron: not a "wildcard" job).
        let f = parse_field(Field::Hour, "2/3").unwrap();
        assert!(!f.star && !f.cadence);
        let f = parse_field(Field::Minute, "0-59/15").unwrap();
        assert!(!f.star && !f.cadence);
        let f = parse_field(Field::Minute, "*/15,7").unwrap();
        assert!(f.star && f.cadence);
    }

    #[test]
    fn errors() {
        let msg = |field, text| parse_field(field, text).unwrap_err().to_string();
        assert_eq!(msg(Field::Minute, "61"), "minute field: value 61 out of range 0-59");
        assert_eq!(msg(Field::DayOfMonth, "0"), "day-of-month field: value 0 out of range 1-31");
        assert_eq!(
            msg(Field::Minute, "*/0"),
            "minute field: invalid step \"0\" (must be a number from 1 to 59)"
        );
        assert_eq!(msg(Field::Minute, "1,,2"), "minute field: empty list item");
        assert_eq!(msg(Field::Hour, "5-1"), "hour field: range 5-1 goes backwards");
        assert_eq!(msg(Field::Hour, "MON"), "hour field: invalid value \"MON\"");
        assert_eq!(msg(Field::Minute, "?"), "minute field: invalid value \"?\"");
        assert_eq!(msg(Field::Minute, "-5"), "minute field: invalid value \"-5\"");
        assert_eq!(
            msg(Field::Minute, "99999999999999"),
            "minute field: value 99999999999999 out of range 0-59"
        );
        assert!(parse_field(Field::Month, "JANUARY").is_err());
        assert!(parse_field(Field::DayOfWeek, "8").is_err());
        assert_eq!(msg(Field::DayOfWeek, "5-0"), "day-of-week field: range 5-0 goes backwards");
        assert_eq!(msg(Field::DayOfWeek, "FRI-MON"), "day-of-week field: range 5-1 goes backwards");
        assert!(parse_field(Field::Minute, "1/").is_err());
        assert!(parse_field(Field::Minute, "1-2-3").is_err());
    }
}
