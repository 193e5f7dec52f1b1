//! `/ping/<uuid>`: heartbeat pings from cron jobs that run elsewhere (healthchecks.io's
//! URLs). The uuid is the only credential. `GET` or `POST`; the body (its last 10 KiB) is
//! kept as the ping's log. Answers `OK` as text; errors in the v1 shape.

use axum::extract::{Path, Request, State};
use axum::http::header::USER_AGENT;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{add_quota_headers, throttled};
use super::error::{Failure, RequestError};
use super::extract::read_body;
use super::guard::GateLayer;
use super::kragle::Kragle;
use super::openapi::Access;
use crate::domain::monitor::PingKind;
use crate::service::{Entity, PingRequest, ServiceError};

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(success))
        .routes(routes!(with_kind))
        .route_layer(GateLayer::<Kragle>::new(Access::Open, state))
}

/// `/ping/<uuid>`: the job succeeded.
#[utoipa::path(method(get, post), path = "/ping/{uuid}", summary = "Ping a monitor: the job succeeded (the uuid is the only credential); a POST's body (its last 10 KiB) is kept as the ping's log; answers OK", request_body(content = Option<String>, content_type = "text/plain"), responses((status = 200, body = String, content_type = "text/plain")))]
async fn success(
    s: State<AppState>,
    Path(uuid): Path<String>,
    req: Request,
) -> Result<Response, Failure<Kragle>> {
    ping(s, uuid, (PingKind::Success, None), req).await
}

/// `/ping/<uuid>/start`, `/fail`, or `/<exit code>` (0 is a success).
#[utoipa::path(method(get, post), path = "/ping/{uuid}/{kind}", summary = "Ping a monitor: start (the job started; the next result measures its duration), fail, or an exit code (0 is a success); a POST's body is kept as the ping's log", request_body(content = Option<String>, content_type = "text/plain"), responses((status = 200, body = String, content_type = "text/plain")))]
async fn with_kind(
    s: State<AppState>,
    Path((uuid, kind)): Path<(String, String)>,
    req: Request,
) -> Result<Response, Failure<Kragle>> {
    let kind = match kind.as_str() {
        "start" => (PingKind::Start, None),
        "fail" => (PingKind::Fail, None),
        code => match code.parse::<u8>() {
            Ok(0) => (PingKind::Success, Some(0)),
            Ok(c) => (PingKind::Fail, Some(i64::from(c))),
            Err(_) => {
                return Err(Failure::new(RequestError::BadParam(format!(
                    "a ping is /ping/<uuid>, /start, /fail or /<exit code 0-255>, not {:?}",
                    code.chars().take(40).collect::<String>()
                ))));
            }
        },
    };
    ping(s, uuid, kind, req).await
}

async fn ping(
    State(s): State<AppState>,
    uuid: String,
    (kind, exit_code): (PingKind, Option<i64>),
    req: Request,
) -> Result<Response, Failure<Kragle>> {
    // Not a uuid at all: no monitor has it, and it costs no rate-limit window.
    if !is_uuid(&uuid) {
        return Err(Failure::new(ServiceError::NotFound(Entity::Monitor)));
    }
    // Per monitor, whoever pings (an unknown uuid spends only its own window).
    let quota = match s.service.limits().pings.hit(&format!("ping:{uuid}")).await? {
        Ok(q) => q,
        Err(q) => return Ok(throttled::<Kragle>(q)),
    };
    let method = req.method().as_str().to_string();
    let user_agent =
        req.headers().get(USER_AGENT).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = read_body(req, &()).await?;
    let request = PingRequest { kind, exit_code, method, user_agent, body: body.to_vec() };
    s.service.ping(&uuid, request).await?;
    let mut response = "OK\n".into_response();
    add_quota_headers(response.headers_mut(), quota);
    Ok(response)
}

/// `8-4-4-4-12` lower-case hex digits, as ping URLs are made.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}
