//! The compiled matcher and the wall-clock search.
//!
//! [`Spec::next_civil`] finds the first matching wall-clock second at or after
//! a given one, ignoring time zones entirely; `schedule.rs` maps wall clock to
//! real instants. The search jumps field by field (month, day, hour, minute,
//! second) using bitsets, so a call costs a handful of integer operations
//! rather than a scan.

use crate::civil::{SECS_PER_DAY, civil_from_days, days_from_civil, days_in_month, weekday};
use crate::fields::{ParsedField, next_bit};
use crate::quartz::{DomForms, DowForms};

/// Searches never go past the end of this year; beyond it `next_civil` says
/// "none". It keeps every computation far from overflow and bounds the work
/// done for rare expressions.
pub(crate) const MAX_YEAR: i64 = 9999;

/// A cron expression compiled to bitsets (its `H` items already chosen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    pub seconds: u64,
    pub minutes: u64,
    pub hours: u64,
    /// Days of month of the plain items (the forms are in `dom_forms`).
    pub dom: u64,
    pub months: u64,
    /// Days of week of the plain items, bit 0 = Sunday.
    pub dow: u64,
    pub dom_forms: DomForms,
    pub dow_forms: DowForms,
    pub dom_star: bool,
    pub dow_star: bool,
    /// The second, minute or hour field starts with `*`: the expression is a
    /// cadence ("every 30 minutes") rather than fixed times of day, so it fires
    /// in both passes of a repeated hour and does not make up times skipped
    /// by a spring-forward.
    pub cadence: bool,
    /// Vixie rule: both day fields restricted means a day matching either one
    /// fires; otherwise both must match.
    pub day_or: bool,
    /// The day rule's inputs for the same-day fast path in `next_civil`:
    /// `dom` and `dow`, or nothing when a Quartz day form makes a date's
    /// match depend on its month's length and first weekday. The fast path
    /// then fails at no cost to other expressions and the month search,
    /// which reads `day_masks`, decides.
    today_dom: u64,
    today_dow: u64,
    /// `day_masks[w][len - 28]`: the allowed days 1..=len of a month of `len`
    /// days whose 1st falls on weekday `w` (0 = Sunday), day rule applied.
    /// There are only 28 kinds of month, so a month's allowed days are one
    /// lookup. (Day 31 is bit 31: `u32` keeps the table in four cache lines.)
    day_masks: [[u32; 4]; 7],
    first_second: u32,
    first_minute: u32,
    first_month: u32,
    /// False when no date can ever match (e.g. Feb 30): searches return at
    /// once instead of walking to year 9999.
    satisfiable: bool,
}

impl Spec {
    /// `fields` are second, minute, hour, day-of-month, month, day-of-week;
    /// `bits` their values with the `H` items resolved.
    pub(crate) fn new(fields: &[ParsedField; 6], bits: [u64; 6]) -> Spec {
        let [second, minute, hour, dom, _, dow] = fields;
        let [seconds, minutes, hours, dom_bits, months, dow_bits] = bits;
        let day_or = !dom.star && !dow.star;
        let month_dependent = !dom.dom_forms.is_empty() || !dow.dow_forms.is_empty();
        let mut day_masks = [[0u32; 4]; 7];
        for (first_weekday, masks) in (0u32..).zip(day_masks.iter_mut()) {
            for (len, mask) in (28u32..).zip(masks.iter_mut()) {
                let mut by_dow = dow.dow_forms.days(first_weekday, len);
                for day in 1..=len {
                    if dow_bits & (1 << ((first_weekday + day - 1) % 7)) != 0 {
                        by_dow |= 1 << day;
                    }
                }
                let by_dom = dom_bits | dom.dom_forms.days(first_weekday, len);
                let days = if day_or { by_dom | by_dow } else { by_dom & by_dow };
                *mask = (days & (((1 << (len + 1)) - 1) & !1)) as u32; // only days 1..=len exist
            }
        }
        let mut spec = Spec {
            seconds,
            minutes,
            hours,
            dom: dom_bits,
            months,
            dow: dow_bits,
            dom_forms: dom.dom_forms,
            dow_forms: dow.dow_forms,
            dom_star: dom.star,
            dow_star: dow.star,
            cadence: second.cadence || minute.cadence || hour.cadence,
            day_or,
            today_dom: if month_dependent { 0 } else { dom_bits },
            today_dow: if month_dependent { 0 } else { dow_bits },
            day_masks,
            first_second: seconds.trailing_zeros(),
            first_minute: minutes.trailing_zeros(),
            first_month: months.trailing_zeros(),
            satisfiable: true,
        };
        // Every month starts on every weekday, and February has 29 days, in
        // some year of each 400-year Gregorian cycle, so trying all
        // combinations decides whether any date ever matches.
        spec.satisfiable = (1..=12u32).filter(|m| spec.months & (1 << m) != 0).any(|m| {
            let lengths: &[u32] = if m == 2 { &[28, 29] } else { &[days_in_month(2001, m)] };
            lengths.iter().any(|&len| (0..7).any(|w| spec.day_mask(w, len) != 0))
        });
        spec
    }

    /// Allowed days of a month whose 1st falls on `first_weekday` and that has `len` days.
    #[inline]
    fn day_mask(&self, first_weekday: u32, len: u32) -> u64 {
        u64::from(self.day_masks[first_weekday as usize][len as usize - 28])
    }

    /// Whether an existing date (day of month, weekday) passes the day rule;
    /// always false for a month-dependent expression (see `today_dom`).
    #[inline]
    fn day_matches_today(&self, day: u32, weekday: u32) -> bool {
        let dom = self.today_dom & (1 << day) != 0;
        let dow = self.today_dow & (1 << weekday) != 0;
        if self.day_or { dom || dow } else { dom && dow }
    }

