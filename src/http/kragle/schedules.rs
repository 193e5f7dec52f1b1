//! `/schedules`: `{id, name, once, config}` with period, timestamp or cron configs.

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde::Deserialize;
use serde_json::Value;

use super::{Body, KResult, Page, id_param, list_page, not_null, nullable, page_request};
use crate::api::v1::ScheduleView;

use crate::api::doc::{Created, Deleted, Paging, ScheduleList};
use crate::http::AppState;
use crate::http::extract::{JsonBody, PageParam};
use crate::service::Caller;
use axum::response::Response;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// An explicit `null` is kept (as `Some(Value::Null)`), to be refused as an invalid
    /// config like any other (code 26) rather than read as absent.
    #[serde(default, deserialize_with = "nullable")]
    config: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    once: Option<bool>,
}

#[utoipa::path(get, path = "/schedules", summary = "The caller's schedules, 10 per page", params(Paging), responses((status = 200, body = ScheduleList)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PageParam(page, _): Page,
) -> KResult<Response> {
    let found = s.service.list_schedules(&caller, page_request(page)).await?;
    let items: Vec<ScheduleView> = found.items.iter().map(ScheduleView::from).collect();
    Ok(list_page("schedules", page, found.total, items))
}

#[utoipa::path(get, path = "/schedules/byid/{id}", summary = "One schedule, with its rule in words and its next five fire times", responses((status = 200, body = ScheduleView)))]
pub async fn by_id(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<ScheduleView>> {
    let schedule = s.service.schedule(&caller, id_param(&id, "schedule")?).await?;
    Ok(Json(ScheduleView::from(&*schedule)))
}

#[utoipa::path(post, path = "/schedules", summary = "Create a schedule", request_body = ScheduleInput, responses((status = 200, body = Created)))]
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<ScheduleInput>,
) -> KResult<Json<Created>> {
    let config = input.config.map(Option::unwrap_or_default);
    let id = s.service.create_schedule(&caller, input.name.flatten(), input.once, config.as_ref()).await?;
    Ok(Json(Created { id }))
}

#[utoipa::path(put, path = "/schedules/{id}", summary = "Change a schedule", request_body = ScheduleInput, responses((status = 200, body = ScheduleView)))]
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(input, _): Body<ScheduleInput>,
) -> KResult<Json<ScheduleView>> {
    let id = id_param(&id, "schedule")?;
    let config = input.config.map(Option::unwrap_or_default);
    let schedule = s.service.update_schedule(&caller, id, input.name, input.once, config.as_ref()).await?;
    Ok(Json(ScheduleView::from(&schedule)))
}

#[utoipa::path(delete, path = "/schedules/{id}", summary = "Delete a schedule no job uses", responses((status = 200, body = Deleted)))]
pub async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<Deleted>> {
    let id = id_param(&id, "schedule")?;
    s.service.delete_schedule(&caller, id).await?;
    Ok(Json(Deleted { deleted: id }))
}
