//! Plain-English descriptions of triggers, built from the compiled bitsets
//! (not the text) so that equivalent spellings read the same. Shapes that do
//! not phrase well fall back to quoting the expression: a clumsy but exact
//! description beats a fluent wrong one.

use chrono::DateTime;

use crate::Trigger;
use crate::civil::days_in_month;
use crate::next::Spec;
use crate::schedule::CronSchedule;

const MONTHS: [&str; 13] = [
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Fixed-time expressions with up to this many times a day list them all.
const MAX_LISTED_TIMES: usize = 4;

pub(crate) fn describe(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Every { period_ms } => describe_period(*period_ms),
        Trigger::Once { at_ms } => match DateTime::from_timestamp_millis(*at_ms) {
            Some(at) if at_ms % 1000 == 0 => {
                format!("once at {} UTC", at.format("%Y-%m-%d %H:%M:%S"))
            }
            Some(at) => format!("once at {} UTC", at.format("%Y-%m-%d %H:%M:%S%.3f")),
            None => format!("once at {at_ms} ms after the Unix epoch"),
        },
        Trigger::Cron(schedule) => describe_cron(schedule)
            .unwrap_or_else(|| format!("cron {:?} in {}", schedule.expression(), schedule.timezone())),
        Trigger::Never => "manually: when run now, or after the jobs it is chained to".into(),
    }
}

