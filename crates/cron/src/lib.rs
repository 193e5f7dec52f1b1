//! Fire-time rules for cronstack: when does a job fire next?
//!
//! A [`Trigger`] is parsed once and then asked [`Trigger::next_after`] many
//! times. Cron expressions compile to bitsets (`fields.rs`, `next.rs`) and are
//! searched on the wall clock of their time zone, which `schedule.rs` maps to
//! real instants across daylight-saving transitions.
//!
//! Supported cron syntax: 5 fields (minute hour day-of-month month
//! day-of-week) or 6 (seconds first); `*`, `?` (day fields), values, ranges
//! `a-b`, steps `*/n`, `a-b/n`, `a/n` (= a-max/n), lists, names `JAN`-`DEC`
//! and `SUN`-`SAT` (case-insensitive), day-of-week 0-7 (0 and 7 are Sunday),
//! the macros `@yearly @annually @monthly @weekly @daily @midnight @hourly`
//! and `@every <duration>`.
//!
//! Rules worth knowing:
//! - Day rule (Vixie cron): when day-of-month and day-of-week are both
//!   restricted, a day matching either fires; a field starting with `*` or
//!   `?` (even `*/2`) counts as unrestricted, and then both must match.
//! - Daylight saving time, as Vixie cron applies it: an expression whose
//!   second, minute or hour field starts with `*` keeps its real-time
//!   cadence through a repeated or skipped hour: it fires in both passes of
//!   a repeated hour and not at all in a skipped one (`*/30 2 * * *` in
//!   Europe/Berlin fires four times on the fall-back night, croner agrees).
//!   Any other expression is fixed times: a skipped local time fires once
//!   right after the gap, a repeated one fires once, in its first pass
//!   (`0,30 2 * * *` fires twice that night). A step without `*` is a list
//!   of fixed times: `1/2` in the hour field is `1-23/2`, i.e. 1,3,…,23,
//!   and `0-59/15 1-3 * * *` fires once at each of its times.
//! - An expression that can never fire (`0 0 30 2 *`, `0 0 31 4,6,9,11 *`)
//!   is refused with [`ParseError::NeverFires`].
//! - A range ending in `SUN` means up to 7 (`FRI-SUN`); other reversed ranges
//!   are errors.
//! - Fire times are whole seconds. Instants are supported from year 1 to year
//!   9999: nothing fires after the end of 9999. Zone data (chrono-tz) has
//!   DST rules up to 2099; later years use the last offset.

mod civil;
mod describe;
mod error;
mod fields;
mod next;
mod parse;
mod schedule;

pub use error::{Field, ParseError};
pub use schedule::CronSchedule;

/// Milliseconds since the Unix epoch, UTC.
pub type EpochMs = i64;

/// When a job fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Fires every `period_ms`, aligned to the Unix epoch: fire times are
    /// exact multiples of the period, so it never drifts and every node
    /// computes the same slots.
    Every {
        period_ms: i64,
    },
    /// Fires exactly once.
    Once {
        at_ms: EpochMs,
    },
    Cron(CronSchedule),
}

impl Trigger {
    /// Parse a cron expression in an IANA zone ("UTC" if `tz` is empty).
    /// Also accepts `@every 90s` style periods (→ [`Trigger::Every`]; units
    /// ms, s, m, h, d, combinable like `1h30m`, decimals like `1.5h`; the
    /// total must be a whole number of seconds, at least one).
    pub fn cron(expr: &str, tz: &str) -> Result<Trigger, ParseError> {
        parse::parse_trigger(expr, tz)
    }

    /// Every `seconds` (≥ 1) seconds.
    pub fn every(seconds: i64) -> Result<Trigger, ParseError> {
        if seconds < 1 {
            return Err(ParseError::PeriodTooShort { input: format!("{seconds} seconds") });
        }
        let period_ms = seconds
            .checked_mul(1000)
            .ok_or_else(|| ParseError::PeriodTooLong { input: format!("{seconds} seconds") })?;
        Ok(Trigger::Every { period_ms })
    }

    pub fn once(at_ms: EpochMs) -> Trigger {
        Trigger::Once { at_ms }
    }

    /// The first fire time strictly after `after`, or `None` when there is
    /// none (a `Once` in the past, the end of year 9999, a non-positive
    /// `Every` period built by hand).
    pub fn next_after(&self, after: EpochMs) -> Option<EpochMs> {
        match self {
            Trigger::Every { period_ms } => {
                let p = *period_ms;
                if p <= 0 {
                    return None;
                }
                after.div_euclid(p).checked_mul(p)?.checked_add(p)
            }
            Trigger::Once { at_ms } => (*at_ms > after).then_some(*at_ms),
            Trigger::Cron(schedule) => schedule.next_after(after),
        }
    }

    /// The next `n` fire times strictly after `after` (fewer if the trigger
    /// runs out).
    pub fn upcoming(&self, after: EpochMs, n: usize) -> Vec<EpochMs> {
        let mut out = Vec::with_capacity(n.min(1024));
        let mut t = after;
        while out.len() < n {
            match self.next_after(t) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    /// The trigger as a person would say it, e.g. "every day at 03:00
    /// Europe/Paris", "every 90 seconds", "at 02:30 on Monday through Friday
    /// UTC", "once at 2026-03-01 12:00:00 UTC". Expressions too irregular to
    /// phrase well come back as `cron "…" in Zone`.
    pub fn describe(&self) -> String {
        describe::describe(self)
    }
}
