//! A compiled cron schedule in a time zone, and the mapping from wall-clock
//! matches to real instants across daylight-saving transitions.
//!
//! DST rules (Vixie cron's; see the crate doc):
//! - a wall-clock time skipped by a spring-forward fires once, at the first
//!   instant after the gap, for fixed-time expressions; cadence expressions
//!   (the second, minute or hour field starts with `*`) just skip it, as
//!   their cadence carries on in real time anyway;
//! - a wall-clock time repeated by a fall-back fires once (first pass) for
//!   fixed-time expressions, and in both passes for cadence expressions.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::{GapInfo, Tz};

use crate::EpochMs;
use crate::next::Spec;

/// Searches start no earlier than 0001-01-02 UTC, so that wall clocks in any
/// zone stay within year 1..=9999, which chrono and `civil` handle exactly.
const MIN_SECS: i64 = -62_135_510_400; // 0001-01-02T00:00:00Z
/// Nothing fires after this instant (start of year 10000, UTC).
const MAX_SECS: i64 = 253_402_300_800;

/// Upper bound on wall-clock candidates tried per search. Each round either
/// returns or moves past a DST transition, so real searches use a few; the
/// bound only guarantees termination on pathological zone data.
const MAX_ROUNDS: usize = 10_000;

/// A parsed cron expression bound to a time zone. Build one with
/// [`Trigger::cron`](crate::Trigger::cron).
#[derive(Debug, Clone, PartialEq)]
pub struct CronSchedule {
    expr: String,
    tz: Tz,
    /// The offset of zones that never change it (UTC, `Etc/GMT+5`): their
    /// searches need no zone lookups at all.
    fixed_offset: Option<i64>,
    /// The key `H` items were chosen with; `None` when there are none.
    hash_key: Option<u64>,
    pub(crate) spec: Spec,
}

impl CronSchedule {
    pub(crate) fn new(expr: &str, tz: Tz, spec: Spec, hash_key: Option<u64>) -> CronSchedule {
        let name = tz.name();
        let fixed = name.starts_with("Etc/")
            || matches!(
                name,
                "UTC" | "UCT" | "GMT" | "GMT0" | "GMT+0" | "GMT-0" | "Greenwich" | "Universal" | "Zulu"
            );
        let fixed_offset = fixed.then(|| offset_at(tz, 0));
        CronSchedule { expr: expr.to_string(), tz, fixed_offset, hash_key, spec }
    }

    /// The expression as given by the user (trimmed).
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The IANA name of the time zone, e.g. "UTC" or "Europe/Paris".
    pub fn timezone(&self) -> &str {
        self.tz.name()
    }

    /// The key that chose the values of the expression's `H` items, if it has any.
    pub fn hash_key(&self) -> Option<u64> {
        self.hash_key
    }

    /// The first fire time strictly after `after`, or `None` if there is none
    /// before year 10000.
    pub fn next_after(&self, after: EpochMs) -> Option<EpochMs> {
        // Fire times are whole seconds: the first candidate is the next one.
        let start = (after.div_euclid(1000) + 1).max(MIN_SECS);
        if start >= MAX_SECS {
            return None;
        }
        let secs = match self.fixed_offset {
            Some(offset) => self.spec.next_civil(start + offset).map(|c| c - offset),
            None => self.next_zoned(start),
        }?;
        Some(secs * 1000)
    }

