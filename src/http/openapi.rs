//! `GET /openapi.json` and the reference page at `/docs`.
//!
//! The document's paths and methods are read from the router itself (its route table, as
//! axum reports it), so a route cannot be served without being listed. What each operation
//! means — summary, parameters, bodies — comes from the table [`OPERATIONS`] below; a served
//! route missing from it is still listed (as "undocumented") and the test
//! `tests/ops.rs::openapi_lists_every_route` fails until it is described here.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};

/// A served path (OpenAPI style: `{*rest}` becomes `{rest}`) and its methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRoute {
    pub path: String,
    pub methods: Vec<&'static str>,
}

const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "options", "trace"];

/// The routes a router serves, read from its `Debug` rendering: axum exposes its route table
/// (`route id → path`, `route id → method router`) there and nowhere else.
pub fn served_routes(router_debug: &str) -> Vec<ServedRoute> {
    // Only the path router: the fallback router holds the catch-alls.
    let table = router_debug
        .split_once("path_router: PathRouter {")
        .map(|(_, rest)| rest.split_once("fallback_router:").map_or(rest, |(t, _)| t))
        .unwrap_or("");
    let (endpoints, node) = table.split_once("node: Node {").unwrap_or((table, ""));
    let mut paths = BTreeMap::new();
    for (id, rest) in route_ids(node) {
        if let Some(path) = rest.strip_prefix('"').and_then(|r| r.split_once('"')).map(|(p, _)| p) {
            paths.insert(id, path.to_string());
        }
    }
    let mut methods: BTreeMap<u64, Vec<&'static str>> = BTreeMap::new();
    let ids: Vec<(u64, &str)> = route_ids(endpoints).collect();
    for (i, (id, rest)) in ids.iter().enumerate() {
        // This endpoint's text runs up to the next route id.
        let end = ids.get(i + 1).map_or(rest.len(), |(_, next)| rest.len() - next.len());
        let text = &rest[..end];
        let found: Vec<&'static str> = if text.starts_with("MethodRouter(") {
            METHODS
                .into_iter()
                .filter(|m| {
                    [format!("{{ {m}: "), format!(", {m}: ")].iter().any(|field| {
                        text.split_once(field.as_str()).is_some_and(|(_, v)| !v.starts_with("None"))
                    })
                })
                .collect()
        } else {
            // A service route answers every method; list it as GET.
            vec!["get"]
        };
        methods.insert(*id, found);
    }
    let mut routes: Vec<ServedRoute> = paths
        .into_iter()
        .filter(|(_, p)| !p.contains("__private__axum"))
        .map(|(id, path)| ServedRoute {
            path: path.replace("{*", "{"),
            methods: methods.remove(&id).unwrap_or_default(),
        })
        .filter(|r| !r.methods.is_empty())
        .collect();
    routes.sort_by(|a, b| a.path.cmp(&b.path));
    routes
}

/// `RouteId(N): <rest…>` occurrences.
fn route_ids(text: &str) -> impl Iterator<Item = (u64, &str)> {
    text.match_indices("RouteId(").filter_map(move |(at, _)| {
        let rest = &text[at + "RouteId(".len()..];
        let (num, rest) = rest.split_once(')')?;
        let rest = rest.strip_prefix(": ")?;
        Some((num.parse().ok()?, rest))
    })
}

/// What an operation means.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    /// Request body schema (a name in `components.schemas`), if any.
    body: Option<&'static str>,
    /// Response schema name; `text` for text/plain, `html` for a page, `none` for a redirect.
    response: &'static str,
    /// Query parameters: (name, description).
    query: &'static [(&'static str, &'static str)],
}

const PAGE: &[(&str, &str)] = &[("page", "1-based page number (v1: 10 per page, v3: 30)")];
const OVERVIEW_QUERY: &[(&str, &str)] = &[
    ("page", "1-based page number"),
    ("per_page", "rows per page, 1 to 200 (default 50)"),
    ("name", "only jobs whose name contains this text (any case)"),
    ("stack", "only the jobs of this stack (an id of the caller's)"),
];
const HOOK_QUERY: &[(&str, &str)] =
    &[("token", "the stack's webhook_token, for a token hook (or send the X-Cronstack-Hook-Token header)")];

macro_rules! op {
    ($m:literal $p:literal, $s:literal, $body:expr, $resp:literal $(, $q:expr)?) => {
        Op { method: $m, path: $p, summary: $s, body: $body, response: $resp, query: op!(@q $($q)?) }
    };
    (@q) => { &[] };
    (@q $q:expr) => { $q };
}

