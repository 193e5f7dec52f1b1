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

/// Signs in; the `auth_tkt=…` pair of the cookie set (`None`: refused).
async fn sign_in(api: &Api, password: &str) -> (u16, Option<String>) {
    let r = api.post("/api/v1/authenticate", json!({"username": "alice", "password": password})).await;
    (r.status, session_cookie(&r))
}

fn session_cookie(r: &Resp) -> Option<String> {
    let set = r.header("set-cookie")?;
    Some(set.split(';').next().unwrap().to_string())
}

/// What `cookie` gets from `/whoami` on `api`'s server: 200 or 401.
async fn with_cookie(api: &Api, cookie: &str) -> u16 {
    api.send_with_headers("GET", "/api/v1/whoami", None, Vec::new(), &[("cookie", cookie)]).await.status
}

async fn change_password(api: &Api, cookie: Option<&str>, current: &str, new: &str) -> Resp {
    let body = serde_json::to_vec(&json!({"password": new, "current_password": current})).unwrap();
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    api.send_with_headers("PUT", "/api/v1/password", Some("application/json"), body, &headers).await
}

#[tokio::test]
async fn a_password_change_ends_the_sessions_issued_before_it() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", Some("first-password"));
    let server = Server::start_on(&db, &[]);
    let anon = Api::new(&server, None);
    // Two sessions, as from two browsers: both work.
    let (status, laptop) = sign_in(&anon, "first-password").await;
    assert_eq!(status, 200);
    let (_, stolen) = sign_in(&anon, "first-password").await;
    let (laptop, stolen) = (laptop.unwrap(), stolen.unwrap());
    assert_eq!(with_cookie(&anon, &laptop).await, 200);
    assert_eq!(with_cookie(&anon, &stolen).await, 200);

    // The laptop's session changes the password: it gets a fresh cookie, and every cookie
    // issued before (its own old one too) is refused from now on.
    let r = change_password(&anon, Some(&laptop), "first-password", "second-password").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let renewed = session_cookie(&r).expect("the session that changed the password is re-issued");
    assert_eq!(with_cookie(&anon, &stolen).await, 401);
    assert_eq!(with_cookie(&anon, &laptop).await, 401);
    let refused =
        anon.send_with_headers("GET", "/api/v1/jobs", None, Vec::new(), &[("cookie", &stolen)]).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(refused.json()["code"], 3, "{}", refused.text);
    assert_eq!(with_cookie(&anon, &renewed).await, 200);

    // The old password no longer signs in; the new one does, and its cookie works.
    assert_eq!(sign_in(&anon, "first-password").await.0, 401);
    let (status, fresh) = sign_in(&anon, "second-password").await;
    assert_eq!(status, 200);
    let fresh = fresh.unwrap();
    assert_eq!(with_cookie(&anon, &fresh).await, 200);

    // A change made with a token (`cronstack users passwd`) ends the sessions too, sets no
    // cookie, and leaves tokens alone (they are revoked one by one).
    let api = Api::new(&server, Some(&token));
    let r = api
        .put("/api/v1/password", json!({"password": "third-password", "current_password": "second-password"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(session_cookie(&r), None);
    assert_eq!(with_cookie(&anon, &fresh).await, 401);
    assert_eq!(with_cookie(&anon, &renewed).await, 401);
    assert_eq!(api.get("/api/v1/whoami").await.status, 200);
    let (status, last) = sign_in(&anon, "third-password").await;
    assert_eq!(status, 200);
    assert_eq!(with_cookie(&anon, &last.unwrap()).await, 200);
}

/// On PostgreSQL a cookie is refused on every node at once: the other node cached the
/// session's user and hears of the change (well within the caches' 5 s bound).
#[tokio::test]
async fn a_password_change_ends_sessions_on_every_node() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    add_user(&db, "alice", Some("first-password"));
    let a = Server::start_on(&db, &[]);
    let b = Server::start_on(&db, &[]);
    let (on_a, on_b) = (Api::new(&a, None), Api::new(&b, None));
    let (_, cookie) = sign_in(&on_a, "first-password").await;
    let cookie = cookie.unwrap();
    // The cookie key is shared: node b honours node a's cookie (and caches its user).
    for _ in 0..3 {
        assert_eq!(with_cookie(&on_b, &cookie).await, 200);
    }
    let r = change_password(&on_a, Some(&cookie), "first-password", "second-password").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let renewed = session_cookie(&r).unwrap();
    let refused = eventually(Duration::from_secs(2), || async {
        (with_cookie(&on_b, &cookie).await == 401).then_some(())
    })
    .await;
    assert!(refused.is_some(), "node b still honours the old cookie 2 s after the change");
    assert_eq!(with_cookie(&on_b, &renewed).await, 200);
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
