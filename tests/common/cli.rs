//! The client commands run as a person or a script would run them: a real server with one
//! user, and the `cronstack` binary with a config directory of its own.

use std::process::{Command, Output};

use serde_json::Value;

use super::{BIN, Server, TestDb, add_user};

/// A server with one user, and a config directory of its own for the client.
pub struct World {
    pub server: Server,
    pub token: String,
    pub config: tempfile::TempDir,
    pub db: TestDb,
}

pub fn world() -> World {
    let db = TestDb::new();
    let token = add_user(&db, "dora", Some("pw-dora"));
    let server = Server::start_on(&db, &[]);
    World { server, token, config: tempfile::tempdir().unwrap(), db }
}

impl World {
    /// The client with the server and token from the environment.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .env("CRONSTACK_URL", &self.server.base)
            .env("CRONSTACK_TOKEN", &self.token)
            .output()
            .unwrap()
    }

    /// The client with nothing but its config directory.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_remove("CRONSTACK_URL")
            .env_remove("CRONSTACK_TOKEN")
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("HOME", self.config.path())
            .stdin(std::process::Stdio::null());
        c
    }

    /// Runs and expects success; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "cronstack {args:?} failed ({:?}):\n{}", out.status, text(&out.stderr));
        text(&out.stdout)
    }

    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("cronstack {args:?}: not JSON ({e}):\n{out}"))
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A failed command: exit code 1 and exactly one line on stderr, starting with "error: ".
#[track_caller]
pub fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    err.trim_end().to_string()
}
