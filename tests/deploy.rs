//! Running it as a service: the systemd unit in `deploy/` passes `systemd-analyze verify` and
//! says what the README promises of it, and a binary refuses to start on a database that a
//! newer version migrated (the README's upgrade rule).

mod common;

use std::process::Command;

use common::*;

const UNIT: &str = include_str!("../deploy/cronstack.service");

#[test]
fn the_systemd_unit_verifies_and_takes_the_jobs_with_it() {
    for line in [
        "KillMode=control-group",
        "Restart=on-failure",
        "StateDirectory=cronstack",
        "User=cronstack",
        "NoNewPrivileges=yes",
        "ExecStart=/usr/local/bin/cronstack serve",
    ] {
        assert!(UNIT.lines().any(|l| l == line), "deploy/cronstack.service lacks {line:?}");
    }
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        assert!(std::env::var("CI").is_err(), "CI has systemd-analyze (.ci/run installs systemd)");
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(probe.status.success());
    // The unit as installed, its binary where this build put it (verify checks it exists).
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("cronstack.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/cronstack", BIN)).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown keys and bad values are warnings (exit 0): any line about the unit fails too.
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains("cronstack.service")).collect();
    assert!(out.status.success() && about_unit.is_empty(), "systemd-analyze verify:\n{stderr}");
}

#[test]
fn an_older_binary_refuses_a_database_a_newer_one_migrated() {
    if std::env::var("CRONSTACK_TEST_POSTGRES").is_ok_and(|v| !v.is_empty()) {
        eprintln!("SQLite only: the rule is sqlx's, the same on both backends");
        return;
    }
    let db = TestDb::new();
    drop(Server::start_on(&db, &[]));
    // What a later version would have recorded after its own migration.
    let path = db.url.trim_start_matches("sqlite://");
    let status = Command::new("sqlite3")
        .arg(path)
        .arg(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101, 'from the future', 1, x'00', 0)",
        )
        .status()
        .expect("sqlite3 runs");
    assert!(status.success());
    let out = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--database-url", &db.url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started on a newer schema:\n{stderr}");
    assert!(stderr.contains("99990101"), "the refusal names the migration it does not know:\n{stderr}");
}
