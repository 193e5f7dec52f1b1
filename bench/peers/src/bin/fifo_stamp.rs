//! The clock of the "observed" lateness rows: the jobs of every scheduler run
//! `echo <id> [<slot_ms>] > FIFO` as their first command (`echo` is a shell builtin: no process
//! is started to take the measure) and this program stamps each line with CLOCK_REALTIME (µs)
//! right after the `read` that returned it. Lines that arrive in one `read` share its stamp (an
//! upper bound of when each was written). No async runtime, no allocation per line on the hot
//! path beyond the copy of its bytes; the lines are written out at the end.
//!
//! fifo_stamp FIFO OUT   (FIFO must exist; prints "ready" once it is open; a line "stop" ends
//! the run, and every line before it is written to OUT as "<line> <stamp_us>")

use std::fs::OpenOptions;
use std::io::{Read, Write};

use cronstack_bench_peers::now_us;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: fifo_stamp FIFO OUT";
    let fifo = args.get(1).ok_or(usage)?;
    let out = args.get(2).ok_or(usage)?;
    // Read-write: the FIFO never reports EOF between writers, and a writer's open never waits.
    let mut f = OpenOptions::new().read(true).write(true).open(fifo)?;
    println!("ready");
    std::io::stdout().flush()?;
    let mut buf = vec![0u8; 1 << 16];
    let mut partial: Vec<u8> = Vec::new();
    let mut lines: Vec<(Vec<u8>, i64)> = Vec::with_capacity(1 << 20);
    'outer: loop {
        let n = f.read(&mut buf)?;
        let stamp = now_us();
        if n == 0 {
            continue;
        }
        let mut rest = &buf[..n];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut partial);
            line.extend_from_slice(&rest[..i]);
            rest = &rest[i + 1..];
            if line == b"stop" {
                break 'outer;
            }
            if !line.is_empty() {
                lines.push((line, stamp));
            }
        }
        partial.extend_from_slice(rest);
    }
    let mut text = Vec::with_capacity(lines.len() * 40);
    for (line, stamp) in &lines {
        text.extend_from_slice(line);
        text.extend_from_slice(format!(" {stamp}\n").as_bytes());
    }
    std::fs::write(out, text)?;
    Ok(())
}
