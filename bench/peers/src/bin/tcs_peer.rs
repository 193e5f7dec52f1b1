//! tokio-cron-scheduler running the benchmark's job sets, for bench/run.
//!
//! tcs_peer MODE JOBS SECONDS [OUT]
//!   MODE minute: job i fires once a minute at second i % 60 ("S * * * * *")
//!   MODE second: every job fires every second ("* * * * * *")
//!   MODE idle:   every job fires once a year ("0 0 0 1 1 *"): nothing runs
//!
//! Each fire spawns `sh -c true` through tokio::process and records the child-start lateness:
//! the time right after spawn returned minus the slot (the latest slot of the job at or before
//! the moment the job body started; exact while lateness stays under the job's period).
//! With BENCH_FIFO set (the observed rows), the child is `sh -c 'echo <job> <slot_ms> > FIFO'`
//! instead, for bench/peers/src/bin/fifo_stamp.rs to stamp when the job's first command ran.
//! Prints "ready" once every job is added and the scheduler started, then runs SECONDS and
//! writes "slot_ms lateness_us" lines to OUT.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cronstack_bench_peers::{now_us, write_records};
use tokio_cron_scheduler::{Job, JobScheduler};

type Records = Arc<Mutex<Vec<(i64, i64)>>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: tcs_peer minute|second|idle JOBS SECONDS [OUT]";
    let mode = args.get(1).ok_or(usage)?.clone();
    let jobs: usize = args.get(2).ok_or(usage)?.parse()?;
    let seconds: u64 = args.get(3).ok_or(usage)?.parse()?;
    let out = args.get(4).cloned();

    // Fair best configuration: the activation channels sized for every job at once, so the
    // broadcast channels never lag and drop activations (the default is 200).
    let sched = JobScheduler::new_with_channel_size(jobs.max(200) * 2).await?;
    let fifo = std::env::var("BENCH_FIFO").ok();
    let records: Records = Arc::new(Mutex::new(Vec::with_capacity(1 << 20)));
    for i in 0..jobs {
        let (expr, period_ms, offset_ms) = match mode.as_str() {
            "minute" => (format!("{} * * * * *", i % 60), 60_000, (i % 60) as i64 * 1000),
            "second" => ("* * * * * *".to_string(), 1000, 0),
            "idle" => ("0 0 0 1 1 *".to_string(), 1, 0),
            _ => return Err(usage.into()),
        };
        let records = records.clone();
        let fifo = fifo.clone();
        let job = Job::new_async(expr.as_str(), move |_id, _sched| {
            let records = records.clone();
            let fifo = fifo.clone();
            Box::pin(async move {
                let begun_ms = now_us() / 1000;
                let slot = (begun_ms - offset_ms).div_euclid(period_ms) * period_ms + offset_ms;
                let script = match &fifo {
                    Some(f) => format!("echo {i} {slot} > {f}"),
                    None => "true".to_string(),
                };
                let child = tokio::process::Command::new("sh").args(["-c", &script]).spawn();
                let started = now_us();
                records.lock().unwrap().push((slot, started - slot * 1000));
                if let Ok(mut child) = child {
                    let _ = child.wait().await;
                }
            })
        })?;
        sched.add(job).await?;
    }
    sched.start().await?;
    println!("ready");
    std::io::stdout().flush()?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    if let Some(path) = out {
        write_records(&path, &records.lock().unwrap())?;
    }
    // Skip the scheduler's shutdown: the measurement is over.
    std::process::exit(0);
}
