//! Several nodes on one PostgreSQL database: every slot fires exactly once, a SIGKILLed node's
//! slots are taken by the others, its in-flight runs end `lost` (or finished). Needs
//! `CRONSTACK_TEST_POSTGRES` (CI's PostgreSQL pass sets it); on SQLite there is no cluster.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_fire_every_slot_exactly_once_through_a_node_crash() {
    if !postgres_or_skip() {
        return;
    }
    const JOBS: usize = 300;
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let flags = ["--lease-s", "3", "--rate-limit", "1000000"];
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start_on(&db, &flags)).collect();
    let api = Api::new(&nodes[0], Some(&token));

    // Every process that starts appends its run id: one run launched twice (two processes
    // for one claimed slot) shows as a repeated id, which the runs table alone cannot show.
    let started_log = std::env::temp_dir().join(format!("cronstack-cluster-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&started_log);
    let command = format!("echo \"$CRONSTACK_RUN_ID\" >> '{}'", started_log.display());
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": command})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"period": 1}})).await;
    for i in 0..JOBS {
        // Spread the creations over the three nodes: each must learn of the others' jobs.
        let node = Api::new(&nodes[i % 3], Some(&token));
        node.create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": format!("j{i}"), "enabled": true, "overlap": "allow"}),
        )
        .await;
    }
    let nodes_seen = api.get("/api/v1/nodes").await.json();
    assert_eq!(nodes_seen["count"], 3, "{nodes_seen}");

    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let dead_id = {
        let list = Api::new(&nodes[2], Some(&token)).get("/api/v1/nodes").await.json();
        list["nodes"].as_array().unwrap().iter().find(|n| n["this_node"] == true).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let killed_at_ms = chrono_now_ms();
    nodes[2].kill9();
    tokio::time::sleep(Duration::from_secs(22).saturating_sub(started.elapsed())).await;
    let end_ms = chrono_now_ms();
    // Let the lease (3 s) of the dead node's runs expire and be swept.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for n in nodes.iter_mut().take(2) {
        n.stop();
    }

    // Scheduled runs per job and slot.
    let rows = psql_rows(
        &db.url,
        "SELECT job_id, scheduled_for, status, COALESCE(node_id, '') FROM runs WHERE trigger_kind = 'schedule' ORDER BY job_id, scheduled_for",
    );
    let mut per_job: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut statuses: HashMap<String, usize> = HashMap::new();
    let mut by_node: HashMap<String, usize> = HashMap::new();
    let mut dead_unfinished = 0;
    for r in &rows {
        let (job, slot) = (r[0].parse::<i64>().unwrap(), r[1].parse::<i64>().unwrap());
        per_job.entry(job).or_default().push(slot);
        *statuses.entry(r[2].clone()).or_default() += 1;
        *by_node.entry(r[3].clone()).or_default() += 1;
        if r[3] == dead_id && !matches!(r[2].as_str(), "lost" | "succeeded" | "failed" | "skipped") {
            dead_unfinished += 1;
        }
    }
    assert_eq!(per_job.len(), JOBS, "every job fired");
    let (mut duplicates, mut gaps, mut checked) = (0, 0, 0);
    let mut gap_examples = Vec::new();
    for (job, slots) in &per_job {
        let mut seen: HashMap<i64, usize> = HashMap::new();
        for s in slots {
            *seen.entry(*s).or_default() += 1;
        }
        duplicates += seen.values().filter(|n| **n > 1).count();
        assert!(slots.iter().all(|s| s % 1000 == 0), "period slots are whole seconds");
        // Every second from the job's second slot to the end window must have a run.
        let first = slots[0] + 1000;
        let last = end_ms - end_ms % 1000 - 2000;
        let mut slot = first;
        while slot <= last {
            checked += 1;
            if !seen.contains_key(&slot) {
                gaps += 1;
                if gap_examples.len() < 5 {
                    gap_examples.push((job, slot - killed_at_ms));
                }
            }
            slot += 1000;
        }
    }
    eprintln!(
        "cluster: {} scheduled runs over {JOBS} jobs; slots checked {checked}; duplicates {duplicates}; gaps {gaps}; statuses {statuses:?}; runs per node {by_node:?}; dead node's unfinished runs {dead_unfinished}",
        rows.len()
    );
    let lateness = psql_rows(
        &db.url,
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY started_at - scheduled_for), \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY started_at - scheduled_for), \
                MAX(started_at - scheduled_for) FROM runs WHERE trigger_kind = 'schedule' AND started_at IS NOT NULL",
    );
    eprintln!("cluster lateness ms: p50 {} p99 {} max {}", lateness[0][0], lateness[0][1], lateness[0][2]);
    for r in psql_rows(
        &db.url,
        "SELECT status, LEFT(COALESCE(log, ''), 120), COUNT(*) FROM runs WHERE status NOT IN ('succeeded') GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5",
    ) {
        eprintln!("cluster non-success: {r:?}");
    }
    assert_eq!(duplicates, 0, "a slot fired twice");
    let launched = std::fs::read_to_string(&started_log).unwrap_or_default();
    let _ = std::fs::remove_file(&started_log);
    let mut launches: HashMap<&str, usize> = HashMap::new();
    for id in launched.lines() {
        *launches.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = launches.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "cluster: {} processes started, {} run ids started more than once",
        launched.lines().count(),
        twice.len()
    );
    assert!(twice.is_empty(), "runs launched more than once: {twice:?}");
    assert_eq!(gaps, 0, "missing slots (job, ms after the kill): {gap_examples:?}");
    assert!(by_node.get(&dead_id).copied().unwrap_or(0) > 0, "the killed node had fired runs before it died");
    assert_eq!(dead_unfinished, 0, "the dead node's runs are lost or finished");
    assert!(by_node.len() >= 3, "all three nodes fired: {by_node:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_nodes_share_the_slots_and_a_frozen_nodes_share_is_taken_over() {
    if !postgres_or_skip() {
        return;
    }
    const JOBS: usize = 150;
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let flags = ["--lease-s", "3", "--rate-limit", "1000000"];
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start_on(&db, &flags)).collect();
    let api = Api::new(&nodes[0], Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"period": 1}})).await;
    for i in 0..JOBS {
        api.create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": format!("j{i}"), "enabled": true, "overlap": "allow"}),
        )
        .await;
    }
    let frozen_id = {
        let list = Api::new(&nodes[2], Some(&token)).get("/api/v1/nodes").await.json();
        assert_eq!(list["count"], 3, "{list}");
        list["nodes"].as_array().unwrap().iter().find(|n| n["this_node"] == true).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Every node has read the others' heartbeats by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let healthy_from = chrono_now_ms();
    let claims_before = cluster_claims(&nodes).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let claims_healthy = cluster_claims(&nodes).await;
    // Frozen half-way between two slots: nothing claimed for the next one yet (the claims go
    // a lookahead, 200 ms, before it), nor inside a transaction.
    let wait = (500 - chrono_now_ms().rem_euclid(1000)).rem_euclid(1000);
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    let frozen_at = chrono_now_ms();
    let signal = |sig: &str| {
        let pid = nodes[2].pid().to_string();
        assert!(std::process::Command::new("kill").args([sig, &pid]).status().unwrap().success());
    };
    signal("-STOP");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let thawed_at = chrono_now_ms();
    signal("-CONT");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in &mut nodes {
        n.stop();
    }

    let rows = psql_rows(
        &db.url,
        "SELECT job_id, scheduled_for, COALESCE(node_id, ''), COALESCE(started_at - scheduled_for, -1) \
         FROM runs WHERE trigger_kind = 'schedule'",
    );
    let mut per_slot: HashMap<(i64, i64), usize> = HashMap::new();
    let mut healthy: HashMap<String, usize> = HashMap::new();
    let mut frozen_window: HashMap<(i64, i64), String> = HashMap::new();
    let mut taken_over_late = 0i64;
    for r in &rows {
        let (job, slot) = (r[0].parse::<i64>().unwrap(), r[1].parse::<i64>().unwrap());
        *per_slot.entry((job, slot)).or_default() += 1;
        if slot > healthy_from + 1000 && slot < frozen_at {
            *healthy.entry(r[2].clone()).or_default() += 1;
        }
        if slot > frozen_at && slot < thawed_at {
            frozen_window.insert((job, slot), r[2].clone());
            taken_over_late = taken_over_late.max(r[3].parse().unwrap());
        }
    }
    let duplicates = per_slot.values().filter(|n| **n > 1).count();
    let total: usize = healthy.values().sum();
    eprintln!(
        "healthy: {total} slots by node {healthy:?}; frozen for {} ms: {} slots, latest start {taken_over_late} ms after its slot",
        thawed_at - frozen_at,
        frozen_window.len()
    );
    assert_eq!(duplicates, 0, "a slot fired twice");
    assert_eq!(healthy.len(), 3, "all three nodes claimed: {healthy:?}");
    // Healthy nodes hear each other's claims and skip their standby claims of those slots,
    // which would each come back lost: two per slot with three nodes if not heard.
    let (claimed, lost) = (claims_healthy.0 - claims_before.0, claims_healthy.1 - claims_before.1);
    eprintln!("healthy: {claimed} slots claimed, {lost} claims lost");
    assert!(claimed >= JOBS as u64 * 4, "{claimed} slots claimed in 6 s");
    assert!(
        lost * 10 <= claimed,
        "{lost} claims lost for {claimed} claimed: standby claims went to the database"
    );
    for (node, n) in &healthy {
        // A third each by preference; loose, since the test shares the machine.
        assert!(*n * 5 >= total, "node {node} claimed {n} of {total} slots: {healthy:?}");
    }
    // Every slot while the node was frozen ran once, claimed by the other two.
    let mut gaps = Vec::new();
    let mut slot = frozen_at - frozen_at % 1000 + 1000;
    while slot < thawed_at - 1000 {
        for job in per_slot.keys().map(|(j, _)| *j).collect::<std::collections::BTreeSet<_>>() {
            match frozen_window.get(&(job, slot)) {
                None => gaps.push((job, slot - frozen_at)),
                Some(node) => assert_ne!(node, &frozen_id, "the frozen node claimed a slot"),
            }
        }
        slot += 1000;
    }
    assert!(gaps.is_empty(), "slots not run while a node was frozen (job, ms after the freeze): {gaps:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_made_through_one_node_reaches_the_others_within_a_second() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let a = Server::start_on(&db, &[]);
    let b = Server::start_on(&db, &[]);
    let api_a = Api::new(&a, Some(&token));
    let stack = api_a.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    let schedule = api_a.create("/api/v1/schedules", json!({"config": {"cron": "* * * * * *"}})).await;
    let job = api_a
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": "j", "enabled": true}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Node A has read (and cached) the job and the list.
    let by_id = format!("/api/v1/jobs/byid/{job}");
    assert_eq!(api_a.get(&by_id).await.json()["do_run"], true);
    assert_eq!(api_a.get("/api/v1/jobs").await.json()["jobs"][0]["do_run"], true);
    // Pause through node B; from then on neither node may fire it.
    let paused =
        Api::new(&b, Some(&token)).put(&format!("/api/v1/jobs/{job}"), json!({"enabled": false})).await;
    assert_eq!(paused.status, 200);
    let paused_at = chrono_now_ms();
    // Node A's reads show it as soon as B's announcement arrives: well within a second,
    // where its caches' 5 s bound alone would not do.
    let seen = eventually(Duration::from_secs(1), || async {
        let job = api_a.get(&by_id).await.json();
        let listed = api_a.get("/api/v1/jobs").await.json()["jobs"][0].clone();
        (job["do_run"] == false && job["next_run"].is_null() && listed["do_run"] == false).then_some(())
    })
    .await;
    assert!(seen.is_some(), "node A still shows the job enabled: {}", api_a.get(&by_id).await.text);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let late = psql_rows(
        &db.url,
        &format!("SELECT COUNT(*) FROM runs WHERE job_id = {job} AND scheduled_for > {}", paused_at + 1000),
    );
    assert_eq!(late[0][0], "0", "a paused job fired on another node");
    let fired = psql_rows(&db.url, &format!("SELECT COUNT(DISTINCT node_id) FROM runs WHERE job_id = {job}"));
    eprintln!("nodes that fired the job before the pause: {}", fired[0][0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_is_one_budget_for_the_whole_cluster() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let a = Server::start_on(&db, &["--rate-limit", "4"]);
    let b = Server::start_on(&db, &["--rate-limit", "4"]);
    let (api_a, api_b) = (Api::new(&a, Some(&token)), Api::new(&b, Some(&token)));
    assert_eq!(api_a.get("/api/v1/jobs").await.header("x-ratelimit-remaining").as_deref(), Some("3"));
    assert_eq!(api_b.get("/api/v1/jobs").await.header("x-ratelimit-remaining").as_deref(), Some("2"));
    assert_eq!(api_a.get("/api/v1/jobs").await.header("x-ratelimit-remaining").as_deref(), Some("1"));
    assert_eq!(api_b.get("/api/v1/jobs").await.header("x-ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(api_a.get("/api/v1/jobs").await.status, 429);
    assert_eq!(api_b.get("/api/3/stacks").await.status, 429);

    // With a larger limit each node takes hits from the shared window a block at a time
    // (1% of the limit): the cluster still admits no more than the limit, and refuses no
    // earlier than a block per node before it.
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let a = Server::start_on(&db, &["--rate-limit", "500"]);
    let b = Server::start_on(&db, &["--rate-limit", "500"]);
    let (api_a, api_b) = (Api::new(&a, Some(&token)), Api::new(&b, Some(&token)));
    let mut admitted = 0;
    let mut refused_at = None;
    for i in 0..520 {
        let r = if i % 3 == 0 { api_b.get("/api/3/stacks").await } else { api_a.get("/api/v1/jobs").await };
        match r.status {
            200 => admitted += 1,
            429 => {
                refused_at.get_or_insert(i);
                assert!(r.header("retry-after").is_some());
            }
            other => panic!("status {other}: {}", r.text),
        }
    }
    let refused_at = refused_at.expect("the limit is reached");
    assert!(admitted <= 500, "admitted {admitted} of a budget of 500");
    assert!(refused_at >= 500 - 2 * 5, "first refusal at request {refused_at}, admitted {admitted}");
}

/// The cluster's claims so far, `(claimed, lost)`, summed over the nodes' `/metrics`.
async fn cluster_claims(nodes: &[Server]) -> (u64, u64) {
    let mut sum = (0, 0);
    for node in nodes {
        let text = Api::new(node, None).get("/metrics").await.text;
        let count = |outcome: &str| {
            let prefix = format!("cronstack_claims_total{{outcome=\"{outcome}\"}} ");
            let line = text.lines().find_map(|l| l.strip_prefix(&prefix));
            line.unwrap_or_else(|| panic!("no {prefix} in:\n{text}")).trim().parse::<u64>().unwrap()
        };
        sum = (sum.0 + count("claimed"), sum.1 + count("lost"));
    }
    sum
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A TCP proxy to PostgreSQL that the test can cut: while cut, it drops every connection and
/// refuses new ones — the database "goes away" for the node behind it.
struct CuttableProxy {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl CuttableProxy {
    async fn start(target: &'static str) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        CuttableProxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_survives_losing_its_database_and_answers_503_meanwhile() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let proxy = CuttableProxy::start("127.0.0.1:5432").await;
    // The same database, reached through the proxy.
    let (_, name) = db.url.rsplit_once('/').unwrap();
    let via_proxy = TestDb::alias(&db, &format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port));
    let server = Server::start_on(&via_proxy, &["--lease-s", "5"]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "* * * * * *"}})).await;
    let job = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": "tick", "enabled": true}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    proxy.cut();
    let cut_at = chrono_now_ms();
    let during = eventually(Duration::from_secs(20), || async {
        let r = api.get("/api/v1/jobs").await;
        (r.status == 503).then_some(r)
    })
    .await
    .expect("the API answers 503 while the database is away");
    assert_eq!(during.json()["code"], 30, "{}", during.text);
    assert!(during.json()["msg"].as_str().unwrap().contains("database"), "{}", during.text);
    assert!(during.header("retry-after").is_some());
    assert_eq!(api.get("/healthz").await.status, 200, "the process itself stays up");
    assert_eq!(api.get("/readyz").await.status, 503);
    tokio::time::sleep(Duration::from_secs(3)).await;

    proxy.restore();
    let restored_at = chrono_now_ms();
    eventually(Duration::from_secs(30), || async {
        (api.get("/api/v1/jobs").await.status == 200).then_some(())
    })
    .await
    .expect("the API recovers once the database is back");
    assert_eq!(api.get("/readyz").await.status, 200);
    tokio::time::sleep(Duration::from_secs(4)).await;

    let rows = psql_rows(
        &db.url,
        &format!(
            "SELECT scheduled_for, status FROM runs WHERE job_id = {job} AND trigger_kind = 'schedule' ORDER BY 1"
        ),
    );
    let slots: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    let mut unique = slots.clone();
    unique.dedup();
    assert_eq!(unique.len(), slots.len(), "no slot fired twice");
    assert!(slots.iter().any(|s| *s < cut_at), "fired before the cut");
    assert!(
        slots.iter().filter(|s| **s > restored_at + 1000).count() >= 2,
        "fires again after the database came back: {rows:?}"
    );
    let unfinished: Vec<_> = rows.iter().filter(|r| r[1] == "queued" || r[1] == "running").collect();
    assert!(unfinished.len() <= 1, "runs left unrecorded: {unfinished:?}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
