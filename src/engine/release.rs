//! The instant a group of claimed runs starts, kept by a thread of its own (the release
//! clock) rather than by a task on the runtime's workers.
//!
//! Why: at an instant with hundreds of runs, the first group released wakes hundreds of
//! processes at once. A release still waiting on a worker (the same node's next group, or in
//! a cluster the other nodes' groups of the same instant) then waits for those processes to
//! get off the CPU: with three nodes each starting 333 runs a second on 2 cores, whole groups
//! started 12–84 ms late (bench `cluster`; one node alone: 0–3 ms). The release clock sleeps
//! on a precise timer until the instant and runs the release there; where the system allows
//! it (root, `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at least 1, e.g. systemd's
//! `LimitRTPRIO=1`), at the lowest real-time priority, which goes before every ordinary
//! process. A release is a few hundred microseconds of work (one pipe write per group and
//! a task per run), so the clock never holds a CPU for long.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use crate::domain::EpochMs;

type Work = Box<dyn FnOnce() + Send>;

/// Hands releases to the release clock.
pub(super) struct ReleaseClock {
    tx: mpsc::Sender<(EpochMs, Work)>,
}

impl ReleaseClock {
    /// Starts the clock's thread; called inside the runtime, whose tasks a release may spawn.
    pub(super) fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new().name("release-clock".into()).spawn(move || {
            let _runtime = runtime.enter();
            match realtime() {
                Ok(()) => tracing::info!("release clock at real-time priority"),
                Err(e) => tracing::info!(error = %e, "release clock at ordinary priority (no real-time priority allowed)"),
            }
            keep_time(rx);
        })?;
        Ok(ReleaseClock { tx })
    }

    /// Runs `release` on the clock's thread at the wall-clock millisecond `at` (at once if it
    /// has passed); resolves once it has run.
    pub(super) async fn at(&self, at: EpochMs, release: impl FnOnce() + Send + 'static) {
        let (done, ran) = oneshot::channel();
        let work: Work = Box::new(move || {
            release();
            let _ = done.send(());
        });
        // The thread ends only when every sender is gone: this one is still here.
        if self.tx.send((at, work)).is_ok() {
            let _ = ran.await;
        }
    }
}

/// The clock's loop: sleeps until the earliest release, runs every release due, and takes
/// new ones meanwhile. Ends when every sender is gone and nothing is left to release.
fn keep_time(rx: mpsc::Receiver<(EpochMs, Work)>) {
    let mut pending: BTreeMap<(EpochMs, u64), Work> = BTreeMap::new();
    let mut seq = 0u64;
    loop {
        let next = pending.first_key_value().map(|(&(at, _), _)| at);
        let received = match next {
            Some(at) => match until(at) {
                Some(wait) => rx.recv_timeout(wait),
                None => {
                    let (_, work) = pending.pop_first().expect("peeked");
                    // A release that panics must not stop the clock for every later one.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_err() {
                        tracing::error!("a release panicked");
                    }
                    continue;
                }
            },
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match received {
            Ok((at, work)) => {
                seq += 1;
                pending.insert((at, seq), work);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) if pending.is_empty() => return,
            // Senders gone with releases left: each is still run at its instant.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(wait) = next.and_then(until) {
                    std::thread::sleep(wait);
                }
            }
        }
    }
}

/// How long until the wall-clock millisecond `at`, to the microsecond; `None` once reached.
fn until(at: EpochMs) -> Option<Duration> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let at = Duration::from_millis(at.max(0) as u64);
    at.checked_sub(now).filter(|d| !d.is_zero())
}

/// The calling thread at the lowest real-time priority (`SCHED_FIFO` 1), if allowed. Reset
/// on fork: a process started from this thread would otherwise inherit the priority, and no
/// job may run ahead of the rest of the machine.
fn realtime() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sets the calling thread's own scheduling policy; `param` outlives the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Jobs inherit the process's limits: with the limit that let this thread in (systemd's
    // `LimitRTPRIO=1`), a job could take real-time priority for itself. This thread keeps
    // its priority; the limit goes to 0 for everything started from now on.
    let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lowers the process's own limit; `none` outlives the call.
    unsafe { libc::setrlimit(libc::RLIMIT_RTPRIO, &none) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::domain::now_ms;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn releases_run_at_their_instant_in_order_and_past_ones_at_once() {
        let clock = Arc::new(ReleaseClock::start().unwrap());
        let ran = Arc::new(Mutex::new(Vec::new()));
        let base = now_ms() + 150;
        let mut waits = Vec::new();
        // Handed over out of order; one already past.
        for (label, at) in [("b", base + 60), ("a", base), ("past", base - 10_000), ("c", base + 120)] {
            let (clock, ran) = (clock.clone(), ran.clone());
            waits.push(tokio::spawn(async move {
                clock
                    .at(at, move || {
                        // A release may spawn tasks: the clock's thread is inside the runtime.
                        tokio::spawn(async {});
                        ran.lock().unwrap().push((label, now_ms() - at));
                    })
                    .await;
            }));
        }
        for w in waits {
            w.await.unwrap();
        }
        let ran = ran.lock().unwrap().clone();
        let order: Vec<&str> = ran.iter().map(|(l, _)| *l).collect();
        assert_eq!(order, ["past", "a", "b", "c"]);
        for (label, late) in &ran[1..] {
            assert!(*late >= 0, "{label} ran {late} ms early");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_release_that_panics_does_not_stop_the_clock() {
        let clock = ReleaseClock::start().unwrap();
        let at = now_ms() + 20;
        clock.at(at, || panic!("a bad release")).await;
        let (tx, rx) = oneshot::channel();
        clock.at(at + 10, move || tx.send(()).unwrap()).await;
        rx.await.expect("the next release ran");
    }
}