/// Every operation cronstack serves, described.
const OPERATIONS: &[Op] = &[
    // Kragle v1
    op!("post" "/api/v1/authenticate", "Password login: answers {code: 0, user_id} and sets the signed auth_tkt cookie", Some("Credentials"), "LoginAnswer"),
    op!("post" "/api/v1/logout", "Clear the auth_tkt cookie", None, "KragleOk"),
    op!("get" "/api/v1/jobs", "The caller's jobs, 10 per page", None, "JobList", PAGE),
    op!("post" "/api/v1/jobs", "Create a job (needs stack_id, and schedule_id unless it runs after other jobs: `after`)", Some("JobInput"), "Created"),
    op!("get" "/api/v1/jobs/byid/{id}", "One job by id", None, "Job"),
    op!("get" "/api/v1/jobs/byname/{name}", "One job by name", None, "Job"),
    op!("put" "/api/v1/jobs/{id}", "Change a job (partial: omitted fields stay)", Some("JobInput"), "Job"),
    op!("delete" "/api/v1/jobs/{id}", "Delete a job; an enabled one is queued for deletion at its next slot (cancelled by PUT {\"do_del\": false}), unless now=1; with schedule=1 the job's schedule goes with the job (now or at that slot) if no other job uses it then", None, "Deleted", &[("now", "1: delete the job at once, even an enabled or queued one"), ("schedule", "1: delete the job's schedule with the job, if no other job uses it then (answers deleted_schedule, or with_schedule for a queued deletion)")]),
    op!("get" "/api/v1/jobs/byid/{id}/runs", "A job's runs, newest first, 10 per page", None, "RunList", PAGE),
    op!("post" "/api/v1/jobs/byid/{id}/run", "Run a job now, with arguments; with an Idempotency-Key header a repeat within 24 h answers the first run and starts nothing (409 for the same key with another body)", Some("RunNowInput"), "Run"),
    op!("post" "/api/v1/jobs/byid/{id}/backfill", "Runs every slot of the job's schedule between from and to (RFC 3339, both included) that never ran, oldest first, trigger backfill; at most --catch-up-max slots (400 naming the count)", Some("BackfillInput"), "Backfill"),
    op!("get" "/api/v1/runs/{id}", "One run", None, "Run"),
    op!("post" "/api/v1/runs/{id}/kill", "Kills a queued or running run on whichever node holds it (SIGTERM to its process group, SIGKILL after the kill grace); answers the run a moment later; 409 once it has ended", None, "Run"),
    op!("get" "/api/v1/runs/{id}/log", "A run's log as text; with follow=1 it streams until the run ends", None, "text", &[("follow", "1 to stream the log live until the run ends")]),
    op!("get" "/api/v1/schedules", "The caller's schedules, 10 per page", None, "ScheduleList", PAGE),
    op!("post" "/api/v1/schedules", "Create a schedule", Some("ScheduleInput"), "Created"),
    op!("get" "/api/v1/schedules/byid/{id}", "One schedule, with its rule in words and its next five fire times", None, "Schedule"),
    op!("put" "/api/v1/schedules/{id}", "Change a schedule", Some("ScheduleInput"), "Schedule"),
    op!("delete" "/api/v1/schedules/{id}", "Delete a schedule no job uses", None, "Deleted"),
    op!("get" "/api/v1/blockstacks", "Public stacks and the caller's own, 10 per page: the caller's with their jobs, blocks' conversions and state; others' public ones read-only without them (without credentials: the public stacks only)", None, "StackList", PAGE),
    op!("post" "/api/v1/blockstacks", "Create a stack", Some("StackInput"), "Created"),
    op!("get" "/api/v1/blockstacks/byid/{id}", "One stack with its jobs (someone else's public stack, or any without credentials: read-only, without jobs, conversions, state and webhook_token)", None, "Stack"),
    op!("get" "/api/v1/types", "The block types a stack's blocks may name, with their input and output (no credentials needed)", None, "TypeList"),
    op!("get" "/api/v1/blockstacks/byname/{name}", "One stack by name with its jobs", None, "Stack"),
    op!("put" "/api/v1/blockstacks/{id}", "Change a stack (partial)", Some("StackInput"), "Stack"),
    op!("delete" "/api/v1/blockstacks/{id}", "Delete a stack no job uses (409 while one does), with its hook runs and v3 actions", None, "Deleted"),
    op!("get" "/api/v1/blockstacks/hook/{id}", "Call a stack's hook (webhook_method GET; access by its webhook setting): the command gets Kragle's request document on stdin; HTTP 200 with {status: 0, result} or {status: 1, err}", None, "HookAnswer", HOOK_QUERY),
    op!("post" "/api/v1/blockstacks/hook/{id}", "Call a stack's hook (webhook_method POST): as GET, the body (JSON or form) in the document too", Some("HookBody"), "HookAnswer", HOOK_QUERY),
    op!("get" "/api/v1/blockstacks/exec/{id}", "Run one of the caller's stacks by hand (hook or not): {success: [run id], result} or {error}", None, "ExecAnswer"),
    op!("post" "/api/v1/blockstacks/exec/{id}", "Run one of the caller's stacks by hand, with a body in the document", Some("HookBody"), "ExecAnswer"),
    op!("get" "/api/v1/blockstacks/hook/token_refresh/{id}", "Replace a stack's webhook_token; the old one stops working", None, "HookToken"),
    op!("get" "/api/v1/webhooks", "The caller's outbound webhook subscriptions, 10 per page", None, "WebhookList", PAGE),
    op!("post" "/api/v1/webhooks", "Subscribe a URL to events (optionally of one stack or job); the signing secret is shown once", Some("WebhookInput"), "WebhookCreated"),
    op!("get" "/api/v1/webhooks/byid/{id}", "One subscription (without its secret)", None, "Webhook"),
    op!("get" "/api/v1/webhooks/byid/{id}/deliveries", "A subscription's deliveries and their attempts, newest first, 10 per page", None, "DeliveryList", PAGE),
    op!("put" "/api/v1/webhooks/{id}", "Change a subscription (partial)", Some("WebhookInput"), "Webhook"),
    op!("delete" "/api/v1/webhooks/{id}", "Delete a subscription and its deliveries", None, "Deleted"),
    op!("get" "/api/v1/channels", "The caller's notification channels (the same subscriptions as /webhooks, every kind), 10 per page", None, "ChannelList", PAGE),
    op!("post" "/api/v1/channels", "Create a notification channel: kind slack, discord or teams (their incoming-webhook URL and message shape), email (recipients in `to`; needs the server's SMTP settings) or webhook (signed event JSON)", Some("WebhookInput"), "WebhookCreated"),
    op!("get" "/api/v1/channels/byid/{id}", "One channel", None, "Webhook"),
    op!("get" "/api/v1/channels/byid/{id}/deliveries", "A channel's deliveries and their attempts, newest first, 10 per page", None, "DeliveryList", PAGE),
    op!("put" "/api/v1/channels/{id}", "Change a channel (partial)", Some("WebhookInput"), "Webhook"),
    op!("delete" "/api/v1/channels/{id}", "Delete a channel and its deliveries", None, "Deleted"),
    op!("get" "/api/v1/monitors", "The caller's heartbeat monitors, 10 per page", None, "MonitorList", PAGE),
    op!("post" "/api/v1/monitors", "Create a heartbeat monitor (a cron schedule with its zone, or a period, and a grace); answers it with its secret ping_url", Some("MonitorInput"), "Monitor"),
    op!("get" "/api/v1/monitors/byid/{id}", "One monitor: its state (new, up, late, down, paused), ping URL, last ping, next expected ping", None, "Monitor"),
    op!("put" "/api/v1/monitors/byid/{id}", "Change a monitor (partial); {paused: true} pauses it, {paused: false} resumes it as new (waiting for its next ping); schedule and grace apply from the next ping", Some("MonitorInput"), "Monitor"),
    op!("delete" "/api/v1/monitors/byid/{id}", "Delete a monitor and its pings", None, "Deleted"),
    op!("get" "/api/v1/monitors/byid/{id}/pings", "A monitor's pings (the newest keep_pings), newest first, 10 per page", None, "PingList", PAGE),
    op!("get" "/api/v1/tokens", "The caller's API tokens (admin scope)", None, "TokenList"),
    op!("post" "/api/v1/tokens", "Issue a token with equal or narrower scopes; the secret is shown once", Some("TokenInput"), "NewToken"),
    op!("delete" "/api/v1/tokens/{id}", "Revoke a token", None, "Deleted"),
    op!("put" "/api/v1/password", "Set the caller's password (admin scope; current_password required when one is set); ends every session cookie issued before it (a cookie caller gets a fresh one)", Some("PasswordInput"), "LoginAnswer"),
    op!("get" "/api/v1/overview", "The dashboard's overview: the caller's jobs, failing, stuck and late ones first (then healthy, then paused; by name within each), each with its stack's name, its schedule in words and zone, and the outcomes of its last 20 runs; every stack of the caller for the filter", None, "Overview", OVERVIEW_QUERY),
    op!("get" "/api/v1/whoami", "The caller: user id, name and scopes", None, "WhoAmI"),
    op!("get" "/api/v1/nodes", "The cluster's nodes seen in the last hour; running_runs counts the caller's runs", None, "NodeList"),
    // Cloud 66 v3
    op!("get" "/api/3/stacks", "The caller's stacks, 30 per page", None, "C66StackList", &[("page", "1-based page number (30 per page)"), ("filter_name", "only stacks whose name contains this text")]),
    op!("get" "/api/3/stacks/{stack}", "One stack by uid", None, "C66StackOne"),
    op!("get" "/api/3/stacks/{stack}/jobs", "A stack's jobs, 30 per page", None, "C66JobList", &[("page", "1-based page number (30 per page)"), ("server_uid", "accepted and ignored (every job runs on the cronstack cluster)")]),
    op!("get" "/api/3/stacks/{stack}/jobs/{job}", "One job by uid", None, "C66JobOne"),
    op!("post" "/api/3/stacks/{stack}/jobs/{job}/run_now", "Run a job now; job_args from a JSON or form body or the query string; with an Idempotency-Key header a repeat within 24 h answers the first action and starts nothing", Some("C66RunNow"), "C66ActionOne", &[("job_args", "the arguments, split like a shell splits words")]),
    op!("post" "/api/3/stacks/{stack}/jobs/{job}/pause", "Pause a job", None, "C66ActionOne"),
    op!("post" "/api/3/stacks/{stack}/jobs/{job}/unpause", "Unpause a job", None, "C66ActionOne"),
    op!("post" "/api/3/stacks/{stack}/jobs/pause_all", "Pause every job of a stack", None, "C66ActionOne"),
    op!("post" "/api/3/stacks/{stack}/jobs/unpause_all", "Unpause the jobs pause_all paused", None, "C66ActionOne"),
    op!("get" "/api/3/stacks/{stack}/actions", "A stack's action records, 30 per page", None, "C66ActionList", PAGE),
    op!("get" "/api/3/stacks/{stack}/actions/{id}", "One action record", None, "C66ActionOne"),
    // Heartbeat pings
    op!("get" "/ping/{uuid}", "Ping a monitor: the job succeeded (the uuid is the only credential); answers OK", None, "text"),
    op!("post" "/ping/{uuid}", "Ping a monitor: the job succeeded; the body's last 10 KiB is kept as the ping's log", Some("PingBody"), "text"),
    op!("get" "/ping/{uuid}/{kind}", "Ping a monitor: start (the job started; the next result measures its duration), fail, or an exit code (0 is a success)", None, "text"),
    op!("post" "/ping/{uuid}/{kind}", "Ping a monitor with start, fail or an exit code, the body kept as the ping's log", Some("PingBody"), "text"),
    // Operations
    op!("get" "/healthz", "The process is up", None, "Status"),
    op!("get" "/readyz", "The database answers and the engine runs (503 otherwise)", None, "Status"),
    op!("get" "/metrics", "Prometheus metrics (text exposition format)", None, "text"),
    op!("get" "/openapi.json", "This document", None, "json"),
    op!("get" "/docs", "The API reference page", None, "html"),
    // Dashboard
    op!("get" "/", "Redirects to the dashboard", None, "none"),
    op!("get" "/ui", "Redirects to /ui/", None, "none"),
    op!("get" "/ui/", "The dashboard", None, "html"),
    op!("get" "/ui/{file}", "The dashboard's embedded assets", None, "asset"),
];

