//! `/webhooks`: outbound event subscriptions (cronstack, in the v1 style) and their deliveries.

use axum::Json;
use axum::extract::{Extension, MatchedPath, Path, State};
use serde::Deserialize;

use super::{Body, KResult, Page, id_param, list_page, not_null, nullable, page_request};
use crate::api::doc::{Deleted, DeliveryList, Paging, WebhookList};
use crate::api::v1::{DeliveryView, NewWebhookView, WebhookView};
use crate::domain::{ChannelKind, EventKind};
use crate::http::AppState;
use crate::http::extract::{JsonBody, PageParam};
use crate::service::{Caller, WebhookPatch};
use axum::response::Response;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    url: Option<String>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    events: Option<Vec<EventKind>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    secret: Option<String>,
    /// `null`: every stack's (or job's) events.
    #[serde(default, deserialize_with = "nullable")]
    stack_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    job_id: Option<Option<i64>>,
    /// How deliveries are shaped: `webhook` (signed event JSON; the default), `slack`,
    /// `discord`, `teams` (their incoming webhooks' messages).
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    kind: Option<ChannelKind>,
    /// `null`: no name.
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    /// `null`: every monitor's events (monitor events skip subscriptions narrowed to a stack
    /// or job; one narrowed to a monitor gets no job events).
    #[serde(default, deserialize_with = "nullable")]
    monitor_id: Option<Option<i64>>,
    /// An email channel's recipients: one address or a list.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    to: Option<Recipients>,
}

/// `"a@x.org"` or `["a@x.org", "b@y.org"]`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged, expecting = "an email address or a list of them")]
enum Recipients {
    One(String),
    Many(Vec<String>),
}

impl From<WebhookInput> for WebhookPatch {
    fn from(i: WebhookInput) -> Self {
        WebhookPatch {
            url: i.url,
            events: i.events,
            secret: i.secret,
            stack_id: i.stack_id,
            job_id: i.job_id,
            kind: i.kind,
            name: i.name,
            monitor_id: i.monitor_id,
            to: i.to.map(|to| match to {
                Recipients::One(a) => vec![a],
                Recipients::Many(list) => list,
            }),
        }
    }
}

#[utoipa::path(get, path = "/webhooks", summary = "The caller's outbound webhook subscriptions, 10 per page", params(Paging), responses((status = 200, body = WebhookList)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PageParam(page, _): Page,
    path: MatchedPath,
) -> KResult<Response> {
    let found = s.service.list_webhooks(&caller, page_request(page)).await?;
    let webhooks: Vec<WebhookView> = found.items.iter().map(WebhookView::from).collect();
    // `/channels` lists the same subscriptions under their other name.
    let key = if path.as_str().ends_with("/channels") { "channels" } else { "webhooks" };
    Ok(list_page(key, page, found.total, webhooks))
}

/// Answers `{"id": …, "secret": …}`: the signing secret, shown this once.
#[utoipa::path(post, path = "/webhooks", summary = "Subscribe a URL to events (optionally of one stack or job); the signing secret is shown once", request_body = WebhookInput, responses((status = 200, body = NewWebhookView)))]
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<WebhookInput>,
) -> KResult<Json<NewWebhookView>> {
    let (webhook, secret) = s.service.create_webhook(&caller, input.into()).await?;
    Ok(Json(NewWebhookView { id: webhook.id, secret }))
}

#[utoipa::path(get, path = "/webhooks/byid/{id}", summary = "One subscription (without its secret)", responses((status = 200, body = WebhookView)))]
pub async fn by_id(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<WebhookView>> {
    let webhook = s.service.webhook(&caller, id_param(&id, "webhook")?).await?;
    Ok(Json(WebhookView::from(&*webhook)))
}

#[utoipa::path(put, path = "/webhooks/{id}", summary = "Change a subscription (partial)", request_body = WebhookInput, responses((status = 200, body = WebhookView)))]
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(input, _): Body<WebhookInput>,
) -> KResult<Json<WebhookView>> {
    let webhook = s.service.update_webhook(&caller, id_param(&id, "webhook")?, input.into()).await?;
    Ok(Json(WebhookView::from(&webhook)))
}

#[utoipa::path(delete, path = "/webhooks/{id}", summary = "Delete a subscription and its deliveries", responses((status = 200, body = Deleted)))]
pub async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<Deleted>> {
    let id = id_param(&id, "webhook")?;
    s.service.delete_webhook(&caller, id).await?;
    Ok(Json(Deleted { deleted: id }))
}

/// `{count, pagesize, page, deliveries}`, newest first.
#[utoipa::path(get, path = "/webhooks/byid/{id}/deliveries", summary = "A subscription's deliveries and their attempts, newest first, 10 per page", params(Paging), responses((status = 200, body = DeliveryList)))]
pub async fn deliveries(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    PageParam(page, _): Page,
) -> KResult<Response> {
    let webhook = s.service.webhook(&caller, id_param(&id, "webhook")?).await?;
    let found = s.service.webhook_deliveries(&webhook, page_request(page)).await?;
    let deliveries: Vec<DeliveryView> = found.items.iter().map(DeliveryView::from).collect();
    Ok(list_page("deliveries", page, found.total, deliveries))
}
