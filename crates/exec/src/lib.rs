//! cronstack-exec: runs one job command as a child process group and reports
//! how it ended.
//!
//! A job runs as `/bin/sh -c '<script>' <name> <args…>` in its own process group. Its
//! stdout and stderr are captured into a capped [`Log`] that can be read and followed while
//! it runs. A timeout or a [`Killer`] ends the whole group (SIGTERM, then SIGKILL after a
//! grace), and whatever is left of the group when its `sh` exits is killed, so no run leaves
//! processes behind. This crate knows nothing of storage or HTTP.
//!
//! **Arguments** are separate argv entries (`$1…`), never pasted into the script. Where they
//! go is decided by a POSIX shell parser ([`ArgRule`]): a command that uses positional
//! parameters anywhere (`"$@"`, `$*`, `$1`, `${2}`, `$#`) gets them as `$1…` only; one simple
//! command or pipeline gets them appended as words to its last command (` "$@"` is inserted
//! after its last word); anything else (several commands, a compound command, a trailing
//! comment) takes none ([`check_args`] says so before a run is recorded). Without arguments
//! every command runs as written.
//!
//! **Environment**: a job never inherits the service's environment; it starts from a
//! [`JobEnv`] (a fixed `PATH`, `SHELL`, locale, `TZ`, variables passed on by name), with
//! `HOME`, `USER`, `LOGNAME` of the user it runs as, and its own variables on top.
//!
//! **Secrets**: each value in [`Command::redact`] becomes `***` in the output before it reaches
//! the log, a follower or the kept stdout, also when a read splits it (the bytes that may start
//! one wait for the next read; the rest passes at once).
//!
//! [`spawn`] must be called inside a tokio runtime with IO and time enabled.
//!
//! ```
//! use cronstack_exec::{Command, Outcome, spawn};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let running = spawn(Command {
//!     script: "echo hello".into(),
//!     name: "greet".into(),
//!     args: vec!["world; rm -rf /".into()], // arrives as one literal word
//!     ..Default::default()
//! })?;
//! let log = running.log(); // readable and followable while it runs
//! let finished = running.wait().await;
//! assert_eq!(finished.outcome, Outcome::Succeeded);
//! assert_eq!(finished.log, "hello world; rm -rf /\n");
//! assert!(log.is_closed());
//! # std::io::Result::Ok(())
//! # }).unwrap();
//! ```

mod args;
mod env;
mod group;
mod log;
mod process;
mod redact;
mod shell;

use std::path::PathBuf;
use std::time::Duration;

pub use args::{ArgRule, TakesNoArgs, check_args, split_args};
pub use env::{DEFAULT_PATH, JobEnv};
pub use log::Log;
pub use process::{GATE_CAPACITY, Gate, Killer, Prepared, Release, Running, spawn};
pub use redact::MASK;

/// Milliseconds since the Unix epoch.
pub type EpochMs = i64;

/// What to run and how. Its `Debug` shows variable names, never values (they may be secret).
#[derive(Clone, Default)]
pub struct Command {
    /// Shell script, passed to `sh -c` as one argv element.
    pub script: String,
    /// `$0` of the script.
    pub name: String,
    /// `$1…`: separate argv elements, never pasted into the script.
    pub args: Vec<String>,
    /// The job's own variables, on top of `base_env` (names must be non-empty and free of
    /// `=` and NUL).
    pub env: Vec<(String, String)>,
    /// What every job starts with (see [`JobEnv`]): the service's own environment is never
    /// inherited.
    pub base_env: JobEnv,
    pub workdir: Option<PathBuf>,
    /// Written to the job's stdin, which is then closed; `None` = /dev/null.
    pub stdin: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL; zero = SIGKILL right after SIGTERM.
    pub kill_grace: Duration,
    /// Bytes of log kept, omission marker included (head + marker + tail past it); 0 = 1 MiB,
    /// at least 256. Output is kept as text: NUL and invalid UTF-8 become U+FFFD, counted as
    /// the 3 bytes they are.
    pub log_cap: usize,
    /// Also keep stdout alone (capped the same way) in [`Finished::stdout`].
    pub capture_stdout: bool,
    /// Run as this user instead of the service's own (needs root). See [`RunAs`].
    pub user: Option<RunAs>,
    /// Values never to show: every occurrence in the output becomes [`MASK`] (`***`) before
    /// it reaches the log or `stdout`, also when a read splits it. Empty values are ignored.
    pub redact: Vec<String>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Command")
            .field("script", &self.script)
            .field("name", &self.name)
            .field("args", &self.args)
            .field("env", &names)
            .field("workdir", &self.workdir)
            .field("stdin", &self.stdin.as_ref().map(Vec::len))
            .field("timeout", &self.timeout)
            .field("kill_grace", &self.kill_grace)
            .field("log_cap", &self.log_cap)
            .field("capture_stdout", &self.capture_stdout)
            .field("user", &self.user)
            .field("redact", &self.redact.len())
            .finish_non_exhaustive()
    }
}

/// A user to run jobs as: the child gets this uid and primary gid, no supplementary groups,
/// and `HOME`, `USER`, `LOGNAME` of the user (the job's own environment still wins).
/// Setting a uid costs std's `posix_spawn` fast path: such spawns use fork + exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl RunAs {
    /// Looks a user up by name or numeric uid in the system's user database, and checks that
    /// this process may switch to it (it is root, or already that user).
    pub fn lookup(user: &str) -> std::io::Result<RunAs> {
        use nix::unistd::{Uid, User, geteuid};
        let not_found =
            || std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such user: {user:?}"));
        let found = match user.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(user),
        }
        .map_err(std::io::Error::from)?
        .ok_or_else(not_found)?;
        let me = geteuid();
        if !me.is_root() && me != found.uid {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("running jobs as {user:?} needs root (this process runs as uid {me})"),
            ));
        }
        Ok(RunAs { name: found.name, uid: found.uid.as_raw(), gid: found.gid.as_raw(), home: found.dir })
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0.
    Succeeded,
    /// Non-zero exit status, or killed by a signal we did not send.
    Failed,
    /// Ended by us because the timeout passed.
    TimedOut,
    /// Ended by us through a [`Killer`] (or by dropping the [`Running`]).
    Killed,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Finished {
    pub outcome: Outcome,
    /// The `sh`'s exit code, if it exited normally.
    pub exit_code: Option<i32>,
    /// The signal that ended the `sh`, if any.
    pub signal: Option<i32>,
    pub started_at: EpochMs,
    pub finished_at: EpochMs,
    /// Final capped text (NUL and invalid UTF-8 replaced by U+FFFD).
    pub log: String,
    /// Whether a middle part of the output was omitted.
    pub log_truncated: bool,
    /// stdout alone, when `capture_stdout` was set.
    pub stdout: Option<String>,
}