fn tag_of(path: &str) -> &'static str {
    if path.starts_with("/api/v1") {
        "v1 (Kragle)"
    } else if path.starts_with("/api/3") {
        "v3 (Cloud 66)"
    } else if path == "/" || path.starts_with("/ui") {
        "dashboard"
    } else if path.starts_with("/ping/") {
        "heartbeat pings"
    } else {
        "operations"
    }
}

fn is_public(path: &str) -> bool {
    !(path.starts_with("/api/v1") || path.starts_with("/api/3"))
        || matches!(
            path,
            "/api/v1/authenticate" | "/api/v1/logout" | "/api/v1/blockstacks/hook/{id}" | "/api/v1/types"
        )
}

fn param_schema(path: &str, name: &str) -> Value {
    let integer = name == "id" && (path.starts_with("/api/v1") || path.contains("/actions/"));
    if integer { json!({ "type": "integer", "format": "int64" }) } else { json!({ "type": "string" }) }
}

fn param_description(path: &str, name: &str) -> String {
    match name {
        "id" => "numeric id".into(),
        "name" => "the object's name".into(),
        "stack" => "the stack's uid".into(),
        "job" => "the job's uid".into(),
        "file" => "asset file name".into(),
        "uuid" => "the monitor's ping uuid (its only credential)".into(),
        "kind" => "start, fail, or an exit code 0-255 (0 is a success)".into(),
        other if path.starts_with("/api/3") => format!("{other} (a trailing .json is accepted)"),
        other => other.to_string(),
    }
}

fn error_ref(path: &str) -> &'static str {
    if path.starts_with("/api/3") {
        "#/components/schemas/Cloud66Error"
    } else {
        "#/components/schemas/KragleError"
    }
}

