//! Parsing of a single cron field into a bitset (bit `v` set = value `v` allowed).
//!
//! Every field fits in a `u64` (seconds and minutes use bits 0-59), which
//! makes "next allowed value at or after v" a shift plus `trailing_zeros`.
//! Besides the bits, a field keeps what a bitset cannot say yet: its `H`
//! items (chosen per key, `hash.rs`) and Quartz day forms (chosen per month,
//! `quartz.rs`).

use crate::error::{Field, ParseError};
use crate::hash::{self, HashItem};
use crate::quartz::{DomForms, DowForms};

const MONTH_NAMES: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One parsed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedField {
    pub field: Field,
    /// Values allowed by the plain items. For day-of-week, 7 is already
    /// folded into 0 (Sunday).
    pub bits: u64,
    /// The field text starts with `*` or `?`. Vixie cron treats such a
    /// day-of-month/day-of-week field as unrestricted for the day rule, even
    /// when a step narrows it (`*/2`).
    pub star: bool,
    /// The field text starts with `*` (`*`, `*/15`), as Vixie cron's
    /// `MIN_STAR`/`HR_STAR`: in the second, minute or hour field it makes the
    /// expression a cadence rather than fixed times of day, which changes how
    /// daylight-saving transitions are handled. A step without `*`
    /// (`5-40/5`, `1/2`, `H/15`) is a list of fixed times.
    pub cadence: bool,
    /// The `H` items, in order.
    pub hashed: Vec<HashItem>,
    pub dom_forms: DomForms,
    pub dow_forms: DowForms,
}

impl ParsedField {
    /// The allowed values once each `H` item has made its choice
    /// (`pick(item)`, below `item.choices()`).
    pub fn resolve(&self, mut pick: impl FnMut(&HashItem) -> u32) -> u64 {
        let bits = self.hashed.iter().fold(self.bits, |bits, item| bits | item.bits(pick(item)));
        fold_sunday(self.field, bits)
    }

    /// The allowed values for a key.
    pub fn resolve_for_key(&self, key: u64) -> u64 {
        self.resolve(|item| item.pick(self.field, key))
    }

    /// Every distinct value set the field can resolve to over all keys, or
    /// `None` when its `H` items have more than `max` combinations.
    pub fn outcomes(&self, max: usize) -> Option<Vec<u64>> {
        let choices: Vec<Vec<u64>> =
            self.hashed.iter().map(|item| (0..u64::from(item.choices())).collect()).collect();
        let mut out: Vec<u64> = hash::combinations(&choices, max)?
            .into_iter()
            .map(|picks| {
                let mut picks = picks.into_iter();
                self.resolve(|_| picks.next().unwrap_or(0) as u32)
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        Some(out)
    }
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

/// 7 is another name for Sunday (0) in the day-of-week field.
fn fold_sunday(field: Field, bits: u64) -> u64 {
    if field == Field::DayOfWeek && bits & (1 << 7) != 0 { (bits & !(1 << 7)) | 1 } else { bits }
}

/// Parse one field, e.g. `1,2,5-7`, `*/15`, `MON-FRI`, `H(0-29)`, `L`, `FRI#3`.
pub(crate) fn parse_field(field: Field, text: &str) -> Result<ParsedField, ParseError> {
    let mut parsed = ParsedField {
        field,
        bits: 0,
        star: text.starts_with('*') || text.starts_with('?'),
        cadence: text.starts_with('*'),
        hashed: Vec::new(),
        dom_forms: DomForms::default(),
        dow_forms: DowForms::default(),
    };
    for item in text.split(',') {
        parse_item(&mut parsed, item)?;
    }
    parsed.bits = fold_sunday(field, parsed.bits);
    Ok(parsed)
}

/// One list item: `*`, `?`, `v`, `a-b`, each optionally followed by `/step`;
/// an `H` form; or a Quartz day form.
fn parse_item(parsed: &mut ParsedField, item: &str) -> Result<(), ParseError> {
    let field = parsed.field;
    if item.is_empty() {
        return Err(ParseError::EmptyItem { field });
    }
    if item.starts_with(['H', 'h']) {
        let index = parsed.hashed.len() as u32;
        parsed.hashed.push(parse_hash(field, item, index)?);
        return Ok(());
    }
    match field {
        Field::DayOfMonth if parse_dom_form(&mut parsed.dom_forms, item)? => return Ok(()),
        Field::DayOfWeek if parse_dow_form(&mut parsed.dow_forms, item)? => return Ok(()),
        _ => {}
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
        parse_range(field, a, b, item)?
    } else {
        let start = parse_value(field, range)?;
        // `10/5` means 10-max/5, as in Vixie cron.
        (start, if step.is_some() { field.max() } else { start })
    };
    for v in (start..=end).step_by(step.unwrap_or(1) as usize) {
        parsed.bits |= 1 << v;
    }
    Ok(())
}

/// `a-b` of a range item (`item` is the whole item, for messages).
fn parse_range(field: Field, a: &str, b: &str, item: &str) -> Result<(u32, u32), ParseError> {
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
    Ok((start, end))
}

/// `H`, `H(a-b)`, `H/n` or `H(a-b)/n`.
fn parse_hash(field: Field, item: &str, index: u32) -> Result<HashItem, ParseError> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(field, step)?)),
        None => (item, None),
    };
    let (start, end) = match &range[1..] {
        "" => hash::default_range(field),
        inner => {
            let bad = || ParseError::InvalidForm {
                field,
                token: item.to_string(),
                reason: "expected H, H(a-b), H/n or H(a-b)/n".into(),
            };
            let inner = inner.strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(bad)?;
            let (a, b) = inner.split_once('-').ok_or_else(bad)?;
            parse_range(field, a, b, item)?
        }
    };
    let hashed = HashItem { index, start, end, step };
    hash::check_step(field, item, &hashed)?;
    Ok(hashed)
}

