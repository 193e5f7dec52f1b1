//! `/monitors`: heartbeat monitors (cronstack, in the v1 style) and their pings. The pings
//! themselves arrive at `/ping/<uuid>` (`crate::http::ping`).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;

use super::{Body, KResult, Page, id_param, list_page, not_null, page_request};
use crate::http::AppState;
use crate::http::extract::{JsonBody, PageParam};
use crate::service::{Caller, MonitorPatch};

/// The v1 routes (behind the dialect's authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(v1_routes!(list, create))
        .routes(v1_routes!(by_id, update, delete))
        .routes(v1_routes!(pings))
}

use crate::api::doc::{Deleted, MonitorList, Paging, PingList};
use crate::api::v1::{MonitorView, PingView};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorInput {
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    /// `{"cron": …, "timezone": …}` or `{"period": seconds}`.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    schedule: Option<Value>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    grace_s: Option<i64>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    keep_pings: Option<i64>,
    #[schema(nullable = false)]
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

#[utoipa::path(get, path = "/monitors", summary = "The caller's heartbeat monitors, 10 per page", params(Paging), responses((status = 200, body = MonitorList)))]
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
#[utoipa::path(post, path = "/monitors", summary = "Create a heartbeat monitor (a cron schedule with its zone, or a period, and a grace); answers it with its secret ping_url", request_body = MonitorInput, responses((status = 200, body = MonitorView)))]
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<MonitorInput>,
) -> KResult<Json<MonitorView>> {
    let monitor = s.service.create_monitor(&caller, input.into()).await?;
    Ok(Json(MonitorView::from(&monitor)))
}

#[utoipa::path(get, path = "/monitors/byid/{id}", summary = "One monitor: its state (new, up, late, down, paused), ping URL, last ping, next expected ping", responses((status = 200, body = MonitorView)))]
pub async fn by_id(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<MonitorView>> {
    let monitor = s.service.monitor(&caller, id_param(&id, "monitor")?).await?;
    Ok(Json(MonitorView::from(&*monitor)))
}

/// A partial update; `{"paused": true}` pauses, `{"paused": false}` resumes (as `new`).
#[utoipa::path(put, path = "/monitors/byid/{id}", summary = "Change a monitor (partial); {paused: true} pauses it, {paused: false} resumes it as new (waiting for its next ping); schedule and grace apply from the next ping", request_body = MonitorInput, responses((status = 200, body = MonitorView)))]
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(input, _): Body<MonitorInput>,
) -> KResult<Json<MonitorView>> {
    let monitor = s.service.update_monitor(&caller, id_param(&id, "monitor")?, input.into()).await?;
    Ok(Json(MonitorView::from(&monitor)))
}

#[utoipa::path(delete, path = "/monitors/byid/{id}", summary = "Delete a monitor and its pings", responses((status = 200, body = Deleted)))]
pub async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<Deleted>> {
    let id = id_param(&id, "monitor")?;
    s.service.delete_monitor(&caller, id).await?;
    Ok(Json(Deleted { deleted: id }))
}

/// `{count, pagesize, page, pings}`, newest first.
#[utoipa::path(get, path = "/monitors/byid/{id}/pings", summary = "A monitor's pings (the newest keep_pings), newest first, 10 per page", params(Paging), responses((status = 200, body = PingList)))]
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
