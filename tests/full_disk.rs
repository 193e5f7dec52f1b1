//! A full database: every write is either stored and acknowledged, or refused with 507 in the
//! dialect's error shape and leaves nothing; ids are never handed out twice; the server logs
//! the incident once.
//!
//! Three ways to fill it: SQLite's page limit (`CRONSTACK_SQLITE_MAX_PAGES`, no mount needed),
//! SQLite on a small tmpfs, and PostgreSQL with the test database in a tablespace on a small
//! tmpfs. The tmpfs variants need `mount` (root): without it they say why and pass.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{Value, json};

/// Size of each filler's incompressible `env` value.
const FILLER: usize = 100_000;

/// `len` pseudo-random hex digits (incompressible enough for PostgreSQL's TOAST).
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x & 15) as u32, 16).unwrap()
        })
        .collect()
}

/// A tmpfs mounted on a fresh directory; unmounted when dropped.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // PostgreSQL's server runs as its own user: it must reach the mount point.
        run("chmod", &["755", &dir.path().display().to_string()])?;
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let opts = format!("size={size},mode=0755");
        run("mount", &["-t", "tmpfs", "-o", &opts, "tmpfs", &path.display().to_string()])?;
        Ok(Tmpfs { _dir: dir, path })
    }

    fn resize(&self, size: &str) {
        run("mount", &["-o", &format!("remount,size={size}"), &self.path.display().to_string()])
            .expect("resize the tmpfs");
    }

    /// Bytes in use on the tmpfs.
    fn used(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=used"]).arg(&self.path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df prints the used bytes")
    }

    /// Shrinks the tmpfs to what is used plus `room` bytes.
    fn leave_room(&self, room: u64) {
        self.resize(&format!("{}", self.used() + room));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", &self.path.display().to_string()]);
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn postgres_server() -> Option<String> {
    std::env::var("CRONSTACK_TEST_POSTGRES").ok().filter(|s| !s.is_empty())
}

fn psql(server: &str, sql: &str) -> Result<(), String> {
    run("psql", &[server, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
}

/// A 507 in the v1 shape.
fn assert_v1_full(r: &Resp, what: &str) {
    assert_eq!(r.status, 507, "{what}: {}", r.text);
    let body = r.json();
    assert_eq!(body["code"], 30, "{what}: {body}");
    assert!(body["msg"].as_str().unwrap().contains("database is full"), "{what}: {body}");
}

/// A 507 in the v3 shape.
fn assert_v3_full(r: &Resp, what: &str) {
    assert_eq!(r.status, 507, "{what}: {}", r.text);
    let body = r.json();
    assert_eq!(body["error"], "insufficient_storage", "{what}: {body}");
    assert!(body["error_description"].as_str().unwrap().contains("database is full"), "{what}: {body}");
}

/// What was stored before and while the database filled.
struct Filled {
    /// Acknowledged filler stacks: id, name, env value.
    stored: Vec<(i64, String, String)>,
    /// Names of the refused fillers.
    refused: Vec<String>,
    job: i64,
    job_deleted: bool,
    /// Whether every write needing room was refused (see `fill`'s `strict`).
    strict: bool,
}

/// Against a server on a database about to fill: fills it with stacks until writes are
/// refused, then checks the other writes that once answered 404 or 500.
/// `strict`: every write needing room must be refused as full (507). On a real full disk
/// SQLite may still fit one in space its WAL already holds (a checkpoint rewinds it) — then
/// it is acknowledged because it is stored — or fail it with an I/O error (503).
async fn fill(server: &Server, token: &str, strict: bool) -> Filled {
    let api = Api::new(server, Some(token));
    // Made while there is room.
    let schedule =
        api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *", "timezone": "UTC"}})).await;
    let stack = api.create("/api/v1/blockstacks", json!({"name": "base", "command": "true"})).await;
    let job = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": "j", "enabled": false}),
        )
        .await;
    let uid = |v: Value| v["uid"].as_str().unwrap().to_string();
    let stack_uid = uid(api.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json());
    let job_uid = uid(api.get(&format!("/api/v1/jobs/byid/{job}")).await.json());

    let mut stored = Vec::new();
    let mut refused = Vec::new();
    for i in 0..2000 {
        let name = format!("fill-{i}");
        let value = noise(i, FILLER);
        let r = api
            .post("/api/v1/blockstacks", json!({"name": name, "command": "true", "env": {"BIG": value}}))
            .await;
        match r.status {
            200 => stored.push((r.json()["id"].as_i64().unwrap(), name, value)),
            _ => {
                assert_v1_full(&r, &format!("create {name}"));
                refused.push(name);
                if refused.len() == 5 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused.len(), 5, "the database never filled ({} stacks stored)", stored.len());
    assert!(!stored.is_empty(), "nothing fit before the database filled");
    let ids: Vec<i64> = stored.iter().map(|s| s.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "each acknowledged create has its own id: {ids:?}");

    // Writes that need room, in both dialects: refused, never a 404 or a 500.
    let big = noise(9999, FILLER);
    let refused_or_stored = |r: &Resp, what: &str, v3: bool| {
        if strict {
            if v3 { assert_v3_full(r, what) } else { assert_v1_full(r, what) }
        } else {
            // Stored, refused as full, or refused as an I/O error of the full file system:
            // never a 404 or a 500.
            assert!(matches!(r.status, 200 | 503 | 507), "{what}: {} {}", r.status, r.text);
        }
    };
    let r = api.put(&format!("/api/v1/jobs/{job}"), json!({"command": big})).await;
    refused_or_stored(&r, "PUT job", false);
    let r = api.put(&format!("/api/v1/blockstacks/{stack}"), json!({"env": {"BIG": big}})).await;
    refused_or_stored(&r, "PUT stack", false);
    let r = api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({"args": [big]})).await;
    refused_or_stored(&r, "v1 run now", false);
    let path = format!("/api/3/stacks/{stack_uid}/jobs/{job_uid}/run_now.json");
    let r = api.post(&path, json!({"job_args": big})).await;
    refused_or_stored(&r, "v3 run_now", true);
    // A delete may still fit (it frees room): stored and acknowledged, or refused.
    let r = api.delete(&format!("/api/v1/jobs/{job}")).await;
    let job_deleted = match r.status {
        200 => true,
        _ => {
            assert_v1_full(&r, "DELETE job");
            false
        }
    };

    let log = server.log();
    let incidents = log.matches("writes are refused").count();
    assert_eq!(incidents, 1, "the full database is logged once:\n{log}");
    // (A 503 — the full file system's I/O error, non-strict only — is logged as any 5xx.)
    assert!(!strict || !log.contains("response failed"), "no error line per refused request:\n{log}");
    Filled { stored, refused, job, job_deleted, strict }
}

/// With room again (after a restart): everything acknowledged is there, nothing refused is,
/// and new ids follow the acknowledged ones.
async fn check_after(server: &Server, token: &str, filled: &Filled) {
    let api = Api::new(server, Some(token));
    for (id, name, value) in &filled.stored {
        let r = api.get(&format!("/api/v1/blockstacks/byid/{id}")).await;
        assert_eq!(r.status, 200, "acknowledged stack {id} is stored: {}", r.text);
        let stack = r.json();
        assert_eq!(stack["name"], *name);
        assert!(stack["env"]["BIG"] == *value, "stack {id} holds what was sent");
    }
    for name in &filled.refused {
        let r = api.get(&format!("/api/v1/blockstacks/byname/{name}")).await;
        assert_eq!(r.status, 404, "refused stack {name} left nothing: {}", r.text);
    }
    let job = api.get(&format!("/api/v1/jobs/byid/{}", filled.job)).await;
    if filled.job_deleted {
        assert_eq!(job.status, 404, "acknowledged delete: {}", job.text);
    } else {
        assert_eq!(job.status, 200, "refused delete: {}", job.text);
        if filled.strict {
            assert_eq!(job.json()["command"], Value::Null, "the refused PUT changed nothing");
            let runs = api.get(&format!("/api/v1/jobs/byid/{}/runs", filled.job)).await.json();
            assert_eq!(runs["runs"], json!([]), "refused run-nows left no run: {runs}");
        }
    }
    let last = filled.stored.last().unwrap().0;
    let id = api.create("/api/v1/blockstacks", json!({"name": "after", "command": "true"})).await;
    assert!(id > last, "a new stack gets a new id ({id} after {last})");
}

/// Fills the database through a server started with `env`, stops it, makes room, and checks
/// through a new server.
async fn fill_then_check(
    db: &TestDb,
    token: &str,
    env: &[(&str, &str)],
    strict: bool,
    make_room: impl FnOnce(),
) {
    // No pruning pass meanwhile: its incremental vacuum would give a full SQLite file room
    // again (pages it frees) and make the refusals below depend on when it ran. (The interval
    // bounds the passes, and none is paced by new runs.)
    let mut server =
        Server::start_with_env(db, &["--prune-interval-ms", "3600000", "--prune-after-runs", "0"], env);
    let filled = fill(&server, token, strict).await;
    server.stop();
    make_room();
    let server = Server::start_on(db, &[]);
    check_after(&server, token, &filled).await;
}

/// SQLite filled through its page limit; PostgreSQL through a tablespace on a small tmpfs.
#[tokio::test]
async fn full_database_refuses_with_507_and_loses_nothing_acknowledged() {
    if let Some(pg) = postgres_server() {
        return postgres_tablespace(&pg).await;
    }
    let db = TestDb::new();
    let token = add_user(&db, "filler", None);
    let path = db.url.trim_start_matches("sqlite://");
    let pages = std::fs::metadata(path).unwrap().len() / 4096;
    // Room for a dozen fillers.
    let max_pages = (pages + 400).to_string();
    // The limit goes with the restart.
    fill_then_check(&db, &token, &[("CRONSTACK_SQLITE_MAX_PAGES", &max_pages)], true, || {}).await;
}

/// SQLite on a tmpfs that fills up (the disk is full, not a page limit).
#[tokio::test]
async fn full_disk_refuses_with_507_and_loses_nothing_acknowledged() {
    if postgres_server().is_some() {
        eprintln!("skipped: PostgreSQL's full disk is the other test's tablespace variant");
        return;
    }
    let disk = match Tmpfs::mount("2m") {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!("skipped: cannot mount a tmpfs ({e})");
            return;
        }
    };
    let base = TestDb::new();
    let db = TestDb::alias(&base, &format!("sqlite://{}", disk.path.join("cronstack.db").display()));
    let token = add_user(&db, "filler", None);
    disk.leave_room(1_500_000);
    fill_then_check(&db, &token, &[], false, || disk.resize("64m")).await;
}

async fn postgres_tablespace(pg: &str) {
    let disk = match Tmpfs::mount("64m") {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!("skipped: cannot mount a tmpfs for a tablespace ({e})");
            return;
        }
    };
    let mount = disk.path.display().to_string();
    run("chown", &["postgres:postgres", &mount]).expect("chown the tablespace directory");
    let tablespace = Tablespace::create(pg, &disk.path);
    let db = TestDb::new();
    let name = db.url.rsplit('/').next().unwrap().to_string();
    psql(pg, &format!("ALTER DATABASE {name} SET TABLESPACE {}", tablespace.name)).unwrap();
    let token = add_user(&db, "filler", None);
    disk.leave_room(3_000_000);
    fill_then_check(&db, &token, &[], true, || disk.resize("64m")).await;
}

/// A PostgreSQL tablespace, dropped with this (after the database in it).
struct Tablespace {
    server: String,
    name: String,
}

impl Tablespace {
    fn create(server: &str, dir: &Path) -> Tablespace {
        let name = format!("cronstack_full_{}", std::process::id());
        psql(server, &format!("CREATE TABLESPACE {name} LOCATION '{}'", dir.display())).unwrap();
        Tablespace { server: server.to_string(), name }
    }
}

impl Drop for Tablespace {
    fn drop(&mut self) {
        let _ = psql(&self.server, &format!("DROP TABLESPACE IF EXISTS {}", self.name));
    }
}
