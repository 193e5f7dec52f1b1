//! Jenkins-style `H`: a field value chosen by hashing a key (a job's uid), so
//! that jobs sharing an expression spread over the field instead of all firing
//! at the same moment, while each job keeps the same value every time.
//!
//! Every node of a cluster must compute the same values, in every version, so
//! both steps are fixed integer formulas (never `std`'s `DefaultHasher`):
//! - [`hash_key`]: FNV-1a, 64 bits, of the uid's UTF-8 bytes;
//! - the `i`-th `H` of field `f` (counting from 0 within the field; fields
//!   numbered second 0, minute 1, hour 2, day-of-month 3, month 4,
//!   day-of-week 5) picks `splitmix64(key ^ (f << 32 | i)) % choices`, where
//!   `choices` is the number of values it may take (the range's length, or the
//!   step for `H/n`).
//!
//! Numbering per field keeps a job's minute when `H` is added to its hour
//! field, and gives the hours of `H H * * *` no tie to its minutes.

use crate::error::{Field, ParseError};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The hash key of a job uid for `H` (see [`Trigger::cron_with_hash_key`](crate::Trigger::cron_with_hash_key)):
/// 64-bit FNV-1a of the uid's UTF-8 bytes. Stable across versions and platforms.
pub fn hash_key(uid: &str) -> u64 {
    uid.bytes().fold(FNV_OFFSET_BASIS, |h, b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// SplitMix64's output function: spreads FNV-1a's weak low bits (uids that
/// differ in their last character) over the whole word before `%`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn field_number(field: Field) -> u64 {
    match field {
        Field::Second => 0,
        Field::Minute => 1,
        Field::Hour => 2,
        Field::DayOfMonth => 3,
        Field::Month => 4,
        Field::DayOfWeek => 5,
    }
}

/// One `H`, `H(a-b)`, `H/n` or `H(a-b)/n` list item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HashItem {
    /// Its position among the field's `H` items.
    pub index: u32,
    pub start: u32,
    pub end: u32,
    pub step: Option<u32>,
}

impl HashItem {
    /// How many values the hash chooses among: offsets `0..step` for a step,
    /// else every value of the range.
    pub fn choices(&self) -> u32 {
        self.step.unwrap_or(self.end - self.start + 1)
    }

    /// The values allowed for choice `pick` (< `choices()`).
    pub fn bits(&self, pick: u32) -> u64 {
        match self.step {
            None => 1 << (self.start + pick),
            Some(step) => {
                (self.start + pick..=self.end).step_by(step as usize).fold(0, |bits, v| bits | 1 << v)
            }
        }
    }

    /// The choice a key makes for this item of `field`.
    pub fn pick(&self, field: Field, key: u64) -> u32 {
        let salt = field_number(field) << 32 | u64::from(self.index);
        (splitmix64(key ^ salt) % u64::from(self.choices())) as u32
    }
}

/// The range a bare `H` chooses from. As in Jenkins, day-of-month stops at 28
/// (a value every month has) and day-of-week at 6 (7 is Sunday again).
pub(crate) fn default_range(field: Field) -> (u32, u32) {
    match field {
        Field::DayOfMonth => (1, 28),
        Field::DayOfWeek => (0, 6),
        _ => (field.min(), field.max()),
    }
}

/// At most this many combinations of `H` choices in the date fields are tried
/// when checking that an expression fires whatever the key.
pub(crate) const MAX_DATE_COMBINATIONS: usize = 50_000;

/// Every combination of one value from each list, in order (`[[1, 2], [3]]`
/// → `[1, 3], [2, 3]`), or `None` when there are more than `max`.
pub(crate) fn combinations(lists: &[Vec<u64>], max: usize) -> Option<Vec<Vec<u64>>> {
    let count = lists.iter().try_fold(1usize, |n, l| n.checked_mul(l.len()).filter(|&n| n <= max))?;
    let mut out = Vec::with_capacity(count);
    let mut current = Vec::with_capacity(lists.len());
    fn walk(lists: &[Vec<u64>], current: &mut Vec<u64>, out: &mut Vec<Vec<u64>>) {
        match lists.split_first() {
            None => out.push(current.clone()),
            Some((first, rest)) => {
                for &v in first {
                    current.push(v);
                    walk(rest, current, out);
                    current.pop();
                }
            }
        }
    }
    walk(lists, &mut current, &mut out);
    Some(out)
}

/// Why an `H` item's step is refused: longer than its range, it would let
/// some keys pick no value at all.
pub(crate) fn check_step(field: Field, token: &str, item: &HashItem) -> Result<(), ParseError> {
    match item.step {
        Some(step) if step > item.end - item.start + 1 => Err(ParseError::InvalidForm {
            field,
            token: token.to_string(),
            reason: format!("the step {step} is longer than the range {}-{}", item.start, item.end),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These values are a contract: every node and every version must agree.
    #[test]
    fn hash_values_are_pinned() {
        assert_eq!(hash_key(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash_key("a"), 0xaf63_dc4c_8601_ec8c); // FNV-1a's published test vector
        assert_eq!(hash_key("foobar"), 0x8594_4171_f739_67e8);
        let item = |start, end, step| HashItem { index: 0, start, end, step };
        let key = hash_key("0123456789abcdef0123456789abcdef");
        let picks: Vec<u32> = [Field::Second, Field::Minute, Field::Hour, Field::DayOfMonth]
            .into_iter()
            .map(|f| item(0, 59, None).pick(f, key))
            .collect();
        assert_eq!(picks, PINNED_PICKS);
    }

    // Computed independently (Python) from the formula in the module doc.
    const PINNED_PICKS: [u32; 4] = [28, 4, 29, 47];

    #[test]
    fn items() {
        let h = HashItem { index: 0, start: 0, end: 59, step: Some(15) };
        assert_eq!(h.choices(), 15);
        assert_eq!(h.bits(7), 1 << 7 | 1 << 22 | 1 << 37 | 1 << 52);
        let h = HashItem { index: 0, start: 10, end: 19, step: None };
        assert_eq!(h.choices(), 10);
        assert_eq!(h.bits(9), 1 << 19);
        assert_eq!(combinations(&[vec![1, 2], vec![3]], 10), Some(vec![vec![1, 3], vec![2, 3]]));
        assert_eq!(combinations(&[vec![1, 2], vec![3, 4]], 3), None);
        assert_eq!(combinations(&[], 3), Some(vec![vec![]]));
    }
}
