//! What the peers share: their clock, the job set of the lateness rows, and the file of
//! lateness records bench/driver.py reads.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in µs.
pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Jobs due at each second of the minute: `minute`, JOBS spread over the seconds (job i at
/// second i % 60); `second`, all JOBS every second. `None` for another mode.
pub fn jobs_per_second(mode: &str, jobs: usize) -> Option<BTreeMap<i64, usize>> {
    let mut per_second = BTreeMap::new();
    match mode {
        "minute" => {
            for i in 0..jobs {
                *per_second.entry((i % 60) as i64).or_default() += 1;
            }
        }
        "second" => {
            for s in 0..60 {
                per_second.insert(s, jobs);
            }
        }
        _ => return None,
    }
    Some(per_second)
}

/// Writes one "slot_ms lateness_us" line per record to `path`.
pub fn write_records(path: &str, records: &[(i64, i64)]) -> std::io::Result<()> {
    let mut text = String::with_capacity(records.len() * 24);
    for (slot, late) in records {
        text.push_str(&format!("{slot} {late}\n"));
    }
    std::fs::write(path, text)
}
