//! `/channels`: notification channels, the same subscriptions as `/webhooks` by their other
//! name (every kind). Each route is its own documented operation that hands the request to
//! the `/webhooks` handler.

use axum::Json;
use axum::extract::{Extension, MatchedPath, Path, State};
use axum::response::Response;

use super::webhooks::{self, WebhookInput};
use super::{Body, KResult, Page};
use crate::api::doc::Deleted;
use crate::api::v1::{NewWebhookView, WebhookView};
use crate::http::AppState;
use crate::service::Caller;

#[utoipa::path(get, path = "/channels", summary = "The caller's notification channels (the same subscriptions as /webhooks, every kind), 10 per page", params(crate::api::doc::Paging), responses((status = 200, body = crate::api::doc::ChannelList)))]
pub async fn list(
    s: State<AppState>,
    caller: Extension<Caller>,
    page: Page,
    path: MatchedPath,
) -> KResult<Response> {
    webhooks::list(s, caller, page, path).await
}

#[utoipa::path(post, path = "/channels", summary = "Create a notification channel: kind slack, discord or teams (their incoming-webhook URL and message shape), email (recipients in `to`; needs the server's SMTP settings) or webhook (signed event JSON)", request_body = WebhookInput, responses((status = 200, body = NewWebhookView)))]
pub async fn create(
    s: State<AppState>,
    caller: Extension<Caller>,
    body: Body<WebhookInput>,
) -> KResult<Json<NewWebhookView>> {
    webhooks::create(s, caller, body).await
}

#[utoipa::path(get, path = "/channels/byid/{id}", summary = "One channel", responses((status = 200, body = WebhookView)))]
pub async fn by_id(
    s: State<AppState>,
    caller: Extension<Caller>,
    id: Path<String>,
) -> KResult<Json<WebhookView>> {
    webhooks::by_id(s, caller, id).await
}

#[utoipa::path(get, path = "/channels/byid/{id}/deliveries", summary = "A channel's deliveries and their attempts, newest first, 10 per page", params(crate::api::doc::Paging), responses((status = 200, body = crate::api::doc::DeliveryList)))]
pub async fn deliveries(
    s: State<AppState>,
    caller: Extension<Caller>,
    id: Path<String>,
    page: Page,
) -> KResult<Response> {
    webhooks::deliveries(s, caller, id, page).await
}

#[utoipa::path(put, path = "/channels/{id}", summary = "Change a channel (partial)", request_body = WebhookInput, responses((status = 200, body = WebhookView)))]
pub async fn update(
    s: State<AppState>,
    caller: Extension<Caller>,
    id: Path<String>,
    body: Body<WebhookInput>,
) -> KResult<Json<WebhookView>> {
    webhooks::update(s, caller, id, body).await
}

#[utoipa::path(delete, path = "/channels/{id}", summary = "Delete a channel and its deliveries", responses((status = 200, body = Deleted)))]
pub async fn delete(
    s: State<AppState>,
    caller: Extension<Caller>,
    id: Path<String>,
) -> KResult<Json<Deleted>> {
    webhooks::delete(s, caller, id).await
}
