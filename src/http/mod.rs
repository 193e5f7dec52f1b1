//! HTTP: the Kragle dialect under `/api/v1`, the Cloud 66 dialect under `/api/3`, and the
//! operational endpoints. This file reads as the table of contents.

mod auth;
mod cloud66;
mod error;
mod extract;
mod guard;
mod memo;
// Its job and run views are also the objects of outbound webhook deliveries.
pub(crate) mod kragle;
pub(crate) mod openapi;
mod ops;
mod ping;
mod series;
mod serve;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum_extra::extract::cookie::Key;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

pub use crate::rate_limit::RateLimiter;
pub use ops::{describe_metrics, spawn_metrics_upkeep};
pub use serve::{ClientTimeout, serve};

use crate::service::Service;

/// What every handler shares; cloned for each request (an `Arc`, so a clone is one increment).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

pub struct SharedState {
    pub service: Service,
    /// Signs the session cookie; shared by all nodes through the database.
    pub cookie_key: Key,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Rendered bodies of hot reads (see `memo`).
    bodies: memo::Bodies,
}

impl std::ops::Deref for AppState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// Rendered bodies kept at most (pages of jobs, single jobs).
const MEMO_BODIES: usize = 4_096;

impl AppState {
    /// Bodies to serve again for one read, asked for before its rows are read: a handler
    /// serves one only once its read found the rows, so access is checked as for any read.
    pub fn memo(&self) -> memo::Memo<'_> {
        self.bodies.memo(self.service.change_stamp())
    }

    pub async fn new(
        service: Service,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> anyhow::Result<Self> {
        let key = service.cookie_key().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let bodies = memo::Bodies::new(MEMO_BODIES, service.cache_ttl());
        Ok(AppState(Arc::new(SharedState { cookie_key: Key::from(&key), service, metrics, bodies })))
    }
}

/// The whole HTTP service: the router inside the layers every request passes. They wrap the
/// router once, around it (a layer given to `Router::layer` wraps every route instead, and
/// each one clones its inner route per request: a few % of a read each).
pub fn app(
    state: AppState,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    tower::ServiceBuilder::new()
        // Cloud 66 clients' `.json` suffixes: rewritten before anything looks at the path.
        .map_request(cloud66::strip_json_suffix as fn(_) -> _)
        .layer_fn(ops::observe)
        // Debug logging's request span and events, only when debug logs are on: these layers
        // cost a cached read 12–15% of its CPU (bench `api`) for what the default level never
        // shows. The span names the path, never the query string: a hook token may travel
        // there; the headers that carry secrets are marked sensitive. Failures are logged by
        // `ops::observe` at every level.
        .option_layer(tracing::enabled!(tracing::Level::DEBUG).then(|| {
            tower::ServiceBuilder::new()
                .map_response(axum::response::IntoResponse::into_response)
                .layer(SetSensitiveRequestHeadersLayer::new([
                    axum::http::header::AUTHORIZATION,
                    axum::http::header::COOKIE,
                    axum::http::HeaderName::from_static("x-cronstack-hook-token"),
                ]))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &axum::extract::Request| {
                            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
                        })
                        .on_failure(()),
                )
        }))
        .service(router(state))
}

/// Every route, and the OpenAPI document of the API routes among them (see `openapi`).
pub fn router(state: AppState) -> Router {
    let (kragle, kragle_doc) = kragle::router(state.clone());
    let (cloud66, cloud66_doc) = cloud66::router(state.clone());
    let (ops, ops_doc) = ops::router().merge(openapi::router()).split_for_parts();
    let (ping, ping_doc) = ping::router(&state).split_for_parts();
    openapi::publish(&openapi::document(vec![kragle_doc, cloud66_doc, ops_doc, ping_doc]));
    let site = ops.merge(ui::router()).route_layer(axum::middleware::from_fn(ops::label_route)).merge(ping);
    Router::new().merge(kragle).merge(cloud66).merge(site).fallback(ops::not_found).with_state(state)
}

/// A dialect's routes with its "no such endpoint" answer for every other path under its
/// `prefix` (a nested router's fallback, for routes registered at their full paths).
fn dialect_fallbacks<H, T>(routes: Router<AppState>, prefix: &str, not_found: H) -> Router<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    let answer = axum::routing::any(not_found);
    routes
        .route(prefix, answer.clone())
        .route(&format!("{prefix}/"), answer.clone())
        .route(&format!("{prefix}/{{*rest}}"), answer)
}

/// A JSON body, rendered to bytes (kept as such by `AppState::memo`).
fn json_bytes<T: serde::Serialize>(value: &T) -> Result<bytes::Bytes, crate::service::ServiceError> {
    serde_json::to_vec(value)
        .map(bytes::Bytes::from)
        .map_err(|e| crate::service::ServiceError::Internal(e.into()))
}

/// A 200 answer with a JSON body already rendered.
fn json_response(body: bytes::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    const JSON: axum::http::HeaderValue = axum::http::HeaderValue::from_static("application/json");
    ([(axum::http::header::CONTENT_TYPE, JSON)], body).into_response()
}

/// Fuzzing (see `crate::fuzz`): `data` as the body of every JSON request type of both
/// dialects, through the extractors the handlers use.
pub(crate) fn fuzz_request_bodies(data: &[u8]) {
    kragle::fuzz_bodies(data);
    cloud66::fuzz_bodies(data);
}

/// A POST carrying `data`, for the fuzz entry points.
fn fuzz_request(data: &[u8], content_type: Option<&str>) -> axum::extract::Request {
    let mut req = axum::extract::Request::new(axum::body::Body::from(data.to_vec()));
    *req.method_mut() = axum::http::Method::POST;
    if let Some(ct) = content_type {
        req.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_str(ct).unwrap());
    }
    req
}

/// Runs an extractor to its end: a body already in memory never makes it wait.
fn fuzz_ready<F: std::future::Future>(f: F) -> F::Output {
    futures_util::FutureExt::now_or_never(f).expect("an in-memory body never waits")
}

/// A body an extractor accepted is empty or a JSON object.
fn fuzz_check_accepted(data: &[u8]) {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    assert!(matches!(first, None | Some(b'{')), "accepted a body that is not an object: {data:?}");
}

/// A refusal is a 4xx whose body is a JSON object.
fn fuzz_check_rejection(response: axum::response::Response) {
    let status = response.status();
    assert!(status.is_client_error(), "a bad body answered {status}");
    let body = fuzz_ready(axum::body::to_bytes(response.into_body(), usize::MAX)).expect("error body");
    let value: serde_json::Value = serde_json::from_slice(&body).expect("error bodies are JSON");
    assert!(value.is_object(), "error body {value}");
}
