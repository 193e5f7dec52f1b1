//! Spawning a job's process group and driving it to its end.
//!
//! Each run costs one posix_spawn (no `pre_exec`, so std keeps the fast path),
//! one or two pipes and one tokio task (the driver) that waits for the leader,
//! reads the output, enforces the timeout and kill requests, and cleans up
//! the group. Nothing is polled on a clock: every wake-up is an event.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::args::shell_operand;
use crate::env::{identity, valid_name};
use crate::group::Group;
use crate::log::{Capped, Log};
use crate::redact::Redactor;
use crate::{Command, EpochMs, Finished, Outcome};

/// How long to keep reading after the group was killed, waiting for the
/// pipes to reach EOF. Only a process that left the group (e.g. `setsid cmd &`)
/// can hold them open longer; we stop listening to it rather than hang.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);

/// Read buffer size; at most `MAX_READS_PER_WAKE` reads per wake-up so one
/// chatty stream cannot starve the other branches.
const READ_CHUNK: usize = 16 * 1024;
const MAX_READS_PER_WAKE: usize = 8;
/// Pipe buffers hold 64 KiB by default (up to 1 MiB if enlarged).
const MAX_READS_AT_DRAIN: usize = 64;

/// Used for a `kill_grace` too large to add to a clock: effectively never.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) fn now_ms() -> EpochMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Starts `cmd` as `/bin/sh -c '<script>' <name> <args…>` in a new process group, its
/// arguments placed by the crate's rule (an `InvalidInput` error for a command that takes
/// none). Must be called inside a tokio runtime (an error otherwise).
pub fn spawn(cmd: Command) -> io::Result<Running> {
    start(cmd, None).map(|(running, _)| running)
}

/// Holds jobs spawned ahead of their time at one gate, to let them all run at
/// one instant: a burst of runs due together then starts within a single write
/// instead of one spawn after another.
///
/// Each prepared job's `sh` reads one line from its stdin (the gate's pipe)
/// before the first line of its script, then points its stdin at /dev/null.
/// [`Gate::open`] writes one newline per prepared job in one `write`, waking
/// them all. Dropping the gate unopened (or this process dying) gives the jobs
/// EOF instead: they exit 125 without running anything.
///
/// Several jobs may be prepared at one gate at once (from several threads): each spawn
/// waits for its child's `exec`, which on a busy machine is mostly waiting for a CPU.
pub struct Gate {
    reader: io::PipeReader,
    writer: io::PipeWriter,
    held: AtomicUsize,
}

/// The script line that holds a prepared job at its gate.
const GATE_LINE: &str = "read -r _ || exit 125; exec </dev/null\n";

/// One line per job: at most this many jobs per gate, so that `open` is one
/// atomic write into the empty pipe (PIPE_BUF) and can never block.
pub const GATE_CAPACITY: usize = 4096;

impl Gate {
    pub fn new() -> io::Result<Gate> {
        let (reader, writer) = io::pipe()?;
        Ok(Gate { reader, writer, held: AtomicUsize::new(0) })
    }

    /// Spawns `cmd` now, held at this gate (see [`Gate`]). Its timeout and
    /// `started_at` count from its [`Prepared::release`]. A job with stdin bytes
    /// cannot be held (its stdin is the gate), nor more than [`GATE_CAPACITY`].
    pub fn prepare(&self, cmd: Command) -> io::Result<Prepared> {
        if cmd.stdin.as_ref().is_some_and(|b| !b.is_empty()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a job with input cannot be held"));
        }
        // A place taken before the spawn (so that concurrent prepares cannot overfill the
        // gate) and given back if it fails; `open` owns the gate, so it sees the final count.
        if self.held.fetch_add(1, Ordering::Relaxed) >= GATE_CAPACITY {
            self.held.fetch_sub(1, Ordering::Relaxed);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the gate is full"));
        }
        let spawned = self.reader.try_clone().and_then(|reader| start(cmd, Some(reader))).and_then(
            |(running, start)| {
                let start = start.ok_or_else(|| io::Error::other("held spawn without a start channel"))?;
                Ok(Prepared { running, start })
            },
        );
        if spawned.is_err() {
            self.held.fetch_sub(1, Ordering::Relaxed);
        }
        spawned
    }

