//! The machine's limit for the lateness rows: no scheduler, no database, no async runtime.
//! At each slot of the benchmark's job set, THREADS threads take the slot's jobs from a queue
//! and each runs `std::process::Command::new("sh").args(["-c", "true"]).spawn()` (posix_spawn)
//! and then waits for it; lateness = time right after spawn returned − slot. The main thread
//! sleeps until each slot with `thread::sleep` (no lookahead work to do). With BENCH_FIFO set
//! (the observed rows), the child is `sh -c 'echo <k> <slot_ms> > FIFO'` (k: the job's rank in
//! its slot) for bench/peers/src/bin/fifo_stamp.rs to stamp when the job's first command ran.
//!
//! bare_burst minute|second JOBS SECONDS OUT [THREADS]   (prints "ready"; THREADS default 16)

use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cronstack_bench_peers::{jobs_per_second, now_us, write_records};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bare_burst minute|second JOBS SECONDS OUT [THREADS]";
    let mode = args.get(1).ok_or(usage)?.clone();
    let jobs: usize = args.get(2).ok_or(usage)?.parse()?;
    let seconds: i64 = args.get(3).ok_or(usage)?.parse()?;
    let out = args.get(4).ok_or(usage)?.clone();
    let threads: usize = args.get(5).map(|t| t.parse()).transpose()?.unwrap_or(16);

    let per_second = jobs_per_second(&mode, jobs).ok_or(usage)?;

    let fifo = std::env::var("BENCH_FIFO").ok();
    let (tx, rx) = mpsc::channel::<(i64, usize)>();
    let rx = Arc::new(Mutex::new(rx));
    let records = Arc::new(Mutex::new(Vec::<(i64, i64)>::with_capacity(1 << 20)));
    for _ in 0..threads {
        let rx = rx.clone();
        let records = records.clone();
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            loop {
                let (slot_ms, k) = match rx.lock().unwrap().recv() {
                    Ok(s) => s,
                    Err(_) => return,
                };
                let script = match &fifo {
                    Some(f) => format!("echo {k} {slot_ms} > {f}"),
                    None => "true".to_string(),
                };
                let child = std::process::Command::new("sh").args(["-c", &script]).spawn();
                let started = now_us();
                records.lock().unwrap().push((slot_ms, started - slot_ms * 1000));
                if let Ok(mut child) = child {
                    let _ = child.wait();
                }
            }
        });
    }
    println!("ready");
    std::io::stdout().flush()?;
    let end_ms = now_us() / 1000 + seconds * 1000;
    let mut slot = (now_us() / 1000 / 1000 + 1) * 1000;
    while slot < end_ms {
        let n = per_second.get(&(slot / 1000 % 60)).copied().unwrap_or(0);
        let wait = slot * 1000 - now_us();
        if wait > 0 {
            std::thread::sleep(Duration::from_micros(wait as u64));
        }
        for k in 0..n {
            tx.send((slot, k))?;
        }
        slot += 1000;
    }
    std::thread::sleep(Duration::from_secs(2));
    write_records(&out, &records.lock().unwrap())?;
    std::process::exit(0);
}
