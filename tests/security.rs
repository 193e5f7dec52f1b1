//! Secrets and privileges: tokens and passwords are stored only as hashes, nothing secret
//! reaches the server log even at its most verbose, password guessing is rate limited per
//! login name, and `--run-as` really drops a job to another user.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sha2::Digest;

/// Everything the database holds, as bytes: the SQLite files (WAL included), or a PostgreSQL
/// data dump.
fn database_bytes(db: &TestDb) -> Vec<u8> {
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                all.extend(bytes);
            }
        }
        assert!(!all.is_empty(), "no database file at {path}");
        all
    } else {
        let out = std::process::Command::new("pg_dump").args(["--data-only", &db.url]).output().unwrap();
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn tokens_and_passwords_are_stored_only_as_hashes_and_never_logged() {
    let db = TestDb::new();
    let password = "correct horse battery staple";
    let cli_token = add_user(&db, "alice", Some(password));
    // The most verbose log the server can write.
    let mut server = Server::start_with_env(&db, &[], &[("RUST_LOG", "trace")]);
    let api = Api::new(&server, Some(&cli_token));
    let minted = api.post("/api/v1/tokens", json!({"name": "ci", "scopes": ["public"]})).await.json();
    let api_token = minted["token"].as_str().unwrap().to_string();
    assert!(api_token.starts_with("cst_") && api_token.len() == 68, "{minted}");
    // Use everything: both tokens, a good and a bad password, the session cookie, a stack
    // with a webhook token, a job run.
    let anon = Api::new(&server, None);
    let guess = "wrong-guess-Zq9";
    assert_eq!(
        anon.post("/api/v1/authenticate", json!({"username": "alice", "password": guess})).await.status,
        401
    );
    let login = anon
        .http
        .post(server.url("/api/v1/authenticate"))
        .json(&json!({"username": "alice", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let cookie_value = cookie.trim_start_matches("auth_tkt=").to_string();
    let r = anon.http.get(server.url("/api/v1/jobs")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let public = Api::new(&server, Some(&api_token));
    assert_eq!(public.get("/api/3/stacks.json").await.status, 200);
    let stack = api
        .create("/api/v1/blockstacks", json!({"name": "s", "command": "echo ran", "webhook": "token"}))
        .await;
    let hook_token = api.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json()["webhook_token"]
        .as_str()
        .unwrap()
        .to_string();
    let sched = api.create("/api/v1/schedules", json!({"config": {"period": 3600}})).await;
    let job = api.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    let webhook_secret = "whsec_4f1c9a0d2b7e8e6a5c3b1d0f9e8d7c6b";
    let webhook = api
        .create(
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["run.succeeded"], "secret": webhook_secret}),
        )
        .await;
    let run =
        api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await.json()["id"].as_i64().unwrap();
    eventually(Duration::from_secs(20), || async {
        (api.get(&format!("/api/v1/runs/{run}")).await.json()["outcome"] == "succeeded").then_some(())
    })
    .await
    .expect("run finished");
    // The hook, by its token, in the query string and in the header.
    let hook = anon.http.post(server.url(&format!("/api/v1/blockstacks/hook/{stack}?token={hook_token}")));
    assert_eq!(hook.json(&json!({})).send().await.unwrap().status(), 200);
    let hook = anon.http.post(server.url(&format!("/api/v1/blockstacks/hook/{stack}")));
    let r = hook.header("x-cronstack-hook-token", &hook_token).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Each run's delivery attempted (to a closed port), so its attempt is in the log.
    eventually(Duration::from_secs(20), || async {
        let list = api.get(&format!("/api/v1/webhooks/byid/{webhook}/deliveries")).await.json();
        let deliveries = list["deliveries"].as_array().cloned().unwrap_or_default();
        (deliveries.len() >= 3 && deliveries.iter().all(|d| d["attempts"].as_i64() >= Some(1))).then_some(())
    })
    .await
    .expect("the three runs' deliveries were attempted");
    // A revoked token and a bad one, too.
    let bad = Api::new(&server, Some("cst_00000000000000000000000000000000000000000000000000000000000000ff"));
    assert_eq!(bad.get("/api/v1/jobs").await.status, 401);

    // Stored: the tokens' SHA-256, never the tokens; an argon2 hash, never the password.
    let stored = database_bytes(&db);
    for token in [&cli_token, &api_token] {
        assert!(!contains(&stored, token), "a token is stored in the clear");
        assert!(!contains(&stored, &token[4..]), "a token's random part is stored in the clear");
        assert!(contains(&stored, &sha256_hex(token)), "the token's hash is not what is stored");
    }
    assert!(!contains(&stored, password), "the password is stored in the clear");
    assert!(contains(&stored, "$argon2"), "passwords are not argon2 hashes");
    assert!(!contains(&stored, guess));

    // Logged: none of it, not even the hashes, at trace level.
    server.stop();
    let log = server.log();
    assert!(log.len() > 1000, "the trace log is suspiciously short:\n{log}");
    for (what, secret) in [
        ("admin token", cli_token.as_str()),
        ("admin token's random part", &cli_token[4..]),
        ("minted token", api_token.as_str()),
        ("password", password),
        ("wrong password", guess),
        ("session cookie", cookie_value.as_str()),
        ("hook token", hook_token.as_str()),
        ("webhook signing secret", webhook_secret),
        ("token hash", &sha256_hex(&cli_token)),
    ] {
        assert!(!log.contains(secret), "the server log holds the {what}");
    }
}

#[tokio::test]
async fn password_guessing_is_rate_limited_per_login_name() {
    let db = TestDb::new();
    add_user(&db, "alice", Some("alice-password"));
    add_user(&db, "bob", Some("bob-password"));
    let server = Server::start_on(&db, &["--rate-limit", "5"]);
    let anon = Api::new(&server, None);
    let attempt = |user: &'static str, password: &'static str| {
        let anon = anon.clone();
        async move { anon.post("/api/v1/authenticate", json!({"username": user, "password": password})).await }
    };
    for i in 0..5 {
        let r = attempt("alice", "guess").await;
        assert_eq!(r.status, 401, "guess {i}: {}", r.text);
    }
    // The sixth try is refused before the password is even checked: the right one too, and
    // by any spelling of the login (names are case-insensitive here, emails too).
    for (user, password) in [("alice", "guess"), ("alice", "alice-password"), ("ALICE", "alice-password")] {
        let r = attempt(user, password).await;
        assert_eq!(r.status, 429, "{user}: {}", r.text);
        assert_eq!(r.json()["code"], 28);
        assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
        assert!(r.header("set-cookie").is_none(), "a refused login sets a cookie");
    }
    // Another account is not locked out by alice's attacker.
    let r = attempt("bob", "bob-password").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn run_as_drops_jobs_to_another_user() {
    if !nix_is_root() {
        eprintln!("skipped: --run-as needs root");
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &["--run-as", "nobody"]);
    let api = Api::new(&server, Some(&token));
    let stack = api
        .create(
            "/api/v1/blockstacks",
            json!({"name": "who", "workdir": "/tmp",
                   "command": "id -u; id -g; id -G; echo \"$HOME $USER $LOGNAME\"; touch /root/.cronstack-run-as 2>/dev/null && echo root-writable || echo root-protected"}),
        )
        .await;
    let sched = api.create("/api/v1/schedules", json!({"config": {"period": 3600}})).await;
    let job = api.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    let run =
        api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await.json()["id"].as_i64().unwrap();
    let done: Value = eventually(Duration::from_secs(20), || async {
        let r = api.get(&format!("/api/v1/runs/{run}")).await.json();
        (r["outcome"] != "queued" && r["outcome"] != "running").then_some(r)
    })
    .await
    .expect("run finished");
    assert_eq!(done["outcome"], "succeeded", "{done}");
    let log = api.get(&format!("/api/v1/runs/{run}/log")).await.text;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let nobody: Vec<&str> = passwd.lines().find(|l| l.starts_with("nobody:")).unwrap().split(':').collect();
    let (uid, gid, home) = (nobody[2], nobody[3], nobody[5]);
    let want = format!("{uid}\n{gid}\n{gid}\n{home} nobody nobody\nroot-protected\n");
    assert_eq!(log, want, "the job did not run as nobody");
    assert!(!std::path::Path::new("/root/.cronstack-run-as").exists());

    // An unknown user is refused at start, with the reason.
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db.url, "--run-as", "no-such-user-x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-user-x"), "{err}");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}