    /// Lets every job held here run. Release the ones that are to run first:
    /// one dropped meanwhile has been killed and never runs its script.
    pub fn open(mut self) {
        let lines = vec![b'\n'; *self.held.get_mut()];
        // Empty pipe, at most PIPE_BUF bytes: one atomic write that does not block.
        // EPIPE (every job gone) is fine.
        let _ = io::Write::write_all(&mut self.writer, &lines);
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate").field("held", &self.held).finish_non_exhaustive()
    }
}

/// The instant a gate's jobs are released, for their `started_at` and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Release {
    wall: EpochMs,
    at: Instant,
}

impl Release {
    pub fn now() -> Release {
        Release { wall: now_ms(), at: Instant::now() }
    }

    pub fn wall(&self) -> EpochMs {
        self.wall
    }
}

/// A job spawned at a [`Gate`], waiting for it to open. Dropping it kills its
/// process group, so it never runs its script.
pub struct Prepared {
    running: Running,
    start: oneshot::Sender<Release>,
}

impl Prepared {
    pub fn pid(&self) -> u32 {
        self.running.pid
    }

    /// Marks the job as starting at `at` (its timeout counts from then) and
    /// hands it over; it runs once its gate opens.
    pub fn release(self, at: Release) -> Running {
        let Prepared { mut running, start } = self;
        running.started_at = at.wall;
        let _ = start.send(at);
        running
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared").field("pid", &self.running.pid).finish_non_exhaustive()
    }
}