    /// Whether a wall-clock second matches every field (tests check search
    /// results against it).
    #[cfg(test)]
    pub(crate) fn matches(&self, civil: i64) -> bool {
        let days = civil.div_euclid(SECS_PER_DAY);
        let sod = civil.rem_euclid(SECS_PER_DAY) as u32;
        let (y, m, d) = civil_from_days(days);
        let first = days_from_civil(y, m, 1);
        let has = |mask: u64, v: u32| mask & (1 << v) != 0;
        has(self.months, m)
            && has(self.day_mask(weekday(first), days_in_month(y, m)), d)
            && has(self.hours, sod / 3600)
            && has(self.minutes, sod / 60 % 60)
            && has(self.seconds, sod % 60)
    }

    /// Whether some date ever matches (parsing refuses expressions that never fire).
    pub(crate) fn can_fire(&self) -> bool {
        self.satisfiable
    }

    /// The first matching wall-clock second at or after `civil`, or `None`
    /// when there is none up to the end of [`MAX_YEAR`].
    pub(crate) fn next_civil(&self, civil: i64) -> Option<i64> {
        if !self.satisfiable {
            return None;
        }
        let days = civil.div_euclid(SECS_PER_DAY);
        let (mut year, mut month, mut day) = civil_from_days(days);
        // Time of day to search from; zero once the date has moved forward.
        let mut sod = civil.rem_euclid(SECS_PER_DAY) as u32;
        // Fast path: today matches and has a matching time left. Checking
        // one real date needs neither the month's length nor its 1st.
        if self.months & (1 << month) != 0 && self.day_matches_today(day, weekday(days)) {
            if let Some(t) = self.next_time(sod) {
                return Some(days * SECS_PER_DAY + i64::from(t));
            }
            (day, sod) = (day + 1, 0);
        }
        loop {
            if year > MAX_YEAR {
                return None;
            }
            match next_bit(self.months, month) {
                Some(m) if m == month => {}
                Some(m) => (month, day, sod) = (m, 1, 0),
                None => {
                    (year, month, day, sod) = (year + 1, self.first_month, 1, 0);
                    continue;
                }
            }
            let first = days_from_civil(year, month, 1);
            let mask = self.day_mask(weekday(first), days_in_month(year, month));
            match next_bit(mask, day) {
                Some(d) if d == day => {}
                Some(d) => (day, sod) = (d, 0),
                None => {
                    (month, day, sod) = (month + 1, 1, 0);
                    if month > 12 {
                        (year, month) = (year + 1, 1);
                    }
                    continue;
                }
            }
            match self.next_time(sod) {
                Some(t) => return Some((first + i64::from(day) - 1) * SECS_PER_DAY + i64::from(t)),
                None => (day, sod) = (day + 1, 0),
            }
        }
    }

    /// The first matching second of the day at or after `sod`, if any.
    #[inline]
    fn next_time(&self, sod: u32) -> Option<u32> {
        let (h, m, s) = (sod / 3600, sod / 60 % 60, sod % 60);
        let at = |h: u32, m: u32, s: u32| Some(h * 3600 + m * 60 + s);
        let hour = next_bit(self.hours, h)?;
        if hour > h {
            return at(hour, self.first_minute, self.first_second);
        }
        if let Some(minute) = next_bit(self.minutes, m) {
            if minute > m {
                return at(h, minute, self.first_second);
            }
            if let Some(second) = next_bit(self.seconds, s) {
                return at(h, m, second);
            }
            if let Some(minute) = next_bit(self.minutes, m + 1) {
                return at(h, minute, self.first_second);
            }
        }
        let hour = next_bit(self.hours, h + 1)?;
        at(hour, self.first_minute, self.first_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Field;
    use crate::fields::parse_field;

    fn spec(expr: &str) -> Spec {
        let f: Vec<&str> = expr.split(' ').collect();
        let kinds =
            [Field::Second, Field::Minute, Field::Hour, Field::DayOfMonth, Field::Month, Field::DayOfWeek];
        let fields: [ParsedField; 6] = std::array::from_fn(|i| parse_field(kinds[i], f[i]).unwrap());
        Spec::new(&fields, [0, 1, 2, 3, 4, 5].map(|i| fields[i].bits))
    }

    /// `next_civil` returns a match, and no second before it (from the start) matches.
    #[test]
    fn next_civil_is_the_first_match() {
        let exprs = [
            "0 * * * * *",
            "0 */7 3-5 * * *",
            "*/13 5 * * * *",
            "0 0 0 31 * *",
            "0 30 23 * * 6",
            "0 0 12 1,15 * 1",
            "0 0 0 */3 * 5",
            "30 59 23 28-31 2 *",
        ];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for expr in exprs {
            let s = spec(expr);
            for _ in 0..100 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let start = 946_684_800 + (x % 1_000_000_000) as i64;
                let found = s.next_civil(start).unwrap();
                assert!(found >= start && s.matches(found), "{expr} from {start}: {found}");
                if found - start <= 6 * 3600 {
                    assert!((start..found).all(|c| !s.matches(c)), "{expr} from {start}: {found}");
                }
            }
        }
    }

    #[test]
    fn impossible_dates_are_detected_up_front() {
        assert!(!spec("0 0 0 30 2 *").satisfiable);
        assert!(!spec("0 0 0 31 4,6,9,11 *").satisfiable);
        assert!(spec("0 0 0 29 2 *").satisfiable);
        assert!(spec("0 0 0 30 2 1").satisfiable); // OR rule: any Monday in February
        assert_eq!(spec("0 0 0 30 2 *").next_civil(0), None);
    }
}
