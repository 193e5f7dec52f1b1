//! Next-fire computations per second: cronstack-cron next to the `croner` and `cron` crates,
//! on the same 20 expressions (UTC and zoned) from the same start instants.
//!
//! cargo bench -p cronstack-cron --bench next_fire
//!
//! Each iteration computes, for every expression, 32 next fire times from pseudo-random
//! instants in 2020-2035 (as after a restart) and 32 chained ones (each from the previous
//! fire time, as a scheduler does). The peers get `DateTime<Tz>` values built beforehand, so
//! only their search is timed. Expressions use day names rather than numbers because the
//! `cron` crate numbers weekdays the Quartz way (1 = Sunday); it also needs a seconds field,
//! so 5-field expressions get a leading `0` for it.

use std::hint::black_box;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cronstack_cron::Trigger;

/// (expression, zone): 10 in UTC, 10 zoned; all fire, all three libraries accept them.
pub const EXPRESSIONS: &[(&str, &str)] = &[
    ("* * * * *", "UTC"),
    ("*/5 * * * *", "UTC"),
    ("0 * * * *", "UTC"),
    ("30 2 * * *", "UTC"),
    ("0 9 * * MON-FRI", "UTC"),
    ("0 0 1 * *", "UTC"),
    ("0 0 29 2 *", "UTC"),
    ("15,45 8-18/2 1-15 * MON-FRI", "UTC"),
    ("*/10 * * * * *", "UTC"),
    ("17 * * * * *", "UTC"),
    ("0 3 * * *", "Europe/Paris"),
    ("*/15 * * * *", "America/New_York"),
    ("30 2 * * *", "America/New_York"),
    ("0 9 * * MON-FRI", "Europe/London"),
    ("*/30 * * * *", "Australia/Lord_Howe"),
    ("0 0 * * *", "Asia/Kolkata"),
    ("0 12 1,15 * *", "America/Los_Angeles"),
    ("45 23 * * SUN", "Asia/Tokyo"),
    ("@hourly", "Europe/Berlin"),
    ("0 0 31 * *", "Australia/Sydney"),
];

const RANDOM_STARTS: usize = 32;
const CHAINED: usize = 32;

fn starts(seed: u64) -> Vec<i64> {
    let mut rng = seed | 1;
    (0..RANDOM_STARTS + 1)
        .map(|_| {
            // xorshift64*: cheap, deterministic.
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            let r = rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
            (1_577_836_800_000 + (r % 473_040_000_000) as i64) / 1000 * 1000
        })
        .collect()
}

struct Case {
    zoned: bool,
    ours: Trigger,
    croner: croner::Cron,
    cron: cron::Schedule,
    tz: Tz,
    starts_ms: Vec<i64>,
    starts_tz: Vec<DateTime<Tz>>,
}

fn cases() -> Vec<Case> {
    EXPRESSIONS
        .iter()
        .enumerate()
        .map(|(i, &(expr, zone))| {
            let tz: Tz = zone.parse().expect("zone");
            let fields = expr.split_whitespace().count();
            let quartz = if fields == 5 { format!("0 {expr}") } else { expr.to_string() };
            let starts_ms = starts(0x9E37_79B9_7F4A_7C15 ^ (i as u64 * 0x1234_5678));
            let starts_tz = starts_ms
                .iter()
                .map(|&ms| Utc.timestamp_millis_opt(ms).unwrap().with_timezone(&tz))
                .collect();
            Case {
                zoned: zone != "UTC",
                ours: Trigger::cron(expr, zone).expect("cronstack accepts it"),
                croner: croner::Cron::from_str(expr).expect("croner accepts it"),
                cron: cron::Schedule::from_str(&quartz).expect("cron accepts it"),
                tz,
                starts_ms,
                starts_tz,
            }
        })
        .collect()
}

fn ours(cases: &[&Case]) {
    for c in cases {
        for &s in &c.starts_ms[1..] {
            black_box(c.ours.next_after(black_box(s)));
        }
        let mut t = c.starts_ms[0];
        for _ in 0..CHAINED {
            t = c.ours.next_after(black_box(t)).unwrap_or(c.starts_ms[0]);
        }
        black_box(t);
    }
}

fn croner(cases: &[&Case]) {
    for c in cases {
        for s in &c.starts_tz[1..] {
            black_box(c.croner.find_next_occurrence(black_box(s), false).ok());
        }
        let mut t = c.starts_tz[0];
        for _ in 0..CHAINED {
            t = c.croner.find_next_occurrence(black_box(&t), false).unwrap_or(c.starts_tz[0]);
        }
        black_box(t);
    }
}

fn cron_crate(cases: &[&Case]) {
    for c in cases {
        for s in &c.starts_tz[1..] {
            black_box(c.cron.after(black_box(s)).next());
        }
        let mut t = c.starts_tz[0];
        for _ in 0..CHAINED {
            // Restart when the search gives up (the cron crate stops at its year limit).
            t = c.cron.after(black_box(&t)).next().unwrap_or(c.starts_tz[0]);
        }
        black_box(t);
        let _ = c.tz;
    }
}

fn bench(c: &mut Criterion) {
    let all = cases();
    for (label, filter) in [("all", None), ("utc", Some(false)), ("zoned", Some(true))] {
        let set: Vec<&Case> = all.iter().filter(|c| filter.is_none_or(|z| c.zoned == z)).collect();
        let mut group = c.benchmark_group(format!("next_fire_{label}"));
        group.throughput(Throughput::Elements((set.len() * (RANDOM_STARTS + CHAINED)) as u64));
        group.bench_function("cronstack", |b| b.iter(|| ours(&set)));
        group.bench_function("croner", |b| b.iter(|| croner(&set)));
        group.bench_function("cron", |b| b.iter(|| cron_crate(&set)));
        group.finish();
    }
}

fn config() -> Criterion {
    let quick = std::env::var_os("QUICK").is_some_and(|v| v != "0");
    let (warm, measure, samples) = if quick { (200, 700, 10) } else { (1000, 3000, 30) };
    Criterion::default()
        .warm_up_time(Duration::from_millis(warm))
        .measurement_time(Duration::from_millis(measure))
        .sample_size(samples)
}

criterion_group! { name = benches; config = config(); targets = bench }
criterion_main!(benches);