/// Spawns the job; with a gate's read end, held at that gate (the receiver
/// then gets its release).
fn start(
    cmd: Command,
    gate: Option<io::PipeReader>,
) -> io::Result<(Running, Option<oneshot::Sender<Release>>)> {
    let gated = gate.is_some();
    let rt = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    check_env(&cmd.env)?;
    let Command {
        script,
        name,
        args,
        env,
        workdir,
        stdin,
        timeout,
        kill_grace,
        log_cap,
        capture_stdout,
        user,
        base_env,
        redact,
    } = cmd;

    // An absolute program path keeps std on posix_spawn even when the job's
    // env sets PATH (std falls back to fork+exec to search a changed PATH).
    let mut proc = tokio::process::Command::new("/bin/sh");
    let operand = shell_operand(&script, !args.is_empty())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if gated {
        proc.arg("-c").arg(format!("{GATE_LINE}{operand}"));
    } else {
        proc.arg("-c").arg(&*operand);
    }
    proc.arg(&name).args(&args);
    if let Some(user) = &user {
        // std clears the supplementary groups when it sets the uid.
        proc.uid(user.uid).gid(user.gid);
    }
    // A clean environment: never the service's own.
    proc.env_clear().envs(identity(user.as_ref())).envs(base_env.vars()).envs(env).process_group(0);
    if let Some(dir) = &workdir {
        proc.current_dir(dir);
    }
    // Empty input is the same as none: EOF at the first read.
    let stdin = stdin.filter(|b| !b.is_empty());
    match gate {
        Some(reader) => proc.stdin(reader),
        None => proc.stdin(if stdin.is_some() { Stdio::piped() } else { dev_null()? }),
    };

    // One pipe for stdout and stderr keeps their exact interleaving; a second
    // pipe is only needed when stdout must also be kept apart. std's pipes are
    // close-on-exec, so concurrent spawns elsewhere cannot inherit them.
    let (out_r, out_w) = io::pipe()?;
    let err_r = if capture_stdout {
        let (r, w) = io::pipe()?;
        proc.stderr(w);
        Some(r)
    } else {
        proc.stderr(out_w.try_clone()?);
        None
    };
    proc.stdout(out_w);
    // Register the read ends first, so nothing can fail once the child runs.
    let out = receiver(out_r.into())?;
    let err = err_r.map(|r| receiver(r.into())).transpose()?;

    let mut child = proc.spawn().map_err(|e| spawn_error(e, workdir.as_deref()))?;
    let started_at = now_ms();
    // Our copies of the write ends must go, or the pipes never reach EOF.
    drop(proc);

    let Some((pid, group)) = child.id().and_then(|pid| Some((pid, Group::of_leader(pid)?))) else {
        // Cannot happen (a fresh child has a real pid); never signal pgid 0.
        let _ = child.start_kill();
        return Err(io::Error::other("spawned child has no usable pid"));
    };

    let stdin_task = match (child.stdin.take(), stdin) {
        (Some(mut pipe), Some(bytes)) => Some(rt.spawn(async move {
            // EPIPE when the job does not read it all is fine; dropping the
            // pipe closes it so the job sees EOF.
            let _ = pipe.write_all(&bytes).await;
        })),
        _ => None,
    };

    let (start_tx, start_rx) = if gated {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let log = Log::new(log_cap);
    let switch = Arc::new(KillSwitch::default());
    let driver = Driver {
        child,
        group,
        log: log.clone(),
        redact_out: Redactor::new(&redact),
        redact_err: err.as_ref().and_then(|_| Redactor::new(&redact)),
        out: Some(out),
        err,
        stdout: capture_stdout.then(|| Capped::new(log_cap)),
        switch: switch.clone(),
        stdin_task,
        started_at,
        // A gated job's clock starts at its release.
        timeout_at: if gated { None } else { timeout.and_then(|t| Instant::now().checked_add(t)) },
        timeout,
        start: start_rx,
        kill_grace,
        status: None,
        ended_by: None,
        sigkill_at: None,
        drain_until: None,
        group_killed: false,
        done: false,
    };
    let task = rt.spawn(driver.run());

    Ok((Running { pid, started_at, log, killer: Killer { switch }, task: Some(task) }, start_tx))
}

/// A child's stdin reading /dev/null. The file is opened once and duplicated
/// per run: a dup is cheaper than a path lookup on every spawn.
fn dev_null() -> io::Result<Stdio> {
    static NULL: OnceLock<File> = OnceLock::new();
    let file = match NULL.get() {
        Some(f) => f,
        // A failed open is not cached: the next run tries again.
        None => {
            let _ = NULL.set(File::open("/dev/null")?);
            NULL.get().ok_or_else(|| io::Error::other("/dev/null"))?
        }
    };
    Ok(Stdio::from(file.try_clone()?))
}

/// The read end of one of our own pipes, made non-blocking and registered
/// with the runtime. We know it is a pipe opened for reading, so tokio's
/// checks (two more syscalls per pipe) are skipped.
fn receiver(fd: OwnedFd) -> io::Result<pipe::Receiver> {
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(io::Error::from)?;
    pipe::Receiver::from_owned_fd_unchecked(fd)
}

/// Rejects env entries that would be silently mangled in the child's
/// environment block (std itself rejects NUL bytes at spawn).
fn check_env(env: &[(String, String)]) -> io::Result<()> {
    match env.iter().find(|(k, _)| !valid_name(k)) {
        Some((k, _)) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid environment variable name {k:?}"),
        )),
        None => Ok(()),
    }
}

/// Says which part was missing: posix_spawn reports a bad workdir with the
/// same bare ENOENT as a missing program.
fn spawn_error(e: io::Error, workdir: Option<&Path>) -> io::Error {
    match workdir {
        Some(dir) if !dir.is_dir() => {
            io::Error::new(e.kind(), format!("working directory {}: {e}", dir.display()))
        }
        _ => e,
    }
}

/// A started job. Dropping it without [`Running::wait`] kills the job's
/// process group (SIGTERM, then SIGKILL after the grace); the process is
/// still reaped in the background.
pub struct Running {
    pid: u32,
    started_at: EpochMs,
    log: Log,
    killer: Killer,
    /// `Some` until `wait` has the result; `Drop` kills while it is `Some`.
    task: Option<JoinHandle<Finished>>,
}

impl Running {
    /// The pid of the job's `sh`, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Wall clock taken right after the child was spawned (or released, if prepared).
    pub fn started_at(&self) -> EpochMs {
        self.started_at
    }

    pub fn log(&self) -> Log {
        self.log.clone()
    }

    pub fn killer(&self) -> Killer {
        self.killer.clone()
    }

