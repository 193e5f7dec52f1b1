//! `/monitors`: heartbeat monitors (cronstack, in the v1 style) and their pings. The pings
//! themselves arrive at `/ping/<uuid>` (`crate::http::ping`).

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Body, KResult, Page, id_param, list_page, not_null, page_request};
use crate::domain::iso8601;
use crate::domain::monitor::{Monitor, MonitorState, Ping, PingKind};
use crate::http::AppState;
use crate::http::extract::{JsonBody, PageParam};
use crate::service::{Caller, MonitorPatch};

/// The v1 routes (behind the dialect's authentication).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/monitors", get(list).post(create))
        .route("/monitors/byid/{id}", get(by_id).put(update).delete(delete))
        .route("/monitors/byid/{id}/pings", get(pings))
}

/// A monitor as the API shows it. `ping_url` is a path on the server's address; the uuid in
/// it is the only credential a ping needs.
#[derive(Serialize)]
pub struct MonitorView {
    id: i64,
    owner: i64,
    name: String,
    state: MonitorState,
    ping_url: String,
    schedule: Value,
    /// The schedule in words.
    description: String,
    grace_s: i64,
    keep_pings: i64,
    last_ping_at: Option<String>,
    last_ping_kind: Option<PingKind>,
    /// When the next ping is expected (late after it), while up or late.
    next_expected: Option<String>,
    /// When it goes down without a ping, while up or late.
    down_after: Option<String>,
    /// When the job it watches said it started, if no result followed yet.
    started_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<&Monitor> for MonitorView {
    fn from(m: &Monitor) -> Self {
        let description = m
            .schedule
            .trigger_for(crate::domain::job_hash_key(&m.uuid))
            .map(|t| t.describe())
            .unwrap_or_default();
        MonitorView {
            id: m.id,
            owner: m.owner,
            name: m.name.clone(),
            state: m.state,
            ping_url: format!("/ping/{}", m.uuid),
            schedule: m.schedule.to_json(),
            description,
            grace_s: m.grace_s,
            keep_pings: m.keep_pings,
            last_ping_at: m.last_ping_at.map(iso8601),
            last_ping_kind: m.last_ping_kind,
            next_expected: m.late_at.map(iso8601),
            down_after: m.down_at.map(iso8601),
            started_at: m.started_at.map(iso8601),
            created_at: iso8601(m.created_at),
            updated_at: iso8601(m.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct PingView {
    id: i64,
    monitor: i64,
    kind: PingKind,
    exit_code: Option<i64>,
    duration_ms: Option<i64>,
    method: String,
    user_agent: Option<String>,
    /// The request body's tail (at most 10 KiB), the ping's log.
    body: String,
    body_truncated: bool,
    created_at: String,
}

impl From<&Ping> for PingView {
    fn from(p: &Ping) -> Self {
        PingView {
            id: p.id,
            monitor: p.monitor_id,
            kind: p.kind,
            exit_code: p.exit_code,
            duration_ms: p.duration_ms,
            method: p.method.clone(),
            user_agent: p.user_agent.clone(),
            body: p.body.clone(),
            body_truncated: p.body_truncated,
            created_at: iso8601(p.created_at),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorInput {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    /// `{"cron": …, "timezone": …}` or `{"period": seconds}`.
    #[serde(default, deserialize_with = "not_null")]
    schedule: Option<Value>,
    #[serde(default, deserialize_with = "not_null")]
    grace_s: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    keep_pings: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    paused: Option<bool>,
}

impl From<MonitorInput> for MonitorPatch {
    fn from(i: MonitorInput) -> Self {
        MonitorPatch {
            name: i.name,
            schedule: i.schedule,
            grace_s: i.grace_s,
            keep_pings: i.keep_pings,
            paused: i.paused,
        }
    }
}

pub async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PageParam(page, _): Page,
) -> KResult<Response> {
    let found = s.service.list_monitors(&caller, page_request(page)).await?;
    let monitors: Vec<MonitorView> = found.items.iter().map(MonitorView::from).collect();
    Ok(list_page("monitors", page, found.total, monitors))
}

/// Answers the new monitor (with its ping URL).
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<MonitorInput>,
) -> KResult<Json<MonitorView>> {
    let monitor = s.service.create_monitor(&caller, input.into()).await?;
    Ok(Json(MonitorView::from(&monitor)))
}

pub async fn by_id(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<MonitorView>> {
    let monitor = s.service.monitor(&caller, id_param(&id, "monitor")?).await?;
    Ok(Json(MonitorView::from(&*monitor)))
}

/// A partial update; `{"paused": true}` pauses, `{"paused": false}` resumes (as `new`).
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(input, _): Body<MonitorInput>,
) -> KResult<Json<MonitorView>> {
    let monitor = s.service.update_monitor(&caller, id_param(&id, "monitor")?, input.into()).await?;
    Ok(Json(MonitorView::from(&monitor)))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<Value>> {
    let id = id_param(&id, "monitor")?;
    s.service.delete_monitor(&caller, id).await?;
    Ok(Json(json!({ "deleted": id })))
}

/// `{count, pagesize, page, pings}`, newest first.
pub async fn pings(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    PageParam(page, _): Page,
) -> KResult<Response> {
    let monitor = s.service.monitor(&caller, id_param(&id, "monitor")?).await?;
    let found = s.service.monitor_pings(&monitor, page_request(page)).await?;
    let pings: Vec<PingView> = found.items.iter().map(PingView::from).collect();
    Ok(list_page("pings", page, found.total, pings))
}
