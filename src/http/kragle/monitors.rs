//! `/monitors`: heartbeat monitors (cronstack, in the v1 style) and their pings. The pings
//! themselves arrive at `/ping/<uuid>` (`crate::http::ping`).

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, KResult, Page, id_param, list_page, not_null, page_request};
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

use crate::api::v1::{MonitorView, PingView};

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