fn describe_period(ms: i64) -> String {
    if ms <= 0 || ms % 1000 != 0 {
        return format!("every {ms} milliseconds");
    }
    let secs = ms / 1000;
    let (n, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second")]
        .into_iter()
        .find(|(size, _)| secs % size == 0)
        .map(|(size, unit)| (secs / size, unit))
        .unwrap_or((secs, "second"));
    if n == 1 { format!("every {unit}") } else { format!("every {n} {unit}s") }
}

/// How the times of day read.
enum Times {
    /// A short list of fixed times: "at 09:00 and 17:00".
    At(String),
    /// A cadence: "every 15 minutes".
    Every(String),
}

fn describe_cron(schedule: &CronSchedule) -> Option<String> {
    let spec = &schedule.spec;
    let times = describe_times(spec)?;
    let mut days = describe_days(spec)?;
    // The day rule reduces to the day-of-month alone when the day-of-week
    // allows every day and either field starts with `*` (AND rule).
    let dom_only = is_full(spec.dow, 0, 6) && (spec.dow_star || spec.dom_star);
    let one_date = dom_only
        && spec.dom_forms.is_empty()
        && values(spec.months, 1, 12).len() == 1
        && values(spec.dom, 1, 31).len() == 1;
    let months = if one_date {
        // "on January 1" rather than "on day 1 of the month in January".
        days = Some(format!(
            "on {} {}",
            MONTHS[spec.months.trailing_zeros() as usize],
            spec.dom.trailing_zeros()
        ));
        String::new()
    } else if is_full(spec.months, 1, 12) {
        String::new()
    } else {
        format!(
            " in {}",
            join(&runs(&values(spec.months, 1, 12), |m| MONTHS[m as usize].to_string(), 4)?, "and")
        )
    };
    let zone = schedule.timezone();
    Some(match (times, days) {
        (Times::At(at), None) => format!("every day {at}{months} {zone}"),
        (Times::At(at), Some(days)) => format!("{at} {days}{months} {zone}"),
        (Times::Every(every), None) => format!("{every}{months} {zone}"),
        (Times::Every(every), Some(days)) => format!("{every} {days}{months} {zone}"),
    })
}

fn describe_times(spec: &Spec) -> Option<Times> {
    let (secs, mins, hours) =
        (values(spec.seconds, 0, 59), values(spec.minutes, 0, 59), values(spec.hours, 0, 23));
    let with_seconds = secs != [0];
    let clock = |h: u32, m: u32, s: u32| {
        if with_seconds { format!("{h:02}:{m:02}:{s:02}") } else { format!("{h:02}:{m:02}") }
    };
    if secs.len() * mins.len() * hours.len() <= MAX_LISTED_TIMES {
        let mut times = Vec::new();
        for &h in &hours {
            for &m in &mins {
                for &s in &secs {
                    times.push(clock(h, m, s));
                }
            }
        }
        return Some(Times::At(format!("at {}", join(&times, "and"))));
    }
    let all_minutes = is_full(spec.minutes, 0, 59);
    let all_hours = is_full(spec.hours, 0, 23);
    if !with_seconds {
        // Minute-level cadences.
        let minute_step = even_step(spec.minutes, 0, 59);
        let phrase = match (minute_step, &mins[..]) {
            (Some(1), _) => "every minute".to_string(),
            (Some(n), _) => format!("every {n} minutes"),
            (None, [0]) => "every hour".to_string(),
            (None, _) if all_hours && mins.len() <= MAX_LISTED_TIMES => {
                let list = join(&mins.iter().map(u32::to_string).collect::<Vec<_>>(), "and");
                let noun = if mins.len() == 1 { "minute" } else { "minutes" };
                return Some(Times::Every(format!("every hour at {noun} {list}")));
            }
            (None, [m]) => {
                // One minute past each hour of a stepped or contiguous hour set.
                return match even_step(spec.hours, 0, 23) {
                    Some(n) if n > 1 => Some(Times::Every(format!("every {n} hours at minute {m}"))),
                    _ => contiguous(&hours).map(|(a, b)| {
                        Times::Every(format!("every hour from {} to {}", clock(a, *m, 0), clock(b, *m, 0)))
                    }),
                };
            }
            _ => return None,
        };
        if all_hours {
            return Some(Times::Every(phrase));
        }
        if let (Some(n), [0]) = (even_step(spec.hours, 0, 23), &mins[..]) {
            return Some(Times::Every(format!("every {n} hours")));
        }
        let (a, b) = contiguous(&hours)?;
        let last = *mins.last()?;
        return Some(Times::Every(format!(
            "{phrase} from {} to {}",
            clock(a, mins[0], 0),
            clock(b, last, 0)
        )));
    }
    // Second-level cadences are only phrased when they run all day.
    match even_step(spec.seconds, 0, 59) {
        Some(1) if all_minutes && all_hours => Some(Times::Every("every second".into())),
        Some(n) if all_minutes && all_hours => Some(Times::Every(format!("every {n} seconds"))),
        _ => None,
    }
}

/// The day phrase ("on Monday through Friday"), `None` inside for every day;
/// the outer `None` means "too irregular to phrase".
#[allow(clippy::option_option)]
fn describe_days(spec: &Spec) -> Option<Option<String>> {
    // A full plain field makes its forms redundant.
    let all_dom = is_full(spec.dom, 1, 31);
    let all_dow = is_full(spec.dow, 0, 6);
    let dom = || {
        let days = values(spec.dom, 1, 31);
        let mut parts = Vec::new();
        if !days.is_empty() {
            let noun = if days.len() == 1 { "day" } else { "days" };
            parts.push(format!("{noun} {}", join(&runs(&days, |d| d.to_string(), 4)?, "and")));
        }
        parts.extend(dom_forms(spec));
        Some(format!("on {} of the month", join(&parts, "and")))
    };
    let dow = |conjunction: &str| {
        // Monday first reads naturally ("Saturday and Sunday").
        let mut days: Vec<u32> = values(spec.dow, 0, 6).into_iter().map(|d| (d + 6) % 7).collect();
        days.sort_unstable();
        let mut names = runs(&days, |d| WEEKDAYS[((d + 1) % 7) as usize].to_string(), 7)?;
        let forms = dow_forms(spec);
        if forms.is_empty() {
            return Some(join(&names, conjunction));
        }
        names.extend(forms);
        Some(format!("{} of the month", join(&names, conjunction)))
    };
    let either_star = spec.dom_star || spec.dow_star;
    Some(match (all_dom, all_dow) {
        (true, true) => None,
        // Vixie rule: when both fields are restricted (neither starts with
        // `*`), a full one makes every day match.
        (true, false) | (false, true) if !either_star => None,
        (true, false) => Some(format!("on {}", dow("and")?)),
        (false, true) => Some(dom()?),
        // "if it falls on the last Friday of the month" would mislead: it is
        // not a weekday.
        (false, false) if either_star && !spec.dow_forms.is_empty() => return None,
        (false, false) if either_star => Some(format!("{} if it falls on {}", dom()?, dow("or")?)),
        (false, false) => Some(format!("{} and on {}", dom()?, dow("and")?)),
    })
}

/// "the last day", "the 3rd day before the last day", "the last weekday",
/// "the weekday nearest day 15".
fn dom_forms(spec: &Spec) -> Vec<String> {
    let forms = &spec.dom_forms;
    let mut parts: Vec<String> = values(forms.before_last.into(), 0, 30)
        .into_iter()
        .map(|n| match n {
            0 => "the last day".to_string(),
            1 => "the day before the last day".to_string(),
            n => format!("the {} day before the last day", ordinal(n)),
        })
        .collect();
    if forms.last_weekday {
        parts.push("the last weekday".into());
    }
    let nearest = values(forms.nearest_weekday.into(), 1, 31);
    if !nearest.is_empty() {
        let list = join(&nearest.iter().map(u32::to_string).collect::<Vec<_>>(), "and");
        parts.push(match nearest.len() {
            1 => format!("the weekday nearest day {list}"),
            _ => format!("the weekdays nearest days {list}"),
        });
    }
    parts
}

/// "the last Friday", "the third Monday".
fn dow_forms(spec: &Spec) -> Vec<String> {
    const NTH: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];
    let forms = &spec.dow_forms;
    let mut parts = Vec::new();
    for (k, weekdays) in forms.nth.iter().enumerate() {
        for d in values((*weekdays).into(), 0, 6) {
            parts.push(format!("the {} {}", NTH[k], WEEKDAYS[d as usize]));
        }
    }
    for d in values(forms.last.into(), 0, 6) {
        parts.push(format!("the last {}", WEEKDAYS[d as usize]));
    }
    parts
}

