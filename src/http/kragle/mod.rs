//! The Kragle-style v1 dialect: `{code, msg}` errors with Kragle's numbers (and accurate HTTP
//! statuses), `{count, pagesize, page, <items>}` lists of 10.

/// `routes!`, served and documented under [`PREFIX`] (see `openapi::at`).
macro_rules! v1_routes {
    ($($handler:tt)*) => {
        crate::http::openapi::at(crate::http::kragle::PREFIX, utoipa_axum::routes!($($handler)*))
    };
}

mod channels;
mod hooks;
pub(crate) mod jobs;
// Its views are also the objects of monitor event deliveries.
pub(crate) mod monitors;
mod overview;
pub(crate) mod runs;
mod schedules;
mod session;
mod stacks;
mod webhooks;

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;
use super::error::{ApiError, Dialect, Failure, RequestError};
use super::extract::{not_null, nullable};
use super::guard::GateLayer;
use crate::service::{Entity, PageRequest, ServiceError};

pub struct Kragle;

/// Where the dialect is served.
pub const PREFIX: &str = "/api/v1";

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
            S::Throttled { .. } => 28,
            S::HookMethod(_) => 4,
            S::Unavailable(_) | S::StorageFull | S::Internal(_) => 30,
        },
    }
}

use crate::api::v1::KragleError as ErrorBody;

impl Dialect for Kragle {
    fn render(err: &ApiError) -> Response {
        let body = ErrorBody { code: kragle_code(err), msg: err.message() };
        (err.status(), Json(body)).into_response()
    }
}

fn id_param(raw: &str, what: &str) -> Result<i64, Failure<Kragle>> {
    super::extract::parse_id(raw, what).map_err(Failure::new)
}

/// The v1 routes and their part of the OpenAPI document: each handler is registered with
/// `routes!` from its `#[utoipa::path]`, so every route served here is documented.
pub fn router(state: AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use crate::http::openapi::{Access, described};
    let authed = OpenApiRouter::new()
        .routes(v1_routes!(jobs::list, jobs::create))
        .routes(v1_routes!(jobs::by_id))
        .routes(v1_routes!(jobs::by_name))
        .routes(v1_routes!(jobs::update, jobs::delete))
        .routes(v1_routes!(runs::list))
        .routes(v1_routes!(runs::run_now))
        .routes(v1_routes!(runs::show))
        .routes(v1_routes!(runs::kill))
        .routes(v1_routes!(runs::backfill))
        .routes(v1_routes!(runs::log))
        .routes(v1_routes!(schedules::list, schedules::create))
        .routes(v1_routes!(schedules::by_id))
        .routes(v1_routes!(schedules::update, schedules::delete))
        .routes(v1_routes!(stacks::by_name))
        .routes(v1_routes!(stacks::update, stacks::delete))
        .routes(v1_routes!(hooks::exec))
        .routes(v1_routes!(hooks::token_refresh))
        .routes(v1_routes!(webhooks::list, webhooks::create))
        .routes(v1_routes!(webhooks::by_id))
        .routes(v1_routes!(webhooks::deliveries))
        .routes(v1_routes!(webhooks::update, webhooks::delete))
        // Notification channels: the same subscriptions, by their other name.
        .routes(v1_routes!(channels::list, channels::create))
        .routes(v1_routes!(channels::by_id))
        .routes(v1_routes!(channels::deliveries))
        .routes(v1_routes!(channels::update, channels::delete))
        .routes(v1_routes!(session::list_tokens, session::create_token))
        .routes(v1_routes!(session::revoke_token))
        .routes(v1_routes!(overview::overview))
        .routes(v1_routes!(session::whoami))
        .routes(v1_routes!(session::change_password))
        .routes(v1_routes!(session::nodes))
        .merge(monitors::routes())
        .route_layer(GateLayer::<Kragle>::new(Access::Required, &state));
    // Public stacks are listed and read without credentials too.
    let open_reads = OpenApiRouter::new()
        .routes(v1_routes!(stacks::list, stacks::create))
        .routes(v1_routes!(stacks::by_id))
        .route_layer(GateLayer::<Kragle>::new(Access::Optional, &state));
    let open = OpenApiRouter::new()
        .routes(v1_routes!(session::authenticate))
        .routes(v1_routes!(session::logout))
        .routes(v1_routes!(stacks::types))
        // Access follows the stack's `webhook` setting: checked by the handler.
        .routes(v1_routes!(hooks::hook))
        .route_layer(GateLayer::<Kragle>::new(Access::Open, &state));
    let (router, doc) = described(open, Access::Open)
        .merge(described(authed, Access::Required).merge(described(open_reads, Access::Optional)))
        .split_for_parts();
    (super::dialect_fallbacks(router.method_not_allowed_fallback(method_not_allowed), PREFIX, not_found), doc)
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
    one::<runs::BackfillInput>(data);
    one::<session::Credentials>(data);
    one::<session::TokenInput>(data);
    one::<session::PasswordInput>(data);
    one::<webhooks::WebhookInput>(data);
    one::<monitors::MonitorInput>(data);
}

#[cfg(test)]
mod tests {
    use super::{jobs, monitors, runs, schedules, session, stacks, webhooks};
    use crate::http::error::RequestError;
    use crate::http::extract::parse_json;
    use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

    /// The field names of a body type, as serde's derive lists them.
    fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
        struct Names(&'static [&'static str]);
        impl<'de> Deserializer<'de> for &mut Names {
            type Error = de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0 = fields;
                Err(de::Error::custom("names read"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
                option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
                ignored_any
            }
        }
        let mut names = Names(&[]);
        let _ = T::deserialize(&mut names);
        names.0
    }

    /// Every field of `T` refuses `null`, naming itself, except `nullable` ones.
    fn null_only_where_it_means_none<T: DeserializeOwned>(nullable: &[&str]) {
        let fields = fields_of::<T>();
        assert!(!fields.is_empty() && nullable.iter().all(|f| fields.contains(f)), "{fields:?}");
        for field in fields {
            let body = format!("{{\"{field}\": null}}");
            let refused_for_null = match parse_json::<T>(body.as_bytes()) {
                Err(RequestError::BadPayload(msg)) => {
                    msg.starts_with(&format!("{field}: ")) && msg.contains("null")
                }
                _ => false,
            };
            assert_eq!(refused_for_null, !nullable.contains(field), "{body}");
        }
    }

    /// A new body field is held to the rule until it is declared nullable here (its
    /// `deserialize_with = "nullable"`) or refuses null (`not_null`).
    #[test]
    fn null_is_accepted_only_where_it_means_none() {
        null_only_where_it_means_none::<jobs::JobInput>(&[
            "name",
            "command",
            "timeout_s",
            "not_before",
            "not_after",
            "max_runs",
            "keep_succeeded",
            "keep_failed",
            "grace_s",
            "max_duration_s",
        ]);
        // A null config is accepted here and refused as an invalid config (code 26).
        null_only_where_it_means_none::<schedules::ScheduleInput>(&["name", "config"]);
        null_only_where_it_means_none::<stacks::StackInput>(&[
            "secret_env",
            "workdir",
            "webhook",
            "environment",
        ]);
        null_only_where_it_means_none::<webhooks::WebhookInput>(&[
            "stack_id",
            "job_id",
            "name",
            "monitor_id",
        ]);
        null_only_where_it_means_none::<session::Credentials>(&[]);
        null_only_where_it_means_none::<session::TokenInput>(&["name"]);
        null_only_where_it_means_none::<runs::RunNowInput>(&["args"]);
        null_only_where_it_means_none::<monitors::MonitorInput>(&[]);
    }
}
