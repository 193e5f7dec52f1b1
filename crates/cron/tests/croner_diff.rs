//! Differential check against croner, on expressions where both claim the
//! same (Vixie) semantics.
//!
//! Intentional differences, kept out of the shared list and pinned below:
//! - Day rule with a `*`-prefixed step: Vixie cron (and this crate) treats a
//!   day field starting with `*` as unrestricted, so `0 0 */2 * 1` needs both
//!   an odd day and a Monday. croner only treats a bare `*` that way, and ORs.
//! - `a/n` (`10/20`) means `a-max/n` here, as in Vixie cron; croner rejects
//!   it unless its "sloppy ranges" option is on.
//! - croner extensions (`+`, a 7th year field) are not cron syntax this
//!   crate accepts; its Quartz forms (`L`, `LW`, `nW`, `dL`, `d#k`) are, and
//!   are compared in `QUARTZ` (croner has no `L-n`, and no `H`).
//! - Around DST transitions the two agree on the rules but classify
//!   "fixed-time" differently (croner: one value each in second, minute and
//!   hour; here: none of those fields starts with `*`, as Vixie cron's
//!   `MIN_STAR`/`HR_STAR`). Lists, ranges and steps without `*` (`0,30 2 * * *`,
//!   `0-59/15 1 * * *`) are fixed times here and a cadence for croner, so the
//!   DST comparison below uses expressions that both classify alike.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use cronstack_cron::Trigger;

const SHARED: &[&str] = &[
    "* * * * *",
    "*/5 * * * *",
    "*/7 * * * *",
    "0 * * * *",
    "15,45 * * * *",
    "5-40/5 * * * *",
    "0 */3 * * *",
    "30 2 * * *",
    "0 9-17 * * 1-5",
    "0 9 * * MON-FRI",
    "0 0 * * SUN",
    "0 0 * * 7",
    "0 0 * * 0,6",
    "0 0 * * SAT-SUN",
    "0 0 1 * *",
    "0 0 31 * *",
    "0 0 30 * *",
    "0 0 29 2 *",
    "0 0 1 1 *",
    "59 23 31 12 *",
    "0 12 * JAN,JUL *",
    "0 12 1-7 * *",
    "0 0 1,15 * 1",
    "0 0 13 * 5",
    "0 0 1-7 * 1",
    "0 0 29 2 1",
    "0 0 ? * MON",
    "0 0 1 * ?",
    "0 0 * 2 1-5",
    "0 0 */3 * *",
    "0 0 * */2 *",
    "0 0 1 */3 *",
    "30 * * * * *",
    "*/10 * * * * *",
    "0 0 0 * * *",
    "15,45 30 12 * * *",
    "59 59 23 31 12 *",
    "0 */15 8-10 * * 1-5",
    "@daily",
    "@hourly",
    "@weekly",
    "@monthly",
    "@yearly",
];

/// Quartz day forms, alone, in lists and under the day rule.
const QUARTZ: &[&str] = &[
    "0 0 L * *",
    "0 0 L 2 *",
    "0 12 LW * *",
    "0 0 LW 2 *",
    "0 0 15W * *",
    "0 0 1W * *",
    "0 0 31W * *",
    "0 0 30W * *",
    "0 0 29W 2 *",
    "0 0 1,15,L * *",
    "0 0 1W,15W * *",
    "0 0 * * 5L",
    "0 0 * * FRIL",
    "0 0 * * 0L",
    "0 0 * * 5#3",
    "0 0 * * FRI#3",
    "0 0 * * 1#1",
    "0 0 * * 5#5",
    "0 0 * 2 0#5",
    "0 0 * * MON#1,FRI#3",
    "0 0 * * 1-5,5L",
    "0 0 ? * 5L",
    "0 0 L * ?",
    "0 0 L * 5",
    "0 0 1 * 5L",
    "0 0 15W * 1#1",
    "30 15 10 L * *",
];

const STARTS: &[&str] = &[
    "2026-01-01T00:00:00Z",
    "2026-02-27T13:37:42Z",
    "2027-12-31T23:59:59Z",
    "2028-02-28T12:00:00Z",
    "1999-12-31T23:00:00Z",
    "2099-11-30T00:00:00Z",
];

