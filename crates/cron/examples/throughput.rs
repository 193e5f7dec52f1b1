//! How many `next_after` computations per second?
//!
//! Run: `cargo run --release -p cronstack-cron --example throughput`
//!
//! For each of ~20 mixed expressions (UTC and zoned), half the calls chain
//! (each from the previous fire time, as a scheduler does) and half start
//! from pseudo-random instants in 2020-2035 (as after a restart). The Quartz
//! day forms and `H` are measured apart, after the totals, so that the totals
//! compare with runs from before they existed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cronstack_cron::Trigger;

const EXPRESSIONS: &[(&str, &str)] = &[
    ("* * * * *", "UTC"),
    ("*/5 * * * *", "UTC"),
    ("0 * * * *", "UTC"),
    ("30 2 * * *", "UTC"),
    ("0 9 * * MON-FRI", "UTC"),
    ("0 0 1 * *", "UTC"),
    ("0 0 29 2 *", "UTC"),
    ("15,45 8-18/2 1-15 * 1-5", "UTC"),
    ("*/10 * * * * *", "UTC"),
    ("0 0 29 2 1", "UTC"),
    ("0 3 * * *", "Europe/Paris"),
    ("*/15 * * * *", "America/New_York"),
    ("30 2 * * *", "America/New_York"),
    ("0 9 * * 1-5", "Europe/London"),
    ("*/30 * * * *", "Australia/Lord_Howe"),
    ("0 0 * * *", "Asia/Kolkata"),
    ("0 12 1,15 * *", "America/Los_Angeles"),
    ("45 23 * * 0", "Asia/Tokyo"),
    ("@hourly", "Europe/Berlin"),
    ("@every 90s", "UTC"),
];

/// Quartz day forms and `H` (with the key of a job uid).
const NEW_SYNTAX: &[(&str, &str)] = &[
    ("0 0 L * *", "UTC"),
    ("0 18 LW * *", "UTC"),
    ("0 9 15W * *", "UTC"),
    ("0 9 * * 5L", "UTC"),
    ("0 9 * * FRI#3", "UTC"),
    ("0 9 1,15W,L * MON#1", "UTC"),
    ("H H * * *", "UTC"),
    ("H/15 * * * *", "America/New_York"),
    ("30 2 * * 0L", "Europe/Berlin"),
    ("H 3 L-3 * *", "Europe/Paris"),
];

const CALLS_PER_EXPRESSION: u64 = 400_000;

/// `CALLS_PER_EXPRESSION` calls, half chained and half from `starts`; the time they took.
fn measure(trigger: &Trigger, starts: &[i64]) -> Duration {
    let begin = Instant::now();
    let mut t = starts[0];
    for _ in 0..CALLS_PER_EXPRESSION / 2 {
        // Chained: from the previous fire time (restart when exhausted).
        t = black_box(trigger).next_after(black_box(t)).unwrap_or(starts[0]);
    }
    for &start in starts {
        black_box(black_box(trigger).next_after(black_box(start)));
    }
    begin.elapsed()
}

fn main() {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut random_instant = move || {
        // xorshift64*: cheap, deterministic, good enough to spread start points.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        let r = rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        1_577_836_800_000 + (r % 473_040_000_000) as i64 // 2020-01-01 + up to 15 years
    };

    let (mut utc_calls, mut utc_time) = (0u64, Duration::ZERO);
    let (mut zoned_calls, mut zoned_time) = (0u64, Duration::ZERO);
    println!("{:<28} {:<20} {:>12}", "expression", "zone", "calls/s");
    for &(expr, tz) in EXPRESSIONS {
        let trigger = Trigger::cron(expr, tz).expect("valid expression");
        let starts: Vec<i64> = (0..CALLS_PER_EXPRESSION / 2).map(|_| random_instant()).collect();
        let elapsed = measure(&trigger, &starts);
        let rate = CALLS_PER_EXPRESSION as f64 / elapsed.as_secs_f64();
        println!("{expr:<28} {tz:<20} {rate:>12.0}");
        if tz == "UTC" {
            utc_calls += CALLS_PER_EXPRESSION;
            utc_time += elapsed;
        } else {
            zoned_calls += CALLS_PER_EXPRESSION;
            zoned_time += elapsed;
        }
    }
    let rate = |calls: u64, time: Duration| calls as f64 / time.as_secs_f64() / 1e6;
    println!();
    println!("UTC:     {:.2} M next_after/s", rate(utc_calls, utc_time));
    println!("zoned:   {:.2} M next_after/s", rate(zoned_calls, zoned_time));
    println!("overall: {:.2} M next_after/s", rate(utc_calls + zoned_calls, utc_time + zoned_time));

    println!();
    let key = cronstack_cron::hash_key("4be1c3c0a0a34b9bb9e0a6b1c2d3e4f5");
    let (mut calls, mut time) = (0u64, Duration::ZERO);
    for &(expr, tz) in NEW_SYNTAX {
        let trigger = Trigger::cron_with_hash_key(expr, tz, key).expect("valid expression");
        let starts: Vec<i64> = (0..CALLS_PER_EXPRESSION / 2).map(|_| random_instant()).collect();
        let elapsed = measure(&trigger, &starts);
        let rate = CALLS_PER_EXPRESSION as f64 / elapsed.as_secs_f64();
        println!("{expr:<28} {tz:<20} {rate:>12.0}");
        (calls, time) = (calls + CALLS_PER_EXPRESSION, time + elapsed);
    }
    println!();
    println!("L/W/#/H: {:.2} M next_after/s", rate(calls, time));
}
