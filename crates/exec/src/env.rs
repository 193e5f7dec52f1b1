//! The environment a job starts with: a clean one, never the service's own (which may hold a
//! database password or anything else the service was started with).

use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::{Arc, OnceLock};

use crate::RunAs;

/// `PATH` when the service's own is not passed on.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The variables every job starts with, taken once from the service's environment: `PATH` (a
/// fixed default, [`DEFAULT_PATH`], or the service's own when passed on), `SHELL=/bin/sh`,
/// `LANG`, `LC_ALL` and `TZ` if set, then the variables passed on by name (`--pass-env`).
///
/// A job's environment is this, with `HOME`, `USER`, `LOGNAME` of the user it runs as (set
/// first: a variable passed on by name wins), then the job's own variables
/// ([`crate::Command::env`]) on top.
#[derive(Debug, Clone)]
pub struct JobEnv {
    vars: Arc<[(OsString, OsString)]>,
}

impl JobEnv {
    /// From this process's environment, passing on the variables named in `pass` (those set).
    /// A name that cannot be a variable's (empty, with `=` or NUL) is an error.
    pub fn new(pass: &[String]) -> io::Result<JobEnv> {
        if let Some(bad) = pass.iter().find(|n| !valid_name(n)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid environment variable name {bad:?}"),
            ));
        }
        Ok(Self::from_lookup(pass, |name| std::env::var_os(name)))
    }

    /// The same, reading the service's variables through `lookup`.
    fn from_lookup(pass: &[String], lookup: impl Fn(&str) -> Option<OsString>) -> JobEnv {
        let mut vars: Vec<(OsString, OsString)> =
            vec![("PATH".into(), DEFAULT_PATH.into()), ("SHELL".into(), "/bin/sh".into())];
        let passed = pass.iter().map(String::as_str);
        for name in ["LANG", "LC_ALL", "TZ"].into_iter().chain(passed) {
            if let Some(value) = lookup(name) {
                vars.retain(|(n, _)| n != name);
                vars.push((name.into(), value));
            }
        }
        JobEnv { vars: vars.into() }
    }

    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars.iter().map(|(n, v)| (n.as_os_str(), v.as_os_str()))
    }
}

impl Default for JobEnv {
    /// Nothing passed on by name.
    fn default() -> Self {
        Self::from_lookup(&[], |name| std::env::var_os(name))
    }
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

/// `HOME`, `USER` and `LOGNAME` of the user a job runs as: `user`, or this process's own
/// (from the user database; failing that, this process's own variables, if set).
pub(crate) fn identity(user: Option<&RunAs>) -> Vec<(&'static str, OsString)> {
    let who = match user {
        Some(user) => Some(user),
        None => own_user(),
    };
    match who {
        Some(u) => vec![
            ("HOME", u.home.clone().into_os_string()),
            ("USER", u.name.clone().into()),
            ("LOGNAME", u.name.clone().into()),
        ],
        None => ["HOME", "USER", "LOGNAME"]
            .into_iter()
            .filter_map(|name| std::env::var_os(name).map(|v| (name, v)))
            .collect(),
    }
}

/// This process's user, looked up once.
fn own_user() -> Option<&'static RunAs> {
    static OWN: OnceLock<Option<RunAs>> = OnceLock::new();
    OWN.get_or_init(|| {
        let uid = nix::unistd::geteuid();
        let user = nix::unistd::User::from_uid(uid).ok()??;
        Some(RunAs { name: user.name, uid: user.uid.as_raw(), gid: user.gid.as_raw(), home: user.dir })
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str) -> Option<OsString> {
        let vars = [
            ("PATH", "/opt/server/bin"),
            ("LANG", "C.UTF-8"),
            ("TZ", "Europe/Berlin"),
            ("CRONSTACK_DATABASE_URL", "postgres://u:secret@db/x"),
            ("SECRET_OF_THE_HOST", "x"),
        ];
        vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v))
    }

    fn names_and_values(env: &JobEnv) -> Vec<(String, String)> {
        env.vars().map(|(n, v)| (n.to_string_lossy().into(), v.to_string_lossy().into())).collect()
    }

    #[test]
    fn only_the_fixed_set_unless_passed_on() {
        let env = JobEnv::from_lookup(&[], server);
        let want =
            [("PATH", DEFAULT_PATH), ("SHELL", "/bin/sh"), ("LANG", "C.UTF-8"), ("TZ", "Europe/Berlin")];
        assert_eq!(names_and_values(&env), want.map(|(n, v)| (n.to_string(), v.to_string())));

        let pass = ["PATH".to_string(), "SECRET_OF_THE_HOST".into(), "UNSET_ONE".into()];
        let env = JobEnv::from_lookup(&pass, server);
        let want = [
            ("SHELL", "/bin/sh"),
            ("LANG", "C.UTF-8"),
            ("TZ", "Europe/Berlin"),
            ("PATH", "/opt/server/bin"),
            ("SECRET_OF_THE_HOST", "x"),
        ];
        assert_eq!(names_and_values(&env), want.map(|(n, v)| (n.to_string(), v.to_string())));
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "A=B", "A\0"] {
            assert!(JobEnv::new(&[name.to_string()]).is_err(), "{name:?}");
        }
    }

    #[test]
    fn identity_is_the_job_users() {
        let user = RunAs { name: "nobody".into(), uid: 65534, gid: 65534, home: "/nonexistent".into() };
        let got = identity(Some(&user));
        assert_eq!(
            got,
            [("HOME", "/nonexistent".into()), ("USER", "nobody".into()), ("LOGNAME", "nobody".into())]
        );
        // Our own: whoever runs the tests, with a home.
        let own = identity(None);
        assert_eq!(own.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["HOME", "USER", "LOGNAME"]);
    }
}
