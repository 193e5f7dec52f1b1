//! `GET /openapi.json` and the reference page at `/docs`.
//!
//! The document is derived from the code. Every API route is registered through
//! `utoipa_axum`'s `OpenApiRouter` with `routes!(handler)`, which takes the route's path and
//! methods from the handler's `#[utoipa::path]`: a route cannot be served without being in the
//! document. The bodies' schemas come from the wire types' `#[derive(ToSchema)]`
//! (`crate::api::v1`, `crate::api::v3`, the handlers' input types) and the shapes of
//! `crate::api::doc`. What a group of routes shares is added where the group is built: the
//! credentials it needs ([`described`], beside the middleware that asks for them); its tag and
//! its dialect's error body by where the group is nested ([`document`]).
//!
//! Deliberately outside the document (they are not API): the dashboard's pages and assets
//! (`/`, `/ui`, `/ui/`, `/ui/{*file}`: `crate::http::ui`) and this reference page, `/docs`.

use std::sync::OnceLock;

use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{OpenApi, PartialSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const V1: &str = "v1 (Kragle)";
const V3: &str = "v3 (Cloud 66)";
const PINGS: &str = "heartbeat pings";
const OPERATIONS: &str = "operations";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cronstack",
        description = "A self-hosted job scheduler. Two REST dialects over one engine: the Kragle-style v1 API under /api/v1 and the Cloud 66-style v3 API under /api/3 (a trailing .json is accepted on every v3 path). Authenticate with `Authorization: Bearer cst_…` or the auth_tkt cookie from POST /api/v1/authenticate. Every authenticated response carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset.",
        license(name = "MIT"),
    ),
    tags(
        (name = "v1 (Kragle)", description = "Kragle-style API: {code, msg} errors, lists of 10"),
        (name = "v3 (Cloud 66)", description = "Cloud 66-style API: {response: …} envelopes, {error, error_description} errors, lists of 30"),
        (name = "heartbeat pings", description = "Pings of heartbeat monitors from cron jobs that run elsewhere: the monitor's uuid is the credential; rate limited per monitor (--ping-rate-limit); v1 errors"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    ),
    components(schemas(crate::api::v1::KragleError, crate::api::v3::ErrorBody)),
    modifiers(&SecuritySchemes),
)]
struct Base;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("an API token, cst_ + 64 hex characters".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "auth_tkt",
                "the session cookie set by POST /api/v1/authenticate",
            ))),
        );
    }
}

/// `routes` (what `routes!` gives) served and documented at `prefix` + their path. The
/// dialects register their routes at the full path this way instead of being nested:
/// `Router::nest` rebuilds every request's URI to strip the prefix, about 8% of the
/// instructions of a cached read (callgrind, bench `api`'s v1 job by id).
pub fn at<S>(
    prefix: &str,
    (schemas, mut paths, method_router): utoipa_axum::router::UtoipaMethodRouter<S>,
) -> utoipa_axum::router::UtoipaMethodRouter<S> {
    paths.paths = std::mem::take(&mut paths.paths)
        .into_iter()
        .map(|(path, item)| (format!("{prefix}{path}"), item))
        .collect();
    (schemas, paths, method_router)
}

/// Who may call the operations of a group of routes.
#[derive(Clone, Copy)]
pub enum Access {
    /// Anyone (the handler checks what it needs, if anything).
    Open,
    /// A token or the session cookie (401 without).
    Required,
    /// Credentials optional: without them, less is shown.
    Optional,
}

/// `router`'s operations, marked with the credentials `access` says they need. Called where
/// the group gets the middleware that asks for them.
pub fn described<S>(mut router: OpenApiRouter<S>, access: Access) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let token = || SecurityRequirement::new("bearer", Vec::<String>::new());
    let cookie = || SecurityRequirement::new("cookie", Vec::<String>::new());
    let security = match access {
        Access::Open => vec![],
        Access::Required => vec![token(), cookie()],
        // `{}`: no credentials at all is one of the ways in.
        Access::Optional => vec![SecurityRequirement::default(), token(), cookie()],
    };
    for item in router.get_openapi_mut().paths.paths.values_mut() {
        for (_, op) in operations(item) {
            op.security = Some(security.clone());
        }
    }
    router
}

/// A path's operations, with their methods.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(method, op)| Some((method, op.as_mut()?)))
}

/// The document of the whole service from its parts (each with the full paths it is served
/// at). Each operation gets its tag, its path parameters and its dialect's error body from
/// where it is served, and an id made of its method and path.
pub fn document(parts: Vec<Document>) -> Document {
    let mut doc = Base::openapi();
    for part in parts {
        doc.merge(part);
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let (tag, error) = if path.starts_with("/api/v1") {
            (V1, Some("KragleError"))
        } else if path.starts_with("/api/3") {
            (V3, Some("Cloud66Error"))
        } else if path.starts_with("/ping/") {
            (PINGS, Some("KragleError"))
        } else {
            (OPERATIONS, None)
        };
        for (method, op) in operations(item) {
            // Unique: handlers of different paths share names (`list`, `by_id`).
            op.operation_id = Some(format!("{method}{}", path.replace(['/', '{', '}', '.', '-'], "_")));
            op.tags = Some(vec![tag.to_string()]);
            let mut params: Vec<RefOr<Parameter>> = path_params(path).map(RefOr::T).collect();
            params.extend(op.parameters.take().unwrap_or_default());
            op.parameters = (!params.is_empty()).then_some(params);
            for response in op.responses.responses.values_mut() {
                if let RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    response.description = "OK".into();
                }
            }
            if let Some(error) = error {
                let body = ContentBuilder::new().schema(Some(Ref::from_schema_name(error))).build();
                let response = ResponseBuilder::new()
                    .description("an error (400, 401, 403, 404, 409, 413, 415, 429, 503, 507…)")
                    .content("application/json", body)
                    .build();
                op.responses.responses.insert("default".into(), RefOr::T(response));
            }
        }
    }
    doc
}

/// The `{name}` parameters of `path`.
fn path_params(path: &str) -> impl Iterator<Item = Parameter> + '_ {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).map(
        move |name| {
            let description = match name {
                "id" => "numeric id".to_string(),
                "name" => "the object's name".into(),
                "stack" => "the stack's uid".into(),
                "job" => "the job's uid".into(),
                "uuid" => "the monitor's ping uuid (its only credential)".into(),
                "kind" => "start, fail, or an exit code 0-255 (0 is a success)".into(),
                other => other.to_string(),
            };
            let description = if path.starts_with("/api/3") {
                format!("{description} (a trailing .json is accepted)")
            } else {
                description
            };
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(String::schema()))
                .build()
        },
    )
}

/// The whole document, rendered once: it is the same for every router this binary builds.
static RENDERED: OnceLock<String> = OnceLock::new();

/// Keeps `doc` as the document `/openapi.json` answers.
pub fn publish(doc: &Document) {
    RENDERED.get_or_init(|| doc.to_pretty_json().expect("the document serializes"));
}

/// `/openapi.json` (documented) and `/docs` (a page, outside the document).
pub fn router() -> OpenApiRouter<super::AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json)).route("/docs", axum::routing::get(docs_page))
}

#[utoipa::path(get, path = "/openapi.json", summary = "This document", responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json() -> Response {
    let text = RENDERED.get().map_or("{}", String::as_str);
    ([(axum::http::header::CONTENT_TYPE, "application/json")], text.to_owned()).into_response()
}

pub async fn docs_page() -> Response {
    ([(axum::http::header::CONTENT_SECURITY_POLICY, super::ui::CSP)], Html(include_str!("ui/docs.html")))
        .into_response()
}
