//! Expression-level parsing: macros, `@every` durations, field count and
//! time zone. Individual fields are parsed in `fields.rs`.

use chrono_tz::Tz;

use crate::Trigger;
use crate::civil::days_in_month;
use crate::describe::impossible_dates;
use crate::error::{Field, ParseError};
use crate::fields::{ParsedField, parse_field};
use crate::hash::{MAX_DATE_COMBINATIONS, combinations};
use crate::next::Spec;
use crate::schedule::CronSchedule;

/// `key` chooses the values of `H` items; an expression with `H` needs one.
pub(crate) fn parse_trigger(expr: &str, tz: &str, key: Option<u64>) -> Result<Trigger, ParseError> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err(ParseError::Empty);
    }
    if expr.starts_with('@') {
        return parse_macro(expr, tz);
    }
    let fields = compile(expr)?;
    let key = match (fields.iter().find(|f| !f.hashed.is_empty()), key) {
        (Some(f), None) => return Err(ParseError::HashKeyRequired { field: f.field }),
        (Some(_), Some(key)) => Some(key),
        (None, _) => None,
    };
    let spec = resolve(&fields, key)?;
    Ok(Trigger::Cron(CronSchedule::new(expr, parse_tz(tz)?, spec, key)))
}

/// The date fields, by index in a compiled expression.
const DATE_FIELDS: [usize; 3] = [3, 4, 5];

/// The expression compiled for `key`, refused if it never fires for some key:
/// whether an expression is accepted must not depend on the job.
fn resolve(fields: &[ParsedField; 6], key: Option<u64>) -> Result<Spec, ParseError> {
    let bits = fields.each_ref().map(|f| f.resolve_for_key(key.unwrap_or(0)));
    let spec = Spec::new(fields, bits);
    if DATE_FIELDS.iter().all(|&i| fields[i].hashed.is_empty()) {
        if !spec.can_fire() {
            return Err(ParseError::NeverFires { reason: impossible_dates(&spec) });
        }
    } else if let Some(never) = choice_that_never_fires(fields, bits)? {
        let reason = format!("{} (for the values H picks for some jobs)", impossible_dates(&never));
        return Err(ParseError::NeverFires { reason });
    }
    Ok(spec)
}

/// The expression compiled with choices of the date fields' `H` items for
/// which it never fires, if there are any. (`bits`: any key's values.)
fn choice_that_never_fires(fields: &[ParsedField; 6], bits: [u64; 6]) -> Result<Option<Spec>, ParseError> {
    let [.., dom, month, dow] = fields;
    let too_many = || ParseError::TooManyHashChoices { max: MAX_DATE_COMBINATIONS };
    if !dom.star && !dow.star {
        // Either field may match (Vixie): every month has each weekday, and
        // each `d#5` or `dL` in some year, so the day-of-week side always fires.
        return Ok(None);
    }
    let weekday_forms = dom.dom_forms.last_weekday || dom.dom_forms.nearest_weekday != 0;
    if dow.dow_forms.is_empty() && !weekday_forms {
        // Both fields must match, but every date falls on every weekday in
        // some year (`LW` and `nW` only on Monday to Friday: not here), so
        // whether it fires is whether the day-of-month side has a day in some
        // month it allows. The hardest choices: each `H` item's latest first
        // day, and the months whose longest is shortest.
        let mut worst = bits;
        worst[3] = dom.resolve(|item| item.choices() - 1);
        let longest = |months: &u64| {
            (1..=12u32)
                .filter(|m| months & (1 << m) != 0)
                .map(|m| if m == 2 { 29 } else { days_in_month(2001, m) })
                .max()
        };
        worst[4] = month
            .outcomes(MAX_DATE_COMBINATIONS)
            .ok_or_else(too_many)?
            .into_iter()
            .min_by_key(longest)
            .unwrap_or(bits[4]);
        let spec = Spec::new(fields, worst);
        return Ok((!spec.can_fire()).then_some(spec));
    }
    // Rare (both must match, and a form that depends on weekdays): try them all.
    let outcomes = DATE_FIELDS
        .iter()
        .map(|&i| fields[i].outcomes(MAX_DATE_COMBINATIONS))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(too_many)?;
    for dates in combinations(&outcomes, MAX_DATE_COMBINATIONS).ok_or_else(too_many)? {
        let mut other = bits;
        for (&i, v) in DATE_FIELDS.iter().zip(dates) {
            other[i] = v;
        }
        let spec = Spec::new(fields, other);
        if !spec.can_fire() {
            return Ok(Some(spec));
        }
    }
    Ok(None)
}

/// An IANA zone name; empty means UTC. An unknown one is refused with the closest names.
pub fn parse_tz(name: &str) -> Result<Tz, ParseError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    name.parse().map_err(|_| {
        let close = zone_suggestions(name);
        let hint =
            if close.is_empty() { String::new() } else { format!(": did you mean {}?", close.join(" or ")) };
        ParseError::UnknownTimeZone { name: name.to_string(), hint }
    })
}

