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
//! and `@every <duration>`. Also:
//! - Quartz's day forms. Day-of-month: `L` (the last day), `L-n` (`n` days
//!   before it, 0-30: `L-3` is the 28th of a 31-day month), `LW` (the last
//!   Monday-to-Friday), `nW` (the Monday-to-Friday nearest day `n`, never
//!   leaving the month: a Saturday 1st moves to Monday the 3rd, a Sunday last
//!   day to the Friday before; a month without day `n` has none). Day-of-week:
//!   `dL` (the last such weekday of the month, `5L` or `FRIL`) and `d#k` (the
//!   k-th, k 1-5; `5#5` skips months with four Fridays). They mix with other
//!   items in a list (`1,L`, `MON#1,5L`).
//! - Jenkins' `H`: a value chosen by hashing a key, a job's uid, so that
//!   jobs sharing an expression spread out (`H 3 * * *`: one minute between
//!   03:00 and 03:59, the same one every day). `H` alone takes one value of
//!   the field (day-of-month 1-28 and day-of-week 0-6, which every month and
//!   week have), `H(a-b)` one of `a..=b`, `H/n` and `H(a-b)/n` every `n`th
//!   value from an offset below `n`. Each `H` of a field chooses on its own
//!   (`H(0-29),H(30-59)`: twice an hour). The key comes from [`hash_key`] and
//!   goes to [`Trigger::cron_with_hash_key`]; [`Trigger::cron`] refuses `H`.
//!   The formulas are fixed (module `hash`), so every node and version agrees.
//!
//! Rules worth knowing:
//! - Day rule (Vixie cron): when day-of-month and day-of-week are both
//!   restricted, a day matching either fires; a field starting with `*` or
//!   `?` (even `*/2`) counts as unrestricted, and then both must match. The
//!   forms above are restrictions like any value: `L * 5L` fires on the last
//!   day and on the last Friday, `? * 5L` on the last Friday only, `*/2 * 5L`
//!   on the last Friday when its date is odd. Quartz insists on `?` in one of
//!   the fields; here `*` does the same.
//! - Daylight saving time, as Vixie cron applies it: an expression whose
//!   second, minute or hour field starts with `*` keeps its real-time
//!   cadence through a repeated or skipped hour: it fires in both passes of
//!   a repeated hour and not at all in a skipped one (`*/30 2 * * *` in
//!   Europe/Berlin fires four times on the fall-back night, croner agrees).
//!   Any other expression is fixed times: a skipped local time fires once
//!   right after the gap, a repeated one fires once, in its first pass
//!   (`0,30 2 * * *` fires twice that night). A step without `*` is a list
//!   of fixed times: `1/2` in the hour field is `1-23/2`, i.e. 1,3,…,23,
//!   and `0-59/15 1-3 * * *` fires once at each of its times. So are `H`
//!   forms (`H/15 2 * * *`): they are fixed once the key has chosen.
//! - An expression that can never fire (`0 0 30 2 *`, `0 0 31 4,6,9,11 *`,
//!   `0 0 30W 2 *`, `0 0 */8 * 5#5`) is refused with
//!   [`ParseError::NeverFires`], and so is one with `H` that never fires for
//!   some keys (`0 0 H(28-31) 2 *`): acceptance never depends on the key.
//! - A range ending in `SUN` means up to 7 (`FRI-SUN`); other reversed ranges
//!   are errors.
//! - Fire times are whole seconds. Instants are supported from year 1 to year
//!   9999: nothing fires after the end of 9999. Zone data (chrono-tz) has
//!   DST rules up to 2099; later years use the last offset.

mod civil;
mod describe;
mod error;
mod fields;
mod hash;
mod next;
mod parse;
mod quartz;
mod schedule;

pub use error::{Field, ParseError};
pub use hash::hash_key;
pub use schedule::CronSchedule;

/// Milliseconds since the Unix epoch, UTC.
pub type EpochMs = i64;

/// When a job fires.
// A cron trigger carries its 28-month day table inline: there is one per job,
// and a box would add an indirection to every `next_after`.
#[allow(clippy::large_enum_variant)]
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
    /// Never fires on its own (Dkron's `@manually`): for jobs that only run when
    /// started by hand or by another job's run.
    Never,
}

impl Trigger {
    /// Parse a cron expression in an IANA zone ("UTC" if `tz` is empty).
    /// Also accepts `@every 90s` style periods (→ [`Trigger::Every`]; units
    /// ms, s, m, h, d, combinable like `1h30m`, decimals like `1.5h`; the
    /// total must be a whole number of seconds, at least one).
    ///
    /// An expression with `H` is refused here ([`ParseError::HashKeyRequired`]):
    /// use [`Trigger::cron_with_hash_key`].
    pub fn cron(expr: &str, tz: &str) -> Result<Trigger, ParseError> {
        parse::parse_trigger(expr, tz, None)
    }

    /// [`Trigger::cron`] for one job: `key` (the job's [`hash_key`]) chooses
    /// the values of the expression's `H` items, and is ignored when there are
    /// none. Whether an expression is accepted does not depend on the key:
    /// one that never fires for some key is refused for all.
    pub fn cron_with_hash_key(expr: &str, tz: &str, key: u64) -> Result<Trigger, ParseError> {
        parse::parse_trigger(expr, tz, Some(key))
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
            Trigger::Never => None,
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