    /// Waits until the job's `sh` has exited, its group is gone and its
    /// output is fully read. Cancelling this future counts as a drop.
    pub async fn wait(mut self) -> Finished {
        let joined = match self.task.as_mut() {
            Some(task) => task.await.ok(),
            None => None,
        };
        self.task = None;
        // Only if the driver panicked or the runtime is shutting down.
        joined.unwrap_or_else(|| Finished {
            outcome: Outcome::Failed,
            exit_code: None,
            signal: None,
            started_at: self.started_at,
            finished_at: now_ms(),
            log: self.log.snapshot(),
            log_truncated: self.log.is_truncated(),
            stdout: None,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.killer.kill();
        }
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("pid", &self.pid)
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct KillSwitch {
    requested: AtomicBool,
    /// Set once the leader has exited: later kill requests are no-ops.
    done: AtomicBool,
    wake: Notify,
}

/// Asks a run to end: SIGTERM to its group, SIGKILL after the grace.
/// Cloneable; holds no pid, so a late call can never hit a reused one.
#[derive(Clone)]
pub struct Killer {
    switch: Arc<KillSwitch>,
}

impl Killer {
    /// Idempotent; a no-op once the job's `sh` has exited.
    pub fn kill(&self) {
        let s = &self.switch;
        if !s.done.load(Ordering::Acquire) && !s.requested.swap(true, Ordering::AcqRel) {
            // The driver also checks `requested` on each turn; the permit
            // stored by `notify_one` covers a driver not yet waiting.
            s.wake.notify_one();
        }
    }
}

impl fmt::Debug for Killer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Killer").field("requested", &self.switch.requested.load(Ordering::Relaxed)).finish()
    }
}

/// What the driver's one timer is set for.
#[derive(Debug, Clone, Copy)]
enum Due {
    Timeout,
    SigKill,
    Drain,
}

#[derive(Clone, Copy, PartialEq)]
enum Stream {
    Out,
    Err,
}

/// Owns the child and its pipes for the whole run (see the module doc).
struct Driver {
    child: tokio::process::Child,
    group: Group,
    log: Log,
    /// stdout+stderr, or stdout alone when `stdout` is kept apart.
    out: Option<pipe::Receiver>,
    /// stderr when stdout is kept apart.
    err: Option<pipe::Receiver>,
    /// Masks secret values in `out`'s and `err`'s output (`None`: nothing to mask).
    redact_out: Option<Redactor>,
    redact_err: Option<Redactor>,
    stdout: Option<Capped>,
    switch: Arc<KillSwitch>,
    stdin_task: Option<JoinHandle<()>>,
    started_at: EpochMs,
    timeout_at: Option<Instant>,
    timeout: Option<Duration>,
    /// A prepared job's release, until it comes.
    start: Option<oneshot::Receiver<Release>>,
    kill_grace: Duration,

    /// The leader's exit, once seen.
    status: Option<io::Result<ExitStatus>>,
    /// Set when we sent SIGTERM (timeout or kill request).
    ended_by: Option<Outcome>,
    /// Pending SIGKILL after the SIGTERM grace.
    sigkill_at: Option<Instant>,
    /// After the leader exited and the group was killed: stop reading then.
    drain_until: Option<Instant>,
    group_killed: bool,
    done: bool,
}

impl Driver {
    async fn run(mut self) -> Finished {
        // Filled through spare capacity: no zeroing, and no allocation
        // before the first read.
        let mut buf = Vec::new();
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        let mut armed_at = None;
        loop {
            if self.status.is_some() && self.out.is_none() && self.err.is_none() {
                break;
            }
            if self.status.is_none()
                && self.ended_by.is_none()
                && self.switch.requested.load(Ordering::Acquire)
            {
                self.terminate(Outcome::Killed);
            }
            let due = self.next_due();
            if let Some((at, _)) = due
                && armed_at != Some(at)
            {
                timer.as_mut().reset(at);
                armed_at = Some(at);
            }
            let watch_kill = self.status.is_none() && self.ended_by.is_none();
            tokio::select! {
                res = self.child.wait(), if self.status.is_none() => self.on_exit(res),
                () = readable(self.out.as_ref()) => self.read(Stream::Out, &mut buf, MAX_READS_PER_WAKE),
                () = readable(self.err.as_ref()) => self.read(Stream::Err, &mut buf, MAX_READS_PER_WAKE),
                start = released(self.start.as_mut()) => self.on_start(start),
                // Handled at the top of the loop.
                () = self.switch.wake.notified(), if watch_kill => {}
                () = &mut timer, if due.is_some() => {
                    if let Some((_, what)) = due {
                        self.on_due(what, &mut buf);
                    }
                }
            }
        }
        self.finish()
    }