    /// The first fire instant at or after `start` (seconds) in a zone with
    /// transitions.
    fn next_zoned(&self, start: i64) -> Option<i64> {
        if !self.spec.cadence {
            // Search from the wall clock just after `start - 1`. It differs
            // from `start`'s own reading only when `start` is exactly a
            // transition: after a gap, the skipped times fire at `start`
            // itself, so the search must begin at the gap; after a repeat,
            // it skips the repeated range, which a fixed-time expression
            // does not fire in twice.
            let civil = start + offset_at(self.tz, start - 1);
            return self.search_zoned(start, civil);
        }
        let civil = start + offset_at(self.tz, start);
        let found = self.search_zoned(start, civil);
        // When `start` lies in the first pass of a repeated range, the wall
        // clock goes back after it: matches in the second pass come up in
        // real time even though their wall-clock reading is before `civil`.
        match (found, self.second_pass(start, civil)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Walk wall-clock matches from `civil` and map them to instants, the
    /// first at or after `start` winning.
    fn search_zoned(&self, start: i64, mut civil: i64) -> Option<i64> {
        let tz = self.tz;
        for _ in 0..MAX_ROUNDS {
            let local = self.spec.next_civil(civil)?;
            match resolve(tz, local) {
                Local::Single(offset) => {
                    if local - offset >= start {
                        return Some(local - offset);
                    }
                    civil = local + 1;
                }
                Local::Ambiguous { early, late } => {
                    if local - early >= start {
                        return Some(local - early);
                    }
                    if self.spec.cadence {
                        if local - late >= start {
                            return Some(local - late);
                        }
                        civil = local + 1;
                    } else {
                        // A fixed-time expression fires only in the first
                        // pass, and that pass of the whole repeated range is
                        // already behind `start`: skip to the range's end.
                        let transition = find_transition(tz, local - early, local - late);
                        civil = (local + 1).max(transition + early);
                    }
                }
                Local::Gap => {
                    let Some(gap_end) = gap_end(tz, local) else {
                        civil = local + 1;
                        continue;
                    };
                    if !self.spec.cadence && gap_end >= start {
                        return Some(gap_end);
                    }
                    civil = (local + 1).max(gap_end + offset_at(tz, gap_end));
                }
            }
        }
        None
    }

    /// If `start` is in the first pass of a repeated wall-clock range, the
    /// first match in that range's second pass.
    fn second_pass(&self, start: i64, civil: i64) -> Option<i64> {
        let Local::Ambiguous { early, late } = resolve(self.tz, civil) else {
            return None;
        };
        if civil - early != start {
            return None; // `start` is in the second pass already
        }
        let transition = find_transition(self.tz, start, civil - late);
        let local = self.spec.next_civil(transition + late)?;
        (local < transition + early).then_some(local - late)
    }
}

/// How a wall-clock second maps to instants; offsets in seconds east of UTC.
enum Local {
    Single(i64),
    /// Repeated by a fall-back: `early` is the offset of the first pass.
    Ambiguous {
        early: i64,
        late: i64,
    },
    /// Skipped by a spring-forward.
    Gap,
}

fn naive(secs: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(secs, 0).map(|dt| dt.naive_utc())
}

fn offset_at(tz: Tz, instant: i64) -> i64 {
    naive(instant).map_or(0, |n| i64::from(tz.offset_from_utc_datetime(&n).fix().local_minus_utc()))
}

fn resolve(tz: Tz, civil: i64) -> Local {
    let Some(n) = naive(civil) else {
        return Local::Single(0);
    };
    let secs = |o: <Tz as TimeZone>::Offset| i64::from(o.fix().local_minus_utc());
    match tz.offset_from_local_datetime(&n) {
        LocalResult::Single(o) => Local::Single(secs(o)),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (secs(a), secs(b));
            // The first pass has the larger offset (the clock was ahead).
            Local::Ambiguous { early: a.max(b), late: a.min(b) }
        }
        LocalResult::None => Local::Gap,
    }
}

/// The first instant after the spring-forward gap containing wall clock `civil`.
fn gap_end(tz: Tz, civil: i64) -> Option<i64> {
    let info = GapInfo::new(&naive(civil)?, &tz)?;
    Some(info.end?.timestamp())
}

/// Given `lo` and `hi` (`lo < hi`) with different offsets, the first instant
/// in `(lo, hi]` whose offset differs from `lo`'s. Binary search: zones
/// expose offsets per instant, not their transition list.
fn find_transition(tz: Tz, mut lo: i64, mut hi: i64) -> i64 {
    let before = offset_at(tz, lo);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civil::{SECS_PER_DAY, days_from_civil};
    use crate::next::MAX_YEAR;

    #[test]
    fn limits_match_their_dates() {
        assert_eq!(MIN_SECS, days_from_civil(1, 1, 2) * SECS_PER_DAY);
        assert_eq!(MAX_SECS, days_from_civil(MAX_YEAR + 1, 1, 1) * SECS_PER_DAY);
    }
}