fn operation(path: &str, method: &str, op: Option<&Op>) -> Value {
    let mut o = Map::new();
    o.insert("tags".into(), json!([tag_of(path)]));
    o.insert(
        "operationId".into(),
        json!(format!("{method}{}", path.replace(['/', '{', '}', '.', '-'], "_"))),
    );
    o.insert(
        "summary".into(),
        json!(op.map_or_else(
            || "undocumented: describe it in src/http/openapi.rs".to_string(),
            |o| o.summary.to_string()
        )),
    );
    let mut params: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({ "name": name, "in": "path", "required": true,
                    "description": param_description(path, name), "schema": param_schema(path, name) })
        })
        .collect();
    for (name, description) in op.map_or(&[][..], |o| o.query) {
        params.push(json!({ "name": name, "in": "query", "required": false,
                            "description": description, "schema": { "type": "string" } }));
    }
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    if let Some(body) = op.and_then(|o| o.body) {
        o.insert(
            "requestBody".into(),
            json!({ "required": false, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{body}") } } } }),
        );
    }
    let ok = match op.map_or("json", |o| o.response) {
        "text" => {
            json!({ "description": "OK", "content": { "text/plain": { "schema": { "type": "string" } } } })
        }
        "html" => {
            json!({ "description": "OK", "content": { "text/html": { "schema": { "type": "string" } } } })
        }
        "asset" => json!({ "description": "the file (JavaScript, CSS or SVG)" }),
        "none" => json!({ "description": "a redirect" }),
        "json" => {
            json!({ "description": "OK", "content": { "application/json": { "schema": { "type": "object" } } } })
        }
        name => {
            json!({ "description": "OK", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } } })
        }
    };
    let mut responses = Map::new();
    let ok_status = if op.is_some_and(|o| o.response == "none") { "303" } else { "200" };
    responses.insert(ok_status.into(), ok);
    if path.starts_with("/api/") || path.starts_with("/ping/") {
        responses.insert(
            "default".into(),
            json!({ "description": "an error (400, 401, 403, 404, 409, 413, 415, 429, 503, 507…)",
                    "content": { "application/json": { "schema": { "$ref": error_ref(path) } } } }),
        );
    }
    o.insert("responses".into(), Value::Object(responses));
    if method == "get" && matches!(path, "/api/v1/blockstacks" | "/api/v1/blockstacks/byid/{id}") {
        // Public stacks answer without credentials too (`{}`: anonymous access).
        o.insert("security".into(), json!([{}, { "bearer": [] }, { "cookie": [] }]));
    } else if !is_public(path) {
        o.insert("security".into(), json!([{ "bearer": [] }, { "cookie": [] }]));
    } else {
        o.insert("security".into(), json!([]));
    }
    Value::Object(o)
}

/// The OpenAPI 3.1 document for the routes a router serves.
pub fn document(routes: &[ServedRoute]) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let mut item = Map::new();
        for &method in &route.methods {
            let op = OPERATIONS.iter().find(|o| o.path == route.path && o.method == method);
            item.insert(method.into(), operation(&route.path, method, op));
        }
        paths.insert(route.path.clone(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cronstack",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A self-hosted job scheduler. Two REST dialects over one engine: the Kragle-style v1 API under /api/v1 and the Cloud 66-style v3 API under /api/3 (a trailing .json is accepted on every v3 path). Authenticate with `Authorization: Bearer cst_…` or the auth_tkt cookie from POST /api/v1/authenticate. Every authenticated response carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset.",
            "license": { "name": "MIT" },
        },
        "tags": [
            { "name": "v1 (Kragle)", "description": "Kragle-style API: {code, msg} errors, lists of 10" },
            { "name": "v3 (Cloud 66)", "description": "Cloud 66-style API: {response: …} envelopes, {error, error_description} errors, lists of 30" },
            { "name": "heartbeat pings", "description": "Pings of heartbeat monitors from cron jobs that run elsewhere: the monitor's uuid is the credential; rate limited per monitor (--ping-rate-limit); v1 errors" },
            { "name": "operations", "description": "Health, readiness, metrics, this document" },
            { "name": "dashboard", "description": "The web dashboard" },
        ],
        "paths": paths,
        "components": { "securitySchemes": security_schemes(), "schemas": schemas() },
    })
}

fn security_schemes() -> Value {
    json!({
        "bearer": { "type": "http", "scheme": "bearer", "description": "an API token, cst_ + 64 hex characters" },
        "cookie": { "type": "apiKey", "in": "cookie", "name": "auth_tkt", "description": "the session cookie set by POST /api/v1/authenticate" },
    })
}