/// 2nd, 3rd, 4th, 21st…
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Why no date matches an expression that never fires. Usually its days of
/// the month are all past the end of each of its months ("February has no
/// day 30 or 31"; `L` and `LW` exist in every month). Otherwise both day
/// fields must match and never do together, which takes a weekday form
/// (`*/8 * 5#5`) or a weekday-only day form (`LW * */6`: never a weekend).
pub(crate) fn impossible_dates(spec: &Spec) -> String {
    let months: Vec<u32> = values(spec.months, 1, 12);
    let names: Vec<String> = months.iter().map(|&m| MONTHS[m as usize].to_string()).collect();
    let names = join(&names, "and");
    let dom_alone_fires = months.iter().any(|&m| {
        let lengths: &[u32] = if m == 2 { &[28, 29] } else { &[days_in_month(2001, m)] };
        lengths.iter().any(|&len| {
            (0..7).any(|w| (spec.dom | spec.dom_forms.days(w, len)) & (((1 << (len + 1)) - 1) & !1) != 0)
        })
    });
    if dom_alone_fires {
        return format!(
            "no day in {names} matches both the day-of-month and the day-of-week field (both must when either starts with * or ?)"
        );
    }
    let forms = &spec.dom_forms;
    let days = values(spec.dom | u64::from(forms.nearest_weekday), 1, 31);
    let mut days: Vec<String> = days.iter().map(u32::to_string).collect();
    days.extend(values(forms.before_last.into(), 1, 30).iter().map(|n| format!("L-{n}")));
    let verb = if months.len() == 1 { "has" } else { "have" };
    format!("{names} {verb} no day {}", join(&days, "or"))
}

/// The values `lo..=hi` set in `mask`.
fn values(mask: u64, lo: u32, hi: u32) -> Vec<u32> {
    (lo..=hi).filter(|v| mask & (1 << v) != 0).collect()
}

fn is_full(mask: u64, lo: u32, hi: u32) -> bool {
    (lo..=hi).all(|v| mask & (1 << v) != 0)
}

