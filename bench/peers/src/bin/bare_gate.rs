//! The machine's limit for cronstack's way of starting a burst (prespawn), for the observed
//! lateness rows: no scheduler, no database, no async runtime. A lookahead before each slot,
//! the slot's jobs are spawned (4 threads, posix_spawn) as `/bin/sh -c '<gate line>
//! echo <k> <slot_ms> > FIFO'` in their own process groups, stdin a fresh pipe (the gate),
//! each held at the gate line cronstack's executor uses (crates/exec, `GATE_LINE`). At the
//! slot one thread writes one newline per job in a single write, as cronstack's release
//! does; recorded lateness = time right after that write − slot. What is left between the
//! write and each job's first command is the kernel waking the held shells and each shell
//! reaching its first command on the machine's cores: the floor of this design, the same
//! FIFO stamping (bench/peers/src/bin/fifo_stamp.rs) as every scheduler of the row.
//!
//! bare_gate minute|second JOBS SECONDS OUT   (prints "ready"; BENCH_FIFO required; the
//! lookahead is the row's cronstack's: 200 ms for minute, 1,000 ms for second)

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cronstack_bench_peers::{jobs_per_second, now_us, write_records};

/// crates/exec's `GATE_LINE`, byte for byte.
const GATE_LINE: &str = "read -r _ || exit 125; exec </dev/null\n";
const SPAWN_THREADS: usize = 4;

fn sleep_until_us(at: i64) {
    let wait = at - now_us();
    if wait > 0 {
        std::thread::sleep(Duration::from_micros(wait as u64));
    }
}

/// One slot's jobs, held at their gate.
struct Held {
    slot_ms: i64,
    gate: std::io::PipeWriter,
    children: Vec<Child>,
}

fn hold(slot_ms: i64, n: usize, fifo: &str) -> std::io::Result<Held> {
    let (reader, gate) = std::io::pipe()?;
    let children = Mutex::new(Vec::with_capacity(n));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..SPAWN_THREADS {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if k >= n {
                        return;
                    }
                    let Ok(stdin) = reader.try_clone() else { return };
                    let child = Command::new("/bin/sh")
                        .arg("-c")
                        .arg(format!("{GATE_LINE}echo {k} {slot_ms} > {fifo}"))
                        .env_clear()
                        .stdin(stdin)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .process_group(0)
                        .spawn();
                    if let Ok(child) = child {
                        children.lock().unwrap().push(child);
                    }
                }
            });
        }
    });
    Ok(Held { slot_ms, gate, children: children.into_inner().unwrap() })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bare_gate minute|second JOBS SECONDS OUT";
    let mode = args.get(1).ok_or(usage)?.clone();
    let jobs: usize = args.get(2).ok_or(usage)?.parse()?;
    let seconds: i64 = args.get(3).ok_or(usage)?.parse()?;
    let out = args.get(4).ok_or(usage)?.clone();
    let fifo = std::env::var("BENCH_FIFO").map_err(|_| "BENCH_FIFO is required")?;

    let per_second = jobs_per_second(&mode, jobs).ok_or(usage)?;
    let lookahead_ms = if mode == "second" { 1000 } else { 200 };

    let records = Arc::new(Mutex::new(Vec::<(i64, i64)>::with_capacity(1 << 16)));
    let (reap_tx, reap_rx) = mpsc::channel::<Vec<Child>>();
    std::thread::spawn(move || {
        for children in reap_rx {
            for mut child in children {
                let _ = child.wait();
            }
        }
    });
    let (release_tx, release_rx) = mpsc::channel::<Held>();
    let releaser = {
        let records = records.clone();
        std::thread::spawn(move || {
            for mut held in release_rx {
                let lines = vec![b'\n'; held.children.len()];
                sleep_until_us(held.slot_ms * 1000);
                let _ = held.gate.write_all(&lines);
                let late = now_us() - held.slot_ms * 1000;
                // One record per job, as the other peers write.
                records.lock().unwrap().extend(std::iter::repeat_n((held.slot_ms, late), lines.len()));
                drop(held.gate);
                let _ = reap_tx.send(held.children);
            }
        })
    };

    println!("ready");
    std::io::stdout().flush()?;
    let end_ms = now_us() / 1000 + seconds * 1000;
    // The first slot whose lookahead has not begun.
    let mut slot = (now_us() / 1000 + lookahead_ms) / 1000 * 1000 + 1000;
    while slot < end_ms {
        let n = per_second.get(&(slot / 1000 % 60)).copied().unwrap_or(0);
        sleep_until_us((slot - lookahead_ms) * 1000);
        if n > 0 {
            release_tx.send(hold(slot, n, &fifo)?)?;
        }
        slot += 1000;
    }
    drop(release_tx);
    let _ = releaser.join();
    std::thread::sleep(Duration::from_secs(2));
    write_records(&out, &records.lock().unwrap())?;
    std::process::exit(0);
}