fn schemas() -> Value {
    let int = json!({ "type": "integer", "format": "int64" });
    let int_or_null = json!({ "type": ["integer", "null"], "format": "int64" });
    let string = json!({ "type": "string" });
    let string_or_null = json!({ "type": ["string", "null"] });
    let time = json!({ "type": "string", "format": "date-time" });
    let time_or_null = json!({ "type": ["string", "null"], "format": "date-time" });
    let list = |key: &str, item: &str| {
        json!({ "type": "object", "properties": {
            "count": { "type": "integer" }, "pagesize": { "type": "integer" }, "page": { "type": "integer" },
            key: { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } } } })
    };
    let c66_list = |item: &str| {
        json!({ "type": "object", "properties": {
            "response": { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } },
            "count": { "type": "integer" },
            "pagination": { "type": "object", "properties": {
                "previous": { "type": ["integer", "null"] }, "next": { "type": ["integer", "null"] },
                "current": { "type": "integer" }, "per_page": { "type": "integer" },
                "count": { "type": "integer" }, "pages": { "type": "integer" } } } } })
    };
    let c66_one = |item: &str| json!({ "type": "object", "properties": { "response": { "$ref": format!("#/components/schemas/{item}") } } });
    let cloud66_error_ids: Vec<&str> =
        super::cloud66::ERROR_IDS.iter().map(|(_, id)| *id).chain([super::cloud66::OTHER_ERROR]).collect();
    let overlap = json!({ "type": "string", "enum": ["allow", "forbid", "replace", "queue"] });
    let missed = json!({ "type": "string", "enum": ["skip", "run_once", "catch_up"] });
    let keep = |which: &str| {
        json!({ "type": ["integer", "null"], "minimum": 0, "maximum": crate::service::MAX_KEEP,
            "description": format!("the newest this many {which} runs are kept; null: the server's default") })
    };
    let after = json!({ "type": "array", "maxItems": crate::service::MAX_AFTER,
        "description": "job chains: the job runs after these jobs' runs (all of them since its last chained run, or each one with after_any); their jobs must be the caller's (404, code 25); a cycle is refused (code 4, naming it)",
        "items": { "type": "object", "additionalProperties": false, "required": ["job_id", "on"], "properties": {
            "job_id": int,
            "on": { "type": "string", "enum": ["success", "failure", "always"],
                "description": "success: a succeeded run; failure: a failed, timed out, killed or lost one; always: either (a skipped slot never); only the final attempt counts" } } } });
    let after_any = json!({ "type": "boolean", "description": "run on each qualifying run of any after job instead of once all of them ran" });
    let trigger =
        json!({ "type": "string", "enum": ["schedule", "run_now", "retry", "webhook", "backfill", "chain"] });
    let outcome = json!({ "type": "string", "enum": ["queued", "running", "succeeded", "failed", "timed_out", "killed", "skipped", "lost"] });
    let grace = json!({ "type": ["integer", "null"], "minimum": 1, "maximum": crate::service::MAX_HEALTH_S,
        "description": "a slot this many seconds late with no run started makes the job late (job.missed); null: 60" });
    let max_duration = json!({ "type": ["integer", "null"], "minimum": 1, "maximum": crate::service::MAX_HEALTH_S,
        "description": "a run going longer than this many seconds makes the job stuck (job.stuck); null: no limit" });
    let config = json!({ "type": "object", "description": "one of {period: seconds}, {timestamp: unix seconds}, {cron: expression, timezone: IANA name}, {manual: true} (never fires on its own: run now or chains)",
        "properties": { "period": int, "timestamp": int, "cron": string, "timezone": string, "manual": { "type": "boolean", "enum": [true] } } });
    let mut all = Map::new();
    for part in [
        json!({
            "KragleError": { "type": "object", "required": ["code", "msg"], "properties": {
                "code": { "type": "integer", "description": "Kragle's error number (see the README)" }, "msg": string } },
            "Cloud66Error": { "type": "object", "required": ["error", "error_description"], "properties": {
                "error": { "type": "string", "enum": cloud66_error_ids },
                "error_description": string } },
            "PasswordInput": { "type": "object", "additionalProperties": false, "required": ["password"], "properties": { "password": string, "current_password": string } },
            "Credentials": { "type": "object", "required": ["password"], "properties": { "username": string, "email": string, "password": string } },
            "LoginAnswer": { "type": "object", "properties": { "code": { "type": "integer", "const": 0 }, "user_id": int } },
            "KragleOk": { "type": "object", "properties": { "code": { "type": "integer", "const": 0 } } },
            "Created": { "type": "object", "required": ["id"], "properties": { "id": int } },
        }),
        json!({
            "Deleted": { "type": "object", "properties": { "deleted": int, "queued_for_deletion": int, "deleted_schedule": int, "with_schedule": int } },
            "Job": { "type": "object", "properties": {
                "id": int, "owner": int, "name": string_or_null, "stack": int, "schedule": int, "next_run": time_or_null,
                "do_run": { "type": "boolean", "description": "enabled" }, "do_del": { "type": "boolean", "description": "queued for deletion" },
                "uid": string, "type": string, "command": string_or_null, "timeout_s": int_or_null, "overlap": overlap, "missed": missed,
                "retries": int, "retry_backoff_s": int, "retry_lost": { "type": "boolean" },
                "jitter_s": int, "not_before": time_or_null, "not_after": time_or_null, "max_runs": int_or_null, "runs_fired": int,
                "keep_succeeded": keep("succeeded"), "keep_failed": keep("other finished (failed, timed out, killed, lost, skipped)"),
                "after": after, "after_any": after_any,
                "grace_s": grace, "max_duration_s": max_duration,
                "health": { "type": "string", "enum": ["ok", "failing", "late", "stuck", "paused"] },
                "last_run": { "type": ["object", "null"], "description": "the last finished run, skipped slots aside", "properties": {
                    "id": int, "outcome": outcome, "finished_at": time } },
                "last_success_at": time_or_null, "last_failure_at": time_or_null,
                "missed_slot": { "type": ["string", "null"], "format": "date-time", "description": "the first slot of an open missed incident (health late)" },
                "stuck_run": { "type": ["integer", "null"], "format": "int64", "description": "the run of an open stuck incident (health stuck)" },
                "created_at": time, "updated_at": time } },
            "JobInput": { "type": "object", "additionalProperties": false, "properties": {
                "stack_id": int, "schedule_id": int, "name": string_or_null, "enabled": { "type": "boolean" },
                "command": string_or_null, "timeout_s": int_or_null, "overlap": overlap, "missed": missed,
                "retries": int, "retry_backoff_s": int, "retry_lost": { "type": "boolean" },
                "jitter_s": int, "not_before": time_or_null, "not_after": time_or_null, "max_runs": int_or_null,
                "keep_succeeded": keep("succeeded"), "keep_failed": keep("other finished (failed, timed out, killed, lost, skipped)"),
                "after": after, "after_any": after_any, "grace_s": grace, "max_duration_s": max_duration,
                "do_del": { "type": "boolean", "enum": [false], "description": "PUT only: false cancels a queued deletion (DELETE queues an enabled job's deletion at its next slot)" } } },
            "JobList": list("jobs", "Job"),
            "Overview": { "type": "object", "properties": {
                "count": { "type": "integer", "description": "jobs matching the filters" },
                "page": { "type": "integer" }, "pagesize": { "type": "integer" },
                "jobs": { "type": "array", "items": { "allOf": [{ "$ref": "#/components/schemas/Job" }, { "type": "object", "properties": {
                    "stack_name": string_or_null,
                    "schedule_description": string_or_null,
                    "timezone": { "type": ["string", "null"], "description": "a cron schedule's zone; null for a period or one-time schedule (UTC)" },
                    "recent_outcomes": { "type": "array", "maxItems": crate::service::RECENT_RUNS, "items": outcome, "description": "its newest runs' outcomes, newest first" } } }] } },
                "stacks": { "type": "array", "items": { "type": "object", "properties": { "id": int, "name": string } } } } },
            "Run": { "type": "object", "properties": {
                "id": int, "job": int, "trigger": trigger,
                "attempt": int, "jitter_ms": int, "scheduled_for": time, "started_at": time_or_null, "finished_at": time_or_null,
                "lateness_ms": int_or_null, "duration_ms": int_or_null, "outcome": outcome, "exit_code": int_or_null,
                "signal": int_or_null, "args": { "type": "array", "items": string }, "node": string_or_null,
                "log_truncated": { "type": "boolean" },
                "upstream_runs": { "type": ["array", "null"], "items": int,
                    "description": "a chained run's upstream runs (the one that completed its condition gives the process CRONSTACK_UPSTREAM_RUN_ID and CRONSTACK_UPSTREAM_OUTCOME); null for other runs" },
                "steps": { "type": "array", "description": "GET /runs/<id> of a pipeline run only: its steps, in order",
                    "items": { "type": "object", "properties": {
                        "index": int, "block": int, "name": string_or_null, "type": string,
                        "status": { "type": "string", "enum": ["succeeded", "failed", "stopped", "skipped"] },
                        "started_at": time_or_null, "finished_at": time_or_null,
                        "output": { "description": "the step's output (its JSON capped at 64 KiB)" }, "error": string_or_null } } } } },
            "RunList": list("runs", "Run"),
            "TypeList": { "type": "object", "properties": { "count": int, "types": { "type": "array", "items": { "type": "object", "properties": {
                "name": { "type": "string", "enum": ["Shell command", "HTTP request", "Filter", "Transform"] }, "description": string,
                "io": { "type": "object", "properties": { "input": {}, "output": {} } } } } } } },
            "BackfillInput": { "type": "object", "additionalProperties": false, "required": ["from", "to"], "properties": {
                "from": time, "to": time,
                "overlap": { "type": "string", "enum": ["allow", "queue"], "description": "queue: one after another" } } },
            "Backfill": { "type": "object", "properties": { "count": int, "runs": { "type": "array", "items": { "$ref": "#/components/schemas/Run" } } } },
        }),
        json!({
            "RunNowInput": { "type": "object", "additionalProperties": false, "properties": {
                "args": { "description": "a list of arguments, or one string split like a shell splits words",
                          "oneOf": [{ "type": "array", "items": string }, string] } } },
            "Schedule": { "type": "object", "properties": {
                "id": int, "name": string_or_null, "once": { "type": "boolean" }, "config": config,
                "description": { "type": "string", "description": "the rule in words" },
                "upcoming": { "type": "array", "items": time, "description": "the next five fire times" } } },
            "ScheduleInput": { "type": "object", "additionalProperties": false, "properties": {
                "config": config, "name": string_or_null, "once": { "type": "boolean" } } },
            "ScheduleList": list("schedules", "Schedule"),
            "Stack": { "type": "object", "properties": {
                "id": int, "uid": string, "owner": int, "name": string,
                "command": { "type": ["string", "null"], "description": "null for a pipeline (its commands are in its blocks)" },
                "blocks": { "type": "array", "description": "Kragle's blocks (a one-command stack shows one Shell command block); conversion and state for the owner only",
                    "items": { "type": "object", "properties": { "id": int, "type": string, "name": string_or_null,
                        "conversion": { "description": "the block's input, with \\u0001/json/pointer\\u0002 templates" },
                        "state": { "type": "object", "properties": { "input": {}, "output": {} }, "description": "the input and output of its last successful step" } } } },
                "public": { "type": "boolean" }, "environment": string_or_null,
                "env": { "type": "object", "additionalProperties": string },
                "secret_env": { "type": "array", "items": string,
                    "description": "the names of the secret variables, sorted; their values are never shown" },
                "workdir": string_or_null,
                "webhook": { "type": ["string", "null"], "enum": ["public", "token", "user", null] },
                "webhook_method": { "type": "string", "enum": ["GET", "POST"] }, "webhook_token": string_or_null,
                "jobs": { "type": "array", "items": { "type": "object", "properties": {
                    "id": int, "name": string_or_null, "do_run": { "type": "boolean" }, "schedule": config } } },
                "created_at": time, "updated_at": time } },
            "StackInput": { "type": "object", "additionalProperties": false, "properties": {
                "name": string, "command": string, "env": { "type": "object", "additionalProperties": string },
                "secret_env": { "type": ["object", "null"], "additionalProperties": { "type": ["string", "null"], "minLength": 4 },
                    "description": "secret variables, sealed at rest and masked as *** in run logs: a value sets one, null removes one, the others stay; null removes them all" },
                "workdir": string_or_null, "webhook": { "type": ["string", "null"] }, "webhook_method": string,
                "schedule_id": int, "enabled": { "type": "boolean" },
                "blocks": { "type": "array", "description": "instead of command: [[type, conversion, {name, state}?], …] (see GET /api/v1/types); errors name blocks[i] and the field",
                    "items": { "type": "array", "minItems": 2, "maxItems": 3 } },
                "public": { "type": "boolean", "description": "listed read-only to every user, and without credentials" },
                "needs_approval": { "type": "boolean", "description": "accepted (Kragle); nothing waits for approval" },
                "environment": { "type": ["string", "null"], "description": "Cloud 66's stack environment; null: production" } } },
        }),
        json!({
            "StackList": list("stacks", "Stack"),
            "Token": { "type": "object", "properties": { "id": int, "name": string,
                "scopes": { "type": "array", "items": { "type": "string", "enum": ["public", "jobs", "admin"] } }, "created_at": time } },
            "TokenList": { "type": "object", "properties": { "count": { "type": "integer" }, "tokens": { "type": "array", "items": { "$ref": "#/components/schemas/Token" } } } },
            "TokenInput": { "type": "object", "required": ["scopes"], "properties": { "name": string,
                "scopes": { "type": "array", "items": { "type": "string", "enum": ["public", "jobs", "admin"] } } } },
            "NewToken": { "type": "object", "properties": { "id": int, "name": string, "scopes": { "type": "array", "items": string },
                "token": { "type": "string", "description": "the secret, shown once" }, "created_at": time } },
            "WhoAmI": { "type": "object", "properties": { "user_id": int, "username": string, "scopes": { "type": "array", "items": string } } },
        }),
        json!({
            "NodeList": { "type": "object", "properties": { "count": { "type": "integer" }, "nodes": { "type": "array", "items": { "type": "object", "properties": {
                "id": string, "address": string, "started_at": time, "last_seen": time, "running_runs": int, "this_node": { "type": "boolean" } } } } } },
            "C66Stack": { "type": "object", "properties": { "id": int, "uid": string, "name": string, "command": string_or_null,
                "environment": string, "status": { "type": "integer", "description": "1 (deployed) for every stack" },
                "health": { "type": "integer", "description": "3 every job's last run succeeded, 2 some failed, 4 all failed, 0 none ran yet" },
                "last_activity": string_or_null, "last_activity_iso": string_or_null,
                "created_at": string, "updated_at": string, "created_at_iso": time, "updated_at_iso": time } },
            "C66Job": { "type": "object", "properties": {
                "id": int, "uid": string, "name": string, "type": { "type": "string", "const": "DockerHostTaskJob" },
                "cron": string_or_null, "status": { "type": "integer", "description": "0 updated, 1 started, 2 success, 3 failed" },
                "paused": { "type": "boolean" }, "params": { "type": "object", "properties": { "command": string,
                    "steps": { "type": "array", "items": string, "description": "a pipeline's block types, in order (instead of command)" } } },
                "created_at": string, "updated_at": string } },
            "C66Action": { "type": "object", "properties": {
                "id": int, "user": string, "resource_type": string, "action": string, "resource_id": string, "started_via": string,
                "started_at": time, "finished_at": time_or_null, "finished_success": { "type": ["boolean", "null"] },
                "finished_message": string_or_null, "finished_result": {}, "metadata": { "type": "object" } } },
            "C66RunNow": { "type": "object", "properties": { "job_args": string } },
            "C66StackList": c66_list("C66Stack"),
        }),
        json!({
            "C66JobList": c66_list("C66Job"),
            "C66ActionList": c66_list("C66Action"),
            "C66StackOne": c66_one("C66Stack"),
            "C66JobOne": c66_one("C66Job"),
            "C66ActionOne": c66_one("C66Action"),
            "Status": { "type": "object", "properties": { "status": string, "node": string, "error": string } },
        }),
        webhook_schemas(),
        monitor_schemas(),
    ] {
        if let Value::Object(m) = part {
            all.extend(m);
        }
    }
    Value::Object(all)
}