    fn on_start(&mut self, start: Option<Release>) {
        self.start = None;
        // `None`: dropped unreleased; the job ends at its gate.
        if let Some(r) = start {
            self.started_at = r.wall;
            self.timeout_at = self.timeout.and_then(|t| r.at.checked_add(t));
        }
    }

    fn next_due(&self) -> Option<(Instant, Due)> {
        if let Some(at) = self.sigkill_at {
            Some((at, Due::SigKill))
        } else if self.status.is_some() {
            self.drain_until.map(|at| (at, Due::Drain))
        } else if self.ended_by.is_none() {
            self.timeout_at.map(|at| (at, Due::Timeout))
        } else {
            None
        }
    }

    fn on_due(&mut self, what: Due, buf: &mut Vec<u8>) {
        match what {
            Due::Timeout => self.terminate(Outcome::TimedOut),
            Due::SigKill => {
                self.sigkill_at = None;
                if self.status.is_some() {
                    self.kill_rest_of_group();
                } else {
                    self.group.signal(Signal::SIGKILL);
                }
            }
            Due::Drain => {
                // Whatever the group wrote is already in the pipes: take it,
                // then stop listening to processes that escaped the group.
                // (Bounded: an escaped process may still be writing.)
                self.read(Stream::Out, buf, MAX_READS_AT_DRAIN);
                self.read(Stream::Err, buf, MAX_READS_AT_DRAIN);
                self.out = None;
                self.err = None;
                self.flush(Stream::Out);
                self.flush(Stream::Err);
            }
        }
    }

    /// SIGTERM now, SIGKILL after the grace (at once for a zero grace).
    fn terminate(&mut self, why: Outcome) {
        self.ended_by = Some(why);
        self.group.signal(Signal::SIGTERM);
        if self.kill_grace.is_zero() {
            self.group.signal(Signal::SIGKILL);
        } else {
            let now = Instant::now();
            let at = now.checked_add(self.kill_grace).or_else(|| now.checked_add(FAR_FUTURE)).unwrap_or(now);
            self.sigkill_at = Some(at);
        }
    }

    fn on_exit(&mut self, status: io::Result<ExitStatus>) {
        self.status = Some(status);
        self.switch.done.store(true, Ordering::Release);
        // The run ends with its `sh`: kill what is left of the group (e.g.
        // `sleep 100 &`) so nothing outlives it and the pipes reach EOF.
        // Within a SIGTERM grace, the rest may still be cleaning up: they get
        // until the grace ends (or until the output closes).
        if self.sigkill_at.is_none() {
            self.kill_rest_of_group();
        }
    }

    fn kill_rest_of_group(&mut self) {
        self.group.signal(Signal::SIGKILL);
        self.group_killed = true;
        self.drain_until = Instant::now().checked_add(DRAIN_AFTER_EXIT);
    }

    /// Reads up to `max_reads` chunks from one stream into the log.
    fn read(&mut self, which: Stream, buf: &mut Vec<u8>, max_reads: usize) {
        for _ in 0..max_reads {
            let slot = match which {
                Stream::Out => &mut self.out,
                Stream::Err => &mut self.err,
            };
            let Some(rx) = slot.as_ref() else { return };
            buf.clear();
            // Never read into zero spare capacity: `Ok(0)` would look like EOF.
            buf.reserve(READ_CHUNK);
            match rx.try_read_buf(buf) {
                Ok(0) => {
                    *slot = None;
                    self.flush(which);
                    return;
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                    return;
                }
                // Unexpected on a pipe; treat as the end of this stream.
                Err(_) => {
                    *slot = None;
                    self.flush(which);
                    return;
                }
            }
            match self.redactor(which) {
                Some(r) => {
                    let mut masked = Vec::with_capacity(buf.len());
                    r.push(buf, &mut masked);
                    self.pass_on(which, &masked);
                }
                None => self.pass_on(which, buf),
            }
        }
    }