/// `Some(n)` when `mask` is exactly `lo, lo+n, lo+2n, …` and `n` divides the
/// field's span, so the cadence stays even across the wrap ("every 15
/// minutes", not "every 7 minutes" that resets each hour).
fn even_step(mask: u64, lo: u32, hi: u32) -> Option<u32> {
    let span = hi - lo + 1;
    (1..span)
        .filter(|n| span.is_multiple_of(*n))
        .find(|&n| (lo..=hi).all(|v| (mask & (1 << v) != 0) == (v - lo).is_multiple_of(n)))
}

/// `(first, last)` when the sorted values form one run.
fn contiguous(vals: &[u32]) -> Option<(u32, u32)> {
    let (first, last) = (*vals.first()?, *vals.last()?);
    (last - first + 1 == vals.len() as u32).then_some((first, last))
}

/// "a", "a and b", "a, b and c" (or another conjunction).
fn join(parts: &[String], conjunction: &str) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

/// Sorted values as parts of a list, runs of three or more as "Monday
/// through Friday"; `None` when that takes more than `max_parts` parts.
fn runs(vals: &[u32], name: impl Fn(u32) -> String, max_parts: usize) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < vals.len() {
        let mut j = i;
        while j + 1 < vals.len() && vals[j + 1] == vals[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{} through {}", name(vals[i]), name(vals[j])));
        } else {
            parts.extend(vals[i..=j].iter().map(|&v| name(v)));
        }
        i = j + 1;
    }
    (parts.len() <= max_parts).then_some(parts)
}

#[cfg(test)]
mod tests {
    use crate::Trigger;

    fn describe(expr: &str, tz: &str) -> String {
        Trigger::cron(expr, tz).unwrap().describe()
    }

    #[test]
    fn phrases() {
        let cases = [
            ("0 3 * * *", "Europe/Paris", "every day at 03:00 Europe/Paris"),
            ("30 2 * * 1-5", "", "at 02:30 on Monday through Friday UTC"),
            ("30 2 * * MON-FRI", "UTC", "at 02:30 on Monday through Friday UTC"),
            ("@daily", "", "every day at 00:00 UTC"),
            ("@hourly", "", "every hour UTC"),
            ("@weekly", "", "at 00:00 on Sunday UTC"),
            ("@monthly", "", "at 00:00 on day 1 of the month UTC"),
            ("@yearly", "", "at 00:00 on January 1 UTC"),
            ("0 0 4 7 *", "", "at 00:00 on July 4 UTC"),
            ("0 0 4 7 0-6", "", "every day at 00:00 in July UTC"),
            ("0 0 */31 7 0-6", "", "at 00:00 on July 1 UTC"),
            ("*/5 9 * * *", "", "every 5 minutes from 09:00 to 09:55 UTC"),
            ("*/15 * * * *", "", "every 15 minutes UTC"),
            ("* * * * *", "", "every minute UTC"),
            ("*/5 9-17 * * 1-5", "", "every 5 minutes from 09:00 to 17:55 on Monday through Friday UTC"),
            ("0 9-17 * * *", "", "every hour from 09:00 to 17:00 UTC"),
            ("0 */2 * * *", "", "every 2 hours UTC"),
            ("15 */2 * * *", "", "every 2 hours at minute 15 UTC"),
            ("15 * * * *", "", "every hour at minute 15 UTC"),
            ("0,30 * * * *", "", "every 30 minutes UTC"),
            ("5,35 * * * *", "", "every hour at minutes 5 and 35 UTC"),
            ("0 9,17 * * *", "", "every day at 09:00 and 17:00 UTC"),
            ("0 0 1,15 * *", "", "at 00:00 on days 1 and 15 of the month UTC"),
            ("0 0 * * 6,0", "", "at 00:00 on Saturday and Sunday UTC"),
            ("0 0 * * 5-7", "", "at 00:00 on Friday through Sunday UTC"),
            ("0 0 1 * 1", "", "at 00:00 on day 1 of the month and on Monday UTC"),
            ("0 0 1-7 * 1", "", "at 00:00 on days 1 through 7 of the month and on Monday UTC"),
            ("0 0 */10 * 1", "", "at 00:00 on days 1, 11, 21 and 31 of the month if it falls on Monday UTC"),
            ("0 12 * 1-3 *", "", "every day at 12:00 in January through March UTC"),
            ("30 15 10 * * *", "", "every day at 10:15:30 UTC"),
            ("*/10 * * * * *", "", "every 10 seconds UTC"),
            ("* * * * * *", "", "every second UTC"),
            ("0 0 1-31 * 1-7", "", "every day at 00:00 UTC"),
            // Quartz forms
            ("0 0 L * *", "", "at 00:00 on the last day of the month UTC"),
            ("0 0 L * ?", "", "at 00:00 on the last day of the month UTC"),
            ("0 0 L-1 * *", "", "at 00:00 on the day before the last day of the month UTC"),
            ("0 0 L-3 2 *", "", "at 00:00 on the 3rd day before the last day of the month in February UTC"),
            ("0 0 1,15,L * *", "", "at 00:00 on days 1 and 15 and the last day of the month UTC"),
            ("0 18 LW * *", "", "at 18:00 on the last weekday of the month UTC"),
            ("0 9 15W * *", "", "at 09:00 on the weekday nearest day 15 of the month UTC"),
            ("0 9 1W,15W * *", "", "at 09:00 on the weekdays nearest days 1 and 15 of the month UTC"),
            ("0 9 ? * 5L", "", "at 09:00 on the last Friday of the month UTC"),
            ("0 9 * * FRIL", "", "at 09:00 on the last Friday of the month UTC"),
            ("0 9 * * 5#3", "", "at 09:00 on the third Friday of the month UTC"),
            ("0 9 * * MON#1,mon#3", "", "at 09:00 on the first Monday and the third Monday of the month UTC"),
            ("0 9 * * 1,5L", "", "at 09:00 on Monday and the last Friday of the month UTC"),
            ("0 9 * * 7#2", "", "at 09:00 on the second Sunday of the month UTC"),
            (
                "0 0 L * 5L",
                "",
                "at 00:00 on the last day of the month and on the last Friday of the month UTC",
            ),
            ("0 0 L * 5", "", "at 00:00 on the last day of the month and on Friday UTC"),
            (
                "0 0 L * */2",
                "",
                "at 00:00 on the last day of the month if it falls on Tuesday, Thursday, Saturday or Sunday UTC",
            ),
            ("0 0 1-31,L * *", "", "every day at 00:00 UTC"),
            ("0 0 L 2 *", "", "at 00:00 on the last day of the month in February UTC"),
        ];
        for (expr, tz, want) in cases {
            assert_eq!(describe(expr, tz), want, "{expr}");
        }
    }

