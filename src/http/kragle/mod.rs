//! The Kragle-style v1 dialect: `{code, msg}` errors with Kragle's numbers (and accurate HTTP
//! statuses), `{count, pagesize, page, <items>}` lists of 10.

mod hooks;
pub(crate) mod jobs;
pub(crate) mod runs;
mod schedules;
mod session;
mod stacks;
mod webhooks;

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::AppState;
use super::auth::require_caller;
use super::error::{ApiError, Dialect, Failure, RequestError};
use crate::service::{Entity, PageRequest, ServiceError};

pub struct Kragle;

pub type KResult<T> = Result<T, Failure<Kragle>>;
type Body<T> = super::extract::JsonBody<T, Kragle>;
type Page = super::extract::PageParam<Kragle>;

pub const PAGE_SIZE: i64 = 10;

/// A Kragle list page, `{"count", <items>: [...], "page", "pagesize"}`.
fn list_page<V: serde::Serialize>(items_key: &'static str, page: i64, count: i64, items: Vec<V>) -> Response {
    Json(ListPage { items_key, page, count, items }).into_response()
}

/// The body of a list page, serialized straight from the typed items (not through a
/// `serde_json::Value` tree).
struct ListPage<V> {
    items_key: &'static str,
    page: i64,
    count: i64,
    items: Vec<V>,
}

impl<V: serde::Serialize> serde::Serialize for ListPage<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("count", &self.count)?;
        map.serialize_entry(self.items_key, &self.items)?;
        map.serialize_entry("page", &self.page)?;
        map.serialize_entry("pagesize", &PAGE_SIZE)?;
        map.end()
    }
}

fn page_request(page: i64) -> PageRequest {
    PageRequest { page, per_page: PAGE_SIZE }
}

/// Kragle's fault codes; 28–30 are ours for what Kragle never had (documented in the README).
fn kragle_code(e: &ApiError) -> u32 {
    use RequestError as R;
    use ServiceError as S;
    match e {
        ApiError::Request(r) => match r {
            R::BadParam(_) => 1,
            R::BadJson(_) => 2,
            R::BadPayload(_)
            | R::TooLarge(_)
            | R::BodyTimeout(_)
            | R::UnsupportedMediaType(_)
            | R::MethodNotAllowed(_) => 4,
            R::RateLimited { .. } => 28,
            R::NoSuchEndpoint(_) => 6,
        },
        ApiError::Service(s) => match s {
            S::BadLogin | S::Unauthenticated => 3,
            S::Invalid { .. } | S::Conflict(_) => 4,
            S::NotFound(_) => 6,
            S::NameTaken(Entity::Stack) => 10,
            S::NameTaken(_) => 12,
            S::BadReference(Entity::Stack) => 24,
            S::BadReference(_) => 25,
            S::InvalidSchedule(_) => 26,
            S::ScheduleInUse => 27,
            S::MissingScope(_) => 29,
            S::Unavailable(_) | S::StorageFull | S::Internal(_) => 30,
        },
    }
}

impl Dialect for Kragle {
    fn render(err: &ApiError) -> Response {
        let body = json!({ "code": kragle_code(err), "msg": err.message() });
        (err.status(), Json(body)).into_response()
    }
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent (partial updates).
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn id_param(raw: &str, what: &str) -> Result<i64, Failure<Kragle>> {
    super::extract::parse_id(raw, what).map_err(Failure::new)
}

pub fn router(state: AppState) -> Router<AppState> {
    let authed = Router::new()
        .route("/jobs", get(jobs::list).post(jobs::create))
        .route("/jobs/byid/{id}", get(jobs::by_id))
        .route("/jobs/byname/{name}", get(jobs::by_name))
        .route("/jobs/{id}", put(jobs::update).delete(jobs::delete))
        .route("/jobs/byid/{id}/runs", get(runs::list))
        .route("/jobs/byid/{id}/run", post(runs::run_now))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/log", get(runs::log))
        .route("/schedules", get(schedules::list).post(schedules::create))
        .route("/schedules/byid/{id}", get(schedules::by_id))
        .route("/schedules/{id}", put(schedules::update).delete(schedules::delete))
        .route("/blockstacks", get(stacks::list).post(stacks::create))
        .route("/blockstacks/byid/{id}", get(stacks::by_id))
        .route("/blockstacks/byname/{name}", get(stacks::by_name))
        .route("/blockstacks/{id}", put(stacks::update))
        .route("/blockstacks/exec/{id}", get(hooks::exec).post(hooks::exec))
        .route("/blockstacks/hook/token_refresh/{id}", get(hooks::token_refresh))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/byid/{id}", get(webhooks::by_id))
        .route("/webhooks/byid/{id}/deliveries", get(webhooks::deliveries))
        .route("/webhooks/{id}", put(webhooks::update).delete(webhooks::delete))
        .route("/tokens", get(session::list_tokens).post(session::create_token))
        .route("/tokens/{id}", axum::routing::delete(session::revoke_token))
        .route("/whoami", get(session::whoami))
        .route("/nodes", get(session::nodes))
        .route_layer(axum::middleware::from_fn_with_state(state, require_caller::<Kragle>));
    Router::new()
        .route("/authenticate", post(session::authenticate))
        .route("/logout", post(session::logout))
        // Access follows the stack's `webhook` setting: checked by the handler.
        .route("/blockstacks/hook/{id}", get(hooks::hook).post(hooks::hook))
        .route_layer(axum::middleware::from_fn(super::guard::dialect_guard::<Kragle>))
        .merge(authed)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found(uri: axum::http::Uri) -> Failure<Kragle> {
    Failure::new(RequestError::NoSuchEndpoint(uri.path().chars().take(200).collect()))
}

async fn method_not_allowed() -> Failure<Kragle> {
    Failure::new(RequestError::MethodNotAllowed("this endpoint does not take that method".into()))
}

/// Fuzzing (see `crate::fuzz`): `data` as the body of each v1 request type, with and without
/// a JSON content type.
pub(super) fn fuzz_bodies(data: &[u8]) {
    fn one<T: serde::de::DeserializeOwned>(data: &[u8]) {
        use axum::extract::FromRequest;
        for content_type in [Some("application/json"), None, Some("text/plain")] {
            let req = super::fuzz_request(data, content_type);
            match super::fuzz_ready(Body::<T>::from_request(req, &())) {
                Ok(_) => super::fuzz_check_accepted(data),
                Err(failure) => super::fuzz_check_rejection(failure.into_response()),
            }
        }
    }
    one::<jobs::JobInput>(data);
    one::<schedules::ScheduleInput>(data);
    one::<stacks::StackInput>(data);
    one::<runs::RunNowInput>(data);
    one::<session::Credentials>(data);
    one::<session::TokenInput>(data);
    one::<webhooks::WebhookInput>(data);
}