    fn redactor(&mut self, which: Stream) -> Option<&mut Redactor> {
        match which {
            Stream::Out => self.redact_out.as_mut(),
            Stream::Err => self.redact_err.as_mut(),
        }
    }

    /// Output (secrets already masked) into the log, and stdout into its own copy if kept.
    fn pass_on(&mut self, which: Stream, data: &[u8]) {
        self.log.push(data);
        if which == Stream::Out
            && let Some(stdout) = &mut self.stdout
        {
            stdout.push(data);
        }
    }

    /// The end of a stream: what its redactor held back (a possible start of a secret that
    /// never came) is passed on.
    fn flush(&mut self, which: Stream) {
        let mut rest = Vec::new();
        if let Some(r) = self.redactor(which) {
            r.finish(&mut rest);
        }
        if !rest.is_empty() {
            self.pass_on(which, &rest);
        }
    }

    fn finish(&mut self) -> Finished {
        // A release sent before the job could run, but not yet seen by the loop.
        if let Some(r) = self.start.as_mut().and_then(|rx| rx.try_recv().ok()) {
            self.on_start(Some(r));
        }
        // Output closed during a grace period: end the stragglers now.
        if !self.group_killed {
            self.group.signal(Signal::SIGKILL);
            self.group_killed = true;
        }
        self.done = true;
        self.switch.done.store(true, Ordering::Release);
        if let Some(task) = self.stdin_task.take() {
            task.abort();
        }
        self.flush(Stream::Out);
        self.flush(Stream::Err);
        self.log.close();
        let (exit_code, signal) = match &self.status {
            Some(Ok(st)) => (st.code(), st.signal()),
            _ => (None, None),
        };
        let outcome = match (self.ended_by, &self.status) {
            (Some(why), _) => why,
            (None, Some(Ok(st))) if st.success() => Outcome::Succeeded,
            _ => Outcome::Failed,
        };
        Finished {
            outcome,
            exit_code,
            signal,
            started_at: self.started_at,
            finished_at: now_ms(),
            log: self.log.snapshot(),
            log_truncated: self.log.is_truncated(),
            stdout: self.stdout.as_mut().map(|stdout| {
                stdout.finish();
                stdout.text()
            }),
        }
    }
}

impl Drop for Driver {
    /// Only reached unfinished if the task is dropped (runtime shutdown) or
    /// panicked: do not leave the group running or followers waiting.
    fn drop(&mut self) {
        if !self.done {
            self.group.signal(Signal::SIGKILL);
            if let Some(task) = self.stdin_task.take() {
                task.abort();
            }
            self.log.close();
        }
    }
}

/// Resolves with a prepared job's release (`None` if it will never come);
/// never once it came.
async fn released(rx: Option<&mut oneshot::Receiver<Release>>) -> Option<Release> {
    match rx {
        Some(rx) => rx.await.ok(),
        None => std::future::pending().await,
    }
}

/// Resolves when `rx` may be readable; never for a closed stream.
async fn readable(rx: Option<&pipe::Receiver>) {
    match rx {
        // An error here shows up again at the read, which closes the stream.
        Some(rx) => {
            let _ = rx.readable().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::GATE_LINE;

    /// The bench's floor for prespawned bursts (bench/peers' `bare_gate`) holds its jobs with
    /// this very line; a change here must go there too, or the floor measures another design.
    #[test]
    fn the_bench_floor_holds_jobs_with_the_executors_gate_line() {
        let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/peers/src/bin/bare_gate.rs");
        let source = std::fs::read_to_string(peer).expect("bench/peers/src/bin/bare_gate.rs");
        let line = format!("const GATE_LINE: &str = {GATE_LINE:?};");
        assert!(source.contains(&line), "bare_gate.rs has no `{line}`");
    }
}