    #[test]
    fn fallbacks_quote_the_expression() {
        assert_eq!(describe("*/7 * * * *", "Europe/Paris"), "cron \"*/7 * * * *\" in Europe/Paris");
        assert_eq!(describe("1,2,3,5,8,13,21 * * * *", ""), "cron \"1,2,3,5,8,13,21 * * * *\" in UTC");
        assert_eq!(describe("0 0 */2 * 1", ""), "cron \"0 0 */2 * 1\" in UTC");
        // Both day fields must match, one is a weekday form: quoted.
        assert_eq!(describe("0 0 */2 * 5L", ""), "cron \"0 0 */2 * 5L\" in UTC");
        assert_eq!(
            describe("0 0 1 1 */2", ""),
            "at 00:00 on day 1 of the month if it falls on Tuesday, Thursday, Saturday or Sunday in January UTC"
        );
    }

    #[test]
    fn periods_and_once() {
        let every = |s| Trigger::every(s).unwrap().describe();
        assert_eq!(every(90), "every 90 seconds");
        assert_eq!(every(1), "every second");
        assert_eq!(every(60), "every minute");
        assert_eq!(every(5400), "every 90 minutes");
        assert_eq!(every(7200), "every 2 hours");
        assert_eq!(every(86_400), "every day");
        assert_eq!(Trigger::cron("@every 1h30m", "").unwrap().describe(), "every 90 minutes");
        assert_eq!(Trigger::once(1_772_366_400_000).describe(), "once at 2026-03-01 12:00:00 UTC");
        assert_eq!(Trigger::once(1_772_366_400_250).describe(), "once at 2026-03-01 12:00:00.250 UTC");
    }
}