/// Inbound hooks and outbound webhook subscriptions.
fn webhook_schemas() -> Value {
    let int = json!({ "type": "integer", "format": "int64" });
    let int_or_null = json!({ "type": ["integer", "null"], "format": "int64" });
    let string = json!({ "type": "string" });
    let string_or_null = json!({ "type": ["string", "null"] });
    let time = json!({ "type": "string", "format": "date-time" });
    let time_or_null = json!({ "type": ["string", "null"], "format": "date-time" });
    let events = json!({ "type": "array", "items": { "type": "string", "enum": [
        "run.started", "run.succeeded", "run.failed", "run.timed_out", "job.paused", "job.unpaused",
        "job.deleted", "job.fail", "job.backon", "job.missed", "job.stuck", "job.recovered", "monitor.down", "monitor.up"] } });
    let list = |key: &str, item: &str| {
        json!({ "type": "object", "properties": {
            "count": { "type": "integer" }, "pagesize": { "type": "integer" }, "page": { "type": "integer" },
            key: { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } } } })
    };
    let channel_kind = json!({ "type": "string", "enum": ["webhook", "slack", "discord", "teams", "email"],
        "description": "how deliveries are shaped: webhook (signed event JSON, the default), a chat service's incoming-webhook message (slack also serves Mattermost and Rocket.Chat), or a mail (email, through the server's SMTP settings; refused without them)" });
    let email_to = json!({ "type": ["array", "null"], "items": { "type": "string", "format": "email" },
        "description": "an email channel's recipients (its url is their mailto: URL); null for other kinds" });
    json!({
        "HookBody": { "description": "anything: a JSON body becomes the document's JSON, a form body its POST" },
        "HookAnswer": { "type": "object", "properties": {
            "status": { "type": "integer", "enum": [0, 1] },
            "result": { "description": "the command's stdout, parsed as JSON when it is JSON (status 0)" },
            "err": { "type": "string", "description": "what went wrong (status 1)" } } },
        "ExecAnswer": { "type": "object", "properties": {
            "success": { "type": "array", "items": int, "description": "the run's id" },
            "result": { "description": "the command's stdout, parsed as JSON when it is JSON" },
            "error": string } },
        "HookToken": { "type": "object", "properties": { "token": string } },
        "WebhookInput": { "type": "object", "additionalProperties": false, "properties": {
            "url": { "type": "string", "description": "where deliveries are POSTed (http:// or https://); required for every kind but email, which has none" },
            "to": { "oneOf": [{ "type": "string", "format": "email" }, { "type": "array", "items": { "type": "string", "format": "email" }, "minItems": 1, "maxItems": 20 }],
                "description": "kind email only, and required for it: one address or a list of 1 to 20" },
            "events": events, "secret": { "type": "string", "description": "16-200 characters; generated when absent" },
            "stack_id": int_or_null, "job_id": int_or_null, "kind": channel_kind, "name": string_or_null,
            "monitor_id": { "type": ["integer", "null"], "format": "int64",
                "description": "only this monitor's events (then no job events); monitor events skip subscriptions narrowed to a stack or job" } } },
        "Webhook": { "type": "object", "properties": {
            "id": int, "owner": int, "url": string, "events": events, "stack_id": int_or_null, "job_id": int_or_null,
            "kind": channel_kind, "name": string_or_null, "monitor_id": int_or_null, "to": email_to,
            "created_at": time, "updated_at": time } },
        "WebhookCreated": { "type": "object", "properties": { "id": int, "secret": { "type": "string", "description": "the signing secret, shown once" } } },
        "WebhookList": list("webhooks", "Webhook"),
        "ChannelList": list("channels", "Webhook"),
        "Delivery": { "type": "object", "properties": {
            "id": int, "webhook": int, "event": string,
            "status": { "type": "string", "enum": ["pending", "delivering", "delivered", "failed"] },
            "attempts": int, "last_status_code": int_or_null, "last_error": string_or_null,
            "next_attempt": time_or_null, "delivered_at": time_or_null, "created_at": time,
            "payload": { "type": "object", "description": "the body sent: {event, timestamp, job, run}, or {event, timestamp, monitor, ping} for monitor events" } } },
        "DeliveryList": list("deliveries", "Delivery"),
    })
}

