//! Runs of `true` per second through `spawn` + `wait`, next to a bare loop of
//! `std::process::Command::new("sh").args(["-c", "true"]).status()`, both with
//! the same number of runs in flight.
//!
//! cargo run --release -p cronstack-exec --example spawn_rate [-- RUNS [IN_FLIGHT [ROUNDS [WORKERS]]]]
//!
//! WORKERS is the tokio worker thread count (default: tokio's, one per core).
//! It matters on a CPU-contended machine: posix_spawn blocks the calling
//! thread until the child has exec'd, so only WORKERS spawns can be in that
//! phase at once, while the bare loop has IN_FLIGHT threads doing it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cronstack_exec::{Command, Outcome, spawn};

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// `in_flight` threads, each spawning and waiting in a loop.
fn bare(runs: usize, in_flight: usize) -> f64 {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..in_flight {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < runs {
                    let st =
                        std::process::Command::new("sh").args(["-c", "true"]).status().expect("spawn sh");
                    assert!(st.success());
                }
            });
        }
    });
    runs as f64 / start.elapsed().as_secs_f64()
}

/// `in_flight` tokio tasks, each running jobs through the executor.
fn exec(rt: &tokio::runtime::Runtime, runs: usize, in_flight: usize) -> f64 {
    rt.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..in_flight {
            let next = next.clone();
            tasks.spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < runs {
                    let cmd = Command { script: "true".into(), name: "bench".into(), ..Default::default() };
                    let f = spawn(cmd).expect("spawn").wait().await;
                    assert_eq!(f.outcome, Outcome::Succeeded);
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("bench task");
        }
        runs as f64 / start.elapsed().as_secs_f64()
    })
}

/// CPU time (user + system) used so far by this process itself, in seconds:
/// children are not included, so this is the launcher's own cost. From
/// /proc, in clock ticks (100 per second on Linux).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After "pid (comm)": state is at 0, utime at 11, stime at 12.
    fields.get(11).zip(fields.get(12)).map_or(0.0, |(u, s)| (u + s) / 100.0)
}

/// Runs `f`, returning its rate and the launcher's own CPU µs per run.
fn measure(runs: usize, f: impl FnOnce() -> f64) -> (f64, f64) {
    let cpu = own_cpu();
    let rate = f();
    (rate, (own_cpu() - cpu) * 1e6 / runs as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs = arg(1, 3000);
    let in_flight = arg(2, 16).max(1);
    let rounds = arg(3, 5).max(1);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = std::env::args().nth(4).and_then(|a| a.parse().ok()) {
        builder.worker_threads(workers);
    }
    let rt = builder.enable_all().build().expect("runtime");

    // Warm up both paths (page cache, allocator, runtime threads).
    bare(runs / 10 + 1, in_flight);
    exec(&rt, runs / 10 + 1, in_flight);

    // Alternate so drift in machine load hits both alike.
    let (mut b, mut e, mut bc, mut ec) = (vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        let (br, bcpu) = measure(runs, || bare(runs, in_flight));
        let (er, ecpu) = measure(runs, || exec(&rt, runs, in_flight));
        println!(
            "round {round}: bare {br:5.0}/s ({bcpu:3.0} µs own CPU/run)   \
             exec {er:5.0}/s ({ecpu:3.0} µs)   ratio {:.3}",
            er / br
        );
        b.push(br);
        e.push(er);
        bc.push(bcpu);
        ec.push(ecpu);
    }
    let (b, e) = (median(b), median(e));
    let (bc, ec) = (median(bc), median(ec));
    println!(
        "median of {rounds} rounds, {runs} runs each, {in_flight} in flight, \
         {} tokio workers, {} cores, load average {}:",
        rt.metrics().num_workers(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?")
    );
    println!("  bare sh -c true : {b:6.0} runs/s   launcher CPU {bc:4.0} µs/run");
    println!("  cronstack-exec  : {e:6.0} runs/s   launcher CPU {ec:4.0} µs/run");
    println!("  ratio           : {:.3}", e / b);
}
