//! Signalling a job's process group.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A job's process group: the job's `sh` is spawned as its leader, so the
/// group id is its pid, and everything it starts stays in the group unless it
/// moves itself out (`setsid`, `setpgid`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Group(Pid);

impl Group {
    /// `None` for pids that would make `killpg` hit the wrong processes:
    /// 0 means our own group and 1 is init.
    pub(crate) fn of_leader(pid: u32) -> Option<Group> {
        let pid = i32::try_from(pid).ok().filter(|&p| p > 1)?;
        Some(Group(Pid::from_raw(pid)))
    }

    /// Sends `sig` to every process of the group. Errors are ignored: ESRCH
    /// (the group is already gone) is the usual one and means success here.
    pub(crate) fn signal(self, sig: Signal) {
        let _ = killpg(self.0, sig);
    }
}