/// The IANA names closest to `name`, best first, at most three: the same name in another
/// case, then a city's (`Berlin` → `Europe/Berlin`, `new york` → `America/New_York`), then
/// names a typo or two away.
pub fn zone_suggestions(name: &str) -> Vec<&'static str> {
    let want = name.trim().replace(' ', "_").to_ascii_lowercase();
    let allowed = 1 + want.chars().count() / 4;
    let mut scored: Vec<(usize, &'static str)> = chrono_tz::TZ_VARIANTS
        .iter()
        .filter_map(|tz| {
            let full = tz.name();
            let lower = full.to_ascii_lowercase();
            let city = lower.rsplit('/').next().unwrap_or(&lower);
            let score = if lower == want {
                0
            } else if city == want {
                1
            } else {
                let d = edit_distance(city, &want).min(edit_distance(&lower, &want));
                if d > allowed {
                    return None;
                }
                1 + d
            };
            Some((score, full))
        })
        .collect();
    scored.sort();
    let best = scored.first().map_or(0, |(s, _)| *s);
    scored.into_iter().filter(|(s, _)| *s == best).take(3).map(|(_, n)| n).collect()
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

fn parse_macro(expr: &str, tz: &str) -> Result<Trigger, ParseError> {
    let (name, rest) = match expr.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim()),
        None => (expr, ""),
    };
    let fields = match name.to_ascii_lowercase().as_str() {
        "@every" => {
            let period_ms = parse_duration(rest)?;
            parse_tz(tz)?; // a bad zone is a mistake even where it does not matter
            return Ok(Trigger::Every { period_ms });
        }
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            return Err(ParseError::UnknownMacro { name: name.to_string() });
        }
    };
    if !rest.is_empty() {
        return Err(ParseError::MacroArgument { name: name.to_string() });
    }
    let spec = resolve(&compile(fields)?, None)?;
    Ok(Trigger::Cron(CronSchedule::new(expr, parse_tz(tz)?, spec, None)))
}

/// Parse 5 fields (minute hour dom month dow) or 6 (seconds first), seconds
/// first in the result.
fn compile(expr: &str) -> Result<[ParsedField; 6], ParseError> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let (second, rest) = match fields.len() {
        5 => ("0", &fields[..]),
        6 => (fields[0], &fields[1..]),
        got => return Err(ParseError::FieldCount { got }),
    };
    // The seconds field names itself in its errors; the others say the order.
    let second = parse_field(Field::Second, second)?;
    let parsed = (|| {
        Ok([
            second,
            parse_field(Field::Minute, rest[0])?,
            parse_field(Field::Hour, rest[1])?,
            parse_field(Field::DayOfMonth, rest[2])?,
            parse_field(Field::Month, rest[3])?,
            parse_field(Field::DayOfWeek, rest[4])?,
        ])
    })();
    parsed.map_err(|e| if fields.len() == 6 { ParseError::SixFields { inner: Box::new(e) } } else { e })
}

/// A Go-style duration such as `90s`, `1h30m`, `1.5m` or `2000ms`, in
/// milliseconds; it must come to a whole number of seconds, at least one.
pub(crate) fn parse_duration(input: &str) -> Result<i64, ParseError> {
    let bad = |reason: String| ParseError::InvalidDuration { input: input.to_string(), reason };
    if input.is_empty() {
        return Err(bad("missing duration, e.g. 90s, 5m or 1h30m".into()));
    }
    if input.contains(char::is_whitespace) {
        return Err(bad("no spaces allowed, e.g. 1h30m".into()));
    }
    // Exact arithmetic: the total is counted in units of 10^-18 ms so that
    // decimal fractions never round.
    const SCALE: u128 = 1_000_000_000_000_000_000;
    let mut total: u128 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let units = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(units);
        rest = tail;
        let unit_ms: u128 = match unit.to_ascii_lowercase().as_str() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(bad(format!("missing unit after {number:?} (use s, m, h or d)")));
            }
            _ => return Err(bad(format!("unknown unit {unit:?} (use s, m, h or d)"))),
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        let valid = !number.is_empty()
            && (!int.is_empty() || !frac.is_empty())
            && !frac.contains('.')
            && int.len() <= 20
            && frac.len() <= 18;
        if !valid {
            return Err(bad(format!("invalid number {number:?}")));
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad(format!("invalid number {number:?}")))?
        };
        let frac_scaled: u128 = if frac.is_empty() {
            0
        } else {
            let f: u128 = frac.parse().map_err(|_| bad(format!("invalid number {number:?}")))?;
            f * 10u128.pow(18 - frac.len() as u32)
        };
        let part = int
            .checked_mul(SCALE)
            .and_then(|i| i.checked_add(frac_scaled))
            .and_then(|v| v.checked_mul(unit_ms))
            .and_then(|v| total.checked_add(v));
        total = part.ok_or_else(|| ParseError::PeriodTooLong { input: input.to_string() })?;
    }
    let ms = total / SCALE;
    if ms < 1_000 {
        return Err(ParseError::PeriodTooShort { input: input.to_string() });
    }
    if !total.is_multiple_of(SCALE * 1_000) {
        return Err(ParseError::PeriodNotWholeSeconds { input: input.to_string() });
    }
    i64::try_from(ms).map_err(|_| ParseError::PeriodTooLong { input: input.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("1.5m"), Ok(90_000));
        assert_eq!(parse_duration("2000ms"), Ok(2_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("1H"), Ok(3_600_000));
        assert_eq!(parse_duration("1s"), Ok(1_000));
        let msg = |s| parse_duration(s).unwrap_err().to_string();
        assert_eq!(msg("500ms"), "period must be at least 1 second, got 500ms");
        assert_eq!(msg("0s"), "period must be at least 1 second, got 0s");
        assert_eq!(msg("1500ms"), "period must be a whole number of seconds, got 1500ms");
        assert_eq!(msg("1.5s"), "period must be a whole number of seconds, got 1.5s");
        assert_eq!(msg("90x"), "@every: invalid duration \"90x\": unknown unit \"x\" (use s, m, h or d)");
        assert_eq!(
            msg("90"),
            "@every: invalid duration \"90\": missing unit after \"90\" (use s, m, h or d)"
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration(".s").is_err());
        assert!(parse_duration("1..5s").is_err());
        assert!(parse_duration("1 h").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