/// Heartbeat monitors and their pings.
fn monitor_schemas() -> Value {
    let [int, int_or_null, string, string_or_null, time, time_or_null] = scalars();
    let schedule = json!({ "type": "object", "description": "{cron: expression, timezone: IANA name} or {period: seconds}",
        "properties": { "period": int, "cron": string, "timezone": string } });
    let kind = json!({ "type": "string", "enum": ["success", "start", "fail"] });
    json!({
        "MonitorInput": { "type": "object", "additionalProperties": false, "properties": {
            "name": string, "schedule": schedule,
            "grace_s": { "type": "integer", "minimum": 1, "description": "down this long after a missed ping (default 3600)" },
            "keep_pings": { "type": "integer", "minimum": 1, "maximum": crate::domain::monitor::MAX_KEEP_PINGS, "description": "pings kept (default 100)" },
            "paused": { "type": "boolean" } } },
        "Monitor": { "type": "object", "properties": {
            "id": int, "owner": int, "name": string,
            "state": { "type": "string", "enum": ["new", "up", "late", "down", "paused"] },
            "ping_url": { "type": "string", "description": "/ping/<uuid>, on the server's address: the uuid is the only credential a ping needs" },
            "schedule": schedule, "description": { "type": "string", "description": "the schedule in words" },
            "grace_s": int, "keep_pings": int, "last_ping_at": time_or_null,
            "last_ping_kind": { "type": ["string", "null"], "enum": ["success", "start", "fail", null] },
            "next_expected": time_or_null, "down_after": time_or_null, "started_at": time_or_null,
            "created_at": time, "updated_at": time } },
        "MonitorList": v1_list("monitors", "Monitor"),
        "Ping": { "type": "object", "properties": {
            "id": int, "monitor": int, "kind": kind, "exit_code": int_or_null, "duration_ms": int_or_null,
            "method": string, "user_agent": string_or_null,
            "body": { "type": "string", "description": "the request body's last 10 KiB (invalid UTF-8 and NUL as U+FFFD)" },
            "body_truncated": { "type": "boolean" }, "created_at": time } },
        "PingList": v1_list("pings", "Ping"),
        "PingBody": { "description": "anything (a log): its last 10 KiB is kept" },
    })
}

