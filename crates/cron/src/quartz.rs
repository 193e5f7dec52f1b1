//! Quartz's day forms, whose days depend on the month: `L`, `L-n`, `LW` and
//! `nW` in day-of-month, `dL` and `d#k` in day-of-week.
//!
//! A month's days follow from its length and the weekday of its 1st alone, so
//! `next.rs` tabulates them for the 7 × 4 possible months once per expression.

/// Day-of-month forms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DomForms {
    /// Bit `n`: the day `n` days before the last (`L` is `n` = 0, `L-3` is 3).
    pub before_last: u32,
    /// `LW`: the last Monday-to-Friday of the month.
    pub last_weekday: bool,
    /// Bit `n`: `nW`, the Monday-to-Friday nearest day `n` within the month.
    pub nearest_weekday: u32,
}

/// Day-of-week forms; weekdays are bits, 0 = Sunday.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DowForms {
    /// `dL`: the last such weekday of the month.
    pub last: u8,
    /// `nth[k - 1]` holds `d#k`: the k-th such weekday of the month.
    pub nth: [u8; 5],
}

/// The weekday of day `day` in a month whose 1st is `first_weekday`.
fn weekday_of(first_weekday: u32, day: u32) -> u32 {
    (first_weekday + day - 1) % 7
}

/// Iterates the set bits of `mask`, lowest first.
fn bits(mut mask: u64) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        let bit = (mask != 0).then(|| mask.trailing_zeros())?;
        mask &= mask - 1;
        Some(bit)
    })
}

impl DomForms {
    pub fn is_empty(&self) -> bool {
        *self == DomForms::default()
    }

    /// The days (bits 1..=len) these forms pick in a month of `len` days whose
    /// 1st falls on `first_weekday` (0 = Sunday).
    pub fn days(&self, first_weekday: u32, len: u32) -> u64 {
        let mut days = 0u64;
        for n in bits(u64::from(self.before_last)).filter(|&n| n < len) {
            days |= 1 << (len - n);
        }
        if self.last_weekday {
            days |= 1
                << match weekday_of(first_weekday, len) {
                    6 => len - 1, // Saturday: the Friday before
                    0 => len - 2, // Sunday: the Friday before
                    _ => len,
                };
        }
        // Quartz's rule: a Saturday moves to the Friday before and a Sunday to
        // the Monday after, except where that would leave the month. A day the
        // month lacks (30W in February) has no nearest weekday in it.
        for n in bits(u64::from(self.nearest_weekday)).filter(|&n| n <= len) {
            days |= 1
                << match weekday_of(first_weekday, n) {
                    6 if n == 1 => 3,
                    6 => n - 1,
                    0 if n == len => n - 2,
                    0 => n + 1,
                    _ => n,
                };
        }
        days
    }
}

impl DowForms {
    pub fn is_empty(&self) -> bool {
        *self == DowForms::default()
    }

    /// The days (bits 1..=len) these forms pick in a month of `len` days whose
    /// 1st falls on `first_weekday` (0 = Sunday).
    pub fn days(&self, first_weekday: u32, len: u32) -> u64 {
        // The first day of the month that falls on weekday `wd`.
        let first = |wd: u32| 1 + (wd + 7 - first_weekday) % 7;
        let mut days = 0u64;
        for wd in bits(u64::from(self.last)) {
            let f = first(wd);
            days |= 1 << (f + (len - f) / 7 * 7);
        }
        for (k, weekdays) in (0u32..).zip(self.nth) {
            for wd in bits(u64::from(weekdays)) {
                let day = first(wd) + 7 * k;
                if day <= len {
                    days |= 1 << day;
                }
            }
        }
        days
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(mask: u64) -> Vec<u32> {
        bits(mask).collect()
    }

    #[test]
    fn day_of_month_forms() {
        // February 2026: 28 days, the 1st a Sunday (0); the 28th a Saturday.
        let (feb, len) = (0, 28);
        let dom = |f: DomForms| list(f.days(feb, len));
        assert_eq!(dom(DomForms { before_last: 1, ..Default::default() }), [28]);
        assert_eq!(dom(DomForms { before_last: 1 << 3, ..Default::default() }), [25]);
        assert_eq!(dom(DomForms { before_last: 1 << 27, ..Default::default() }), [1]);
        assert_eq!(dom(DomForms { before_last: 1 << 28 | 1 << 30, ..Default::default() }), [] as [u32; 0]);
        assert_eq!(dom(DomForms { last_weekday: true, ..Default::default() }), [27]);
        let w = |n: u32| dom(DomForms { nearest_weekday: 1 << n, ..Default::default() });
        assert_eq!(w(1), [2]); // Sunday the 1st: Monday the 2nd
        assert_eq!(w(7), [6]); // Saturday: Friday
        assert_eq!(w(8), [9]); // Sunday: Monday
        assert_eq!(w(10), [10]);
        assert_eq!(w(28), [27]); // Saturday the last: Friday
        assert_eq!(w(29), [] as [u32; 0]); // no 29th
        // November 2025: 30 days, the 1st a Saturday; the 30th a Sunday.
        let nov = |n: u32| list(DomForms { nearest_weekday: 1 << n, ..Default::default() }.days(6, 30));
        assert_eq!(nov(1), [3]); // Saturday the 1st: Monday the 3rd, not October 31
        assert_eq!(nov(30), [28]); // Sunday the last: Friday the 28th, not December 1
        assert_eq!(list(DomForms { last_weekday: true, ..Default::default() }.days(6, 30)), [28]);
    }

    #[test]
    fn day_of_week_forms() {
        // March 2026: 31 days, the 1st a Sunday.
        let dow = |f: DowForms| list(f.days(0, 31));
        assert_eq!(dow(DowForms { last: 1 << 5, ..Default::default() }), [27]); // last Friday
        assert_eq!(dow(DowForms { last: 1 << 2, ..Default::default() }), [31]); // last Tuesday
        assert_eq!(dow(DowForms { last: 1, ..Default::default() }), [29]); // last Sunday
        let nth = |k: usize, wd: u32| {
            let mut f = DowForms::default();
            f.nth[k - 1] = 1 << wd;
            dow(f)
        };
        assert_eq!(nth(1, 0), [1]);
        assert_eq!(nth(3, 5), [20]);
        assert_eq!(nth(5, 2), [31]);
        assert_eq!(nth(5, 3), [] as [u32; 0]); // only four Wednesdays
    }
}