fn croner_next_n<Z: TimeZone>(cron: &Cron, start: DateTime<Z>, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = start;
    for _ in 0..n {
        match cron.find_next_occurrence(&t, false) {
            Ok(next) => {
                out.push(next.timestamp_millis());
                t = next;
            }
            Err(_) => break,
        }
    }
    out
}

fn compare(expr: &str, tz: Tz) {
    let cron = Cron::from_str(expr).unwrap_or_else(|e| panic!("croner rejects {expr}: {e}"));
    let ours = Trigger::cron(expr, tz.name()).unwrap();
    for start in STARTS {
        let start = DateTime::parse_from_rfc3339(start).unwrap().with_timezone(&tz);
        let want = croner_next_n(&cron, start, 60);
        let got = ours.upcoming(start.timestamp_millis(), want.len());
        assert_eq!(got, want, "{expr} in {tz} from {start}");
        assert_eq!(want.len(), 60, "{expr}: croner ran out");
    }
}

#[test]
fn agrees_with_croner_in_utc() {
    for expr in SHARED {
        compare(expr, Tz::UTC);
    }
}

#[test]
fn agrees_with_croner_in_zones_without_dst() {
    for expr in SHARED {
        compare(expr, Tz::Asia__Tokyo);
        compare(expr, Tz::Asia__Kolkata);
    }
}

#[test]
fn agrees_with_croner_on_quartz_forms() {
    for expr in QUARTZ {
        compare(expr, Tz::UTC);
        compare(expr, Tz::Asia__Tokyo);
    }
}

#[test]
fn intentional_difference_star_step_day_rule() {
    let expr = "0 0 */2 * 1";
    let start = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
    let croner = croner_next_n(&Cron::from_str(expr).unwrap(), start, 1);
    let ours = Trigger::cron(expr, "UTC").unwrap().next_after(start.timestamp_millis());
    // croner: the 7th (odd day, OR rule). Here: the 19th, the next odd-day Monday.
    assert_eq!(croner, vec![Utc.with_ymd_and_hms(2026, 1, 7, 0, 0, 0).unwrap().timestamp_millis()]);
    assert_eq!(ours, Some(Utc.with_ymd_and_hms(2026, 1, 19, 0, 0, 0).unwrap().timestamp_millis()));
}

#[test]
fn intentional_difference_value_step() {
    assert!(Cron::from_str("10/20 * * * *").is_err());
    let ours = Trigger::cron("10/20 * * * *", "UTC").unwrap();
    assert_eq!(ours.upcoming(0, 3), vec![600_000, 1_800_000, 3_000_000]);
}

/// Both engines, through every 2026 transition of DST zones.
#[test]
fn agrees_with_croner_across_dst() {
    let exprs = [
        "30 2 * * *",
        "0 2 * * *",
        "30 1 * * *",
        "45 1 * * 0",
        "0 0 * * *",
        "*/30 * * * *",
        "*/15 1 * * *",
        "0 * * * *",
        "30 * * * *",
        "0 */2 * * *",
        "*/10 * * * * *",
        "30 30 2 * * *",
        // Transitions fall on Sundays these name.
        "30 2 * * 0L",
        "30 1 * * SUN#1",
        "0 2 * * 0#2",
    ];
    let zones = [Tz::America__New_York, Tz::Europe__London, Tz::Australia__Lord_Howe, Tz::Europe__Paris];
    for tz in zones {
        for expr in exprs {
            let cron = Cron::from_str(expr).unwrap();
            let ours = Trigger::cron(expr, tz.name()).unwrap();
            // Short runs from many starts, a day apart, over the whole year.
            let mut start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            while start.timestamp() < 1_798_761_600 {
                let from = start.with_timezone(&tz);
                let want = croner_next_n(&cron, from, 12);
                let got = ours.upcoming(from.timestamp_millis(), want.len());
                assert_eq!(got, want, "{expr} in {tz} from {from}");
                start += chrono::Duration::hours(47);
            }
        }
    }
}