/// `int`, `int_or_null`, `string`, `string_or_null`, `time`, `time_or_null`.
fn scalars() -> [Value; 6] {
    [
        json!({ "type": "integer", "format": "int64" }),
        json!({ "type": ["integer", "null"], "format": "int64" }),
        json!({ "type": "string" }),
        json!({ "type": ["string", "null"] }),
        json!({ "type": "string", "format": "date-time" }),
        json!({ "type": ["string", "null"], "format": "date-time" }),
    ]
}

/// A v1 list page of `item`s under `key`.
fn v1_list(key: &str, item: &str) -> Value {
    json!({ "type": "object", "properties": {
        "count": { "type": "integer" }, "pagesize": { "type": "integer" }, "page": { "type": "integer" },
        key: { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } } } })
}

/// The document, computed once from the router when the app is built.
#[derive(Clone)]
pub struct ApiDoc(pub Arc<String>);

impl ApiDoc {
    /// The document for everything `router` serves.
    pub fn of<S>(router: &axum::Router<S>) -> ApiDoc {
        let doc = document(&served_routes(&format!("{router:?}")));
        ApiDoc(Arc::new(serde_json::to_string_pretty(&doc).expect("the document serializes")))
    }
}

/// `doc` is set once the whole route table, this router's included, is built.
pub fn router(doc: Arc<OnceLock<ApiDoc>>) -> axum::Router<super::AppState> {
    axum::Router::new()
        .route("/openapi.json", axum::routing::get(move || openapi_json(doc.clone())))
        .route("/docs", axum::routing::get(docs_page))
}

async fn openapi_json(doc: Arc<OnceLock<ApiDoc>>) -> Response {
    let text = doc.get().map_or("{}", |d| d.0.as_str()).to_owned();
    ([(axum::http::header::CONTENT_TYPE, "application/json")], text).into_response()
}

pub async fn docs_page() -> Response {
    ([(axum::http::header::CONTENT_SECURITY_POLICY, super::ui::CSP)], Html(include_str!("ui/docs.html")))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_router_table() {
        async fn h() {}
        let inner: axum::Router = axum::Router::new()
            .route("/jobs", axum::routing::get(h).post(h))
            .route("/jobs/{id}", axum::routing::put(h).delete(h))
            .fallback(h);
        let router: axum::Router = axum::Router::new()
            .nest("/api/v1", inner)
            .route("/healthz", axum::routing::get(h))
            .route("/ui/{*file}", axum::routing::get(h))
            .fallback(h)
            .layer(tower_http::trace::TraceLayer::new_for_http());
        let routes = served_routes(&format!("{router:?}"));
        assert_eq!(
            routes,
            vec![
                ServedRoute { path: "/api/v1/jobs".into(), methods: vec!["get", "post"] },
                ServedRoute { path: "/api/v1/jobs/{id}".into(), methods: vec!["put", "delete"] },
                ServedRoute { path: "/healthz".into(), methods: vec!["get"] },
                ServedRoute { path: "/ui/{file}".into(), methods: vec!["get"] },
            ]
        );
    }

    #[test]
    fn every_described_operation_is_well_formed() {
        for op in OPERATIONS {
            assert!(METHODS.contains(&op.method), "{} {}", op.method, op.path);
            assert!(op.path.starts_with('/'), "{}", op.path);
            let schemas = schemas();
            for name in op.body.into_iter().chain([op.response]) {
                if !["text", "html", "asset", "none", "json"].contains(&name) {
                    assert!(schemas.get(name).is_some(), "{} {}: no schema {name}", op.method, op.path);
                }
            }
        }
    }
}