/// `L`, `L-n`, `LW` or `nW`, added to `forms`; `false` when `item` is none of them.
fn parse_dom_form(forms: &mut DomForms, item: &str) -> Result<bool, ParseError> {
    let field = Field::DayOfMonth;
    let upper = item.to_ascii_uppercase();
    let form_error =
        |reason: &str| ParseError::InvalidForm { field, token: item.to_string(), reason: reason.to_string() };
    if upper == "L" {
        forms.before_last |= 1;
    } else if upper == "LW" {
        forms.last_weekday = true;
    } else if let Some(offset) = upper.strip_prefix("L-") {
        match parse_number(offset) {
            Some(n) if n <= 30 => forms.before_last |= 1 << n,
            _ => return Err(form_error("L-n takes a number of days n from 0 to 30, e.g. L-3")),
        }
    } else if let Some(day) = upper.strip_suffix('W') {
        if day.is_empty() || !day.bytes().all(|b| b.is_ascii_digit()) {
            return Err(form_error("W follows a day of the month, e.g. 15W"));
        }
        forms.nearest_weekday |= 1 << parse_value(field, day)?;
    } else if upper.starts_with('L') || upper.ends_with('W') || upper.contains('#') {
        return Err(form_error("expected L, L-n, LW or nW in the day-of-month field (# is for day-of-week)"));
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// `dL` or `d#k` (d a weekday number or name), added to `forms`; `false`
/// when `item` is neither.
fn parse_dow_form(forms: &mut DowForms, item: &str) -> Result<bool, ParseError> {
    let field = Field::DayOfWeek;
    let form_error =
        |reason: &str| ParseError::InvalidForm { field, token: item.to_string(), reason: reason.to_string() };
    if let Some((day, k)) = item.split_once('#') {
        let weekday = parse_value(field, day)? % 7;
        match parse_number(k) {
            Some(k @ 1..=5) => forms.nth[k as usize - 1] |= 1 << weekday,
            _ => return Err(form_error("the number after # is the week of the month, 1 to 5")),
        }
    } else if let Some(day) = item.strip_suffix(['L', 'l']) {
        if day.is_empty() {
            return Err(form_error("L follows a weekday in this field, e.g. 5L or FRIL (the last Friday)"));
        }
        forms.last |= 1 << (parse_value(field, day)? % 7);
    } else if item.ends_with(['W', 'w']) {
        return Err(form_error("W is for the day-of-month field"));
    } else {
        return Ok(false);
    }
    Ok(true)
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

    #[test]
    fn hash_items() {
        let f = parse_field(Field::Minute, "H(0-29)/10,H,5").unwrap();
        assert_eq!(f.bits, 1 << 5);
        assert_eq!(
            f.hashed,
            [
                HashItem { index: 0, start: 0, end: 29, step: Some(10) },
                HashItem { index: 1, start: 0, end: 59, step: None },
            ]
        );
        assert!(!f.star && !f.cadence);
        assert_eq!(f.resolve(|item| item.choices() - 1), set(&[9, 19, 29, 59, 5]));
        // Bare H: day-of-month 1-28 (every month has them), day-of-week 0-6.
        let h = |field, text| parse_field(field, text).unwrap().hashed[0];
        assert_eq!((h(Field::DayOfMonth, "H").start, h(Field::DayOfMonth, "H").end), (1, 28));
        assert_eq!((h(Field::DayOfWeek, "h").start, h(Field::DayOfWeek, "h").end), (0, 6));
        assert_eq!((h(Field::DayOfWeek, "H(MON-FRI)").start, h(Field::DayOfWeek, "H(MON-FRI)").end), (1, 5));
        // A pick of 7 (Sunday) folds into 0.
        assert_eq!(parse_field(Field::DayOfWeek, "H(5-7)").unwrap().resolve(|_| 2), 1);
        assert_eq!(parse_field(Field::Hour, "H/4").unwrap().hashed[0].choices(), 4);
        assert_eq!(parse_field(Field::Hour, "H/4").unwrap().outcomes(100).unwrap().len(), 4);
        assert_eq!(parse_field(Field::Hour, "H,H").unwrap().outcomes(24 * 24).unwrap().len(), 24 * 25 / 2);
        assert_eq!(parse_field(Field::Hour, "H,H").unwrap().outcomes(100), None);
    }

    #[test]
    fn quartz_forms() {
        let dom = |text| parse_field(Field::DayOfMonth, text).unwrap();
        let f = dom("1,L,l-3,LW,15W,31w");
        assert_eq!(f.bits, 1 << 1);
        assert_eq!(
            f.dom_forms,
            DomForms { before_last: 1 | 1 << 3, last_weekday: true, nearest_weekday: 1 << 15 | 1 << 31 }
        );
        let dow = |text| parse_field(Field::DayOfWeek, text).unwrap().dow_forms;
        assert_eq!(dow("5L,friL,0l,7L").last, 1 << 5 | 1);
        assert_eq!(dow("5#3,FRI#3,sun#5,7#1").nth, [1, 0, 1 << 5, 0, 1]);
        assert_eq!(parse_field(Field::DayOfWeek, "1-5,5L").unwrap().bits, set(&[1, 2, 3, 4, 5]));
        let msg = |field, text| parse_field(field, text).unwrap_err().to_string();
        assert_eq!(
            msg(Field::DayOfMonth, "L-31"),
            "day-of-month field: invalid \"L-31\": L-n takes a number of days n from 0 to 30, e.g. L-3"
        );
        assert_eq!(
            msg(Field::DayOfMonth, "W"),
            "day-of-month field: invalid \"W\": W follows a day of the month, e.g. 15W"
        );
        assert_eq!(msg(Field::DayOfMonth, "32W"), "day-of-month field: value 32 out of range 1-31");
        assert_eq!(msg(Field::DayOfMonth, "0W"), "day-of-month field: value 0 out of range 1-31");
        assert!(msg(Field::DayOfMonth, "5#3").contains("# is for day-of-week"));
        assert!(msg(Field::DayOfMonth, "L/2").contains("expected L, L-n, LW or nW"));
        assert!(msg(Field::DayOfMonth, "1-5W").contains("W follows a day of the month"));
        assert!(msg(Field::DayOfWeek, "L").contains("L follows a weekday in this field, e.g. 5L or FRIL"));
        assert!(msg(Field::DayOfWeek, "5#6").contains("the number after # is the week of the month, 1 to 5"));
        assert!(msg(Field::DayOfWeek, "5#0").contains("1 to 5"));
        assert_eq!(msg(Field::DayOfWeek, "8#1"), "day-of-week field: value 8 out of range 0-7");
        assert_eq!(msg(Field::DayOfWeek, "FRX#1"), "day-of-week field: invalid value \"FRX\"");
        assert!(msg(Field::DayOfWeek, "5W").contains("W is for the day-of-month field"));
        assert_eq!(msg(Field::Minute, "L"), "minute field: invalid value \"L\"");
        assert_eq!(msg(Field::Hour, "5#1"), "hour field: invalid value \"5#1\"");
    }

    #[test]
    fn hash_errors() {
        let msg = |field, text| parse_field(field, text).unwrap_err().to_string();
        assert_eq!(
            msg(Field::Minute, "H(0-9)/20"),
            "minute field: invalid \"H(0-9)/20\": the step 20 is longer than the range 0-9"
        );
        assert_eq!(
            msg(Field::Hour, "H/30"),
            "hour field: invalid step \"30\" (must be a number from 1 to 23)"
        );
        assert_eq!(msg(Field::Minute, "H(30-10)"), "minute field: range 30-10 goes backwards");
        assert_eq!(msg(Field::Minute, "H(0-60)"), "minute field: value 60 out of range 0-59");
        for bad in ["H5", "H(5)", "H(1-5", "H()", "H-5", "HH"] {
            assert_eq!(
                msg(Field::Minute, bad),
                format!("minute field: invalid {bad:?}: expected H, H(a-b), H/n or H(a-b)/n")
            );
        }
        assert!(parse_field(Field::Minute, "H(-5)").is_err());
        assert!(parse_field(Field::Minute, "H/0").is_err());
    }
}
