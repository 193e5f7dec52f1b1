//! Authentication (bearer token or the Kragle `auth_tkt` session cookie) and the per-token
//! rate limit, run by each dialect's `guard::Gate` so that failures speak the dialect.

use std::convert::Infallible;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{Dialect, Failure, RequestError};
use crate::domain::{EpochMs, UserId, now_ms};
use crate::rate_limit::Quota;
use crate::service::{Caller, ServiceError, Session};

pub const SESSION_COOKIE: &str = "auth_tkt";
const SESSION_TTL_MS: EpochMs = 7 * 24 * 3600 * 1000;

#[derive(Serialize, Deserialize)]
struct SessionTicket {
    user_id: UserId,
    expires: EpochMs,
    /// The user's session epoch when issued (cookies from before it existed read 0, the
    /// epoch of a user whose password never changed).
    #[serde(default)]
    epoch: i64,
}

/// A signed, HttpOnly, SameSite=Strict session cookie for `session`.
pub fn session_cookie(session: Session) -> Cookie<'static> {
    let ticket =
        SessionTicket { user_id: session.user_id, expires: now_ms() + SESSION_TTL_MS, epoch: session.epoch };
    Cookie::build((SESSION_COOKIE, serde_json::to_string(&ticket).expect("ticket serializes")))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::milliseconds(SESSION_TTL_MS))
        .build()
}

pub fn clear_session_cookie() -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, "")).path("/").max_age(cookie::time::Duration::ZERO).build()
}

/// The session a signed, unexpired cookie claims (whether it is still current is the
/// service's to say).
fn session_user(headers: &HeaderMap, key: &Key) -> Option<Session> {
    let jar = SignedCookieJar::from_headers(headers, key.clone());
    let ticket: SessionTicket = serde_json::from_str(jar.get(SESSION_COOKIE)?.value()).ok()?;
    (ticket.expires > now_ms()).then_some(Session { user_id: ticket.user_id, epoch: ticket.epoch })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Who is calling, if anyone: a bearer token wins over a cookie.
pub async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Caller, ServiceError> {
    if let Some(token) = bearer(headers) {
        return state.service.caller_for_token(token).await;
    }
    match session_user(headers, &state.cookie_key) {
        Some(session) => state.service.caller_for_session(session).await,
        None => Err(ServiceError::Unauthenticated),
    }
}

pub(super) fn add_quota_headers(headers: &mut HeaderMap, q: Quota) {
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    let (limit, reset) = unchanging_quota_headers(q);
    headers.insert(LIMIT, limit);
    headers.insert(REMAINING, HeaderValue::from(q.remaining));
    headers.insert(RESET, reset);
}

/// The limit and reset headers' values: the same for every request of a window, so each
/// thread keeps the last ones and clones them (a reference count) instead of formatting and
/// allocating both on every request.
fn unchanging_quota_headers(q: Quota) -> (HeaderValue, HeaderValue) {
    type Kept = Option<((u32, i64), (HeaderValue, HeaderValue))>;
    thread_local! {
        static LAST: std::cell::RefCell<Kept> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((key, values)) if *key == (q.limit, q.reset) => values.clone(),
        _ => {
            let values = (HeaderValue::from(q.limit), HeaderValue::from(q.reset));
            *last = Some(((q.limit, q.reset), values.clone()));
            values
        }
    })
}

/// The 429 answer of a limiter whose window is spent, with its quota headers.
pub(super) fn throttled<D: Dialect>(q: Quota) -> Response {
    let retry_after = q.retry_after();
    let mut response =
        Failure::<D>::new(RequestError::RateLimited { limit: q.limit, retry_after }).into_response();
    add_quota_headers(response.headers_mut(), q);
    response
}

/// The dialect's routes that need a caller: the dialect's checks (`guard`), then
/// authentication and the caller's quota; the `Caller` reaches the handler as an extension.
pub async fn require_caller<D, R>(state: &AppState, mut req: Request, route: R) -> Response
where
    D: Dialect,
    R: tower::Service<Request, Response = Response, Error = Infallible>,
{
    if let Some(refused) = super::guard::refusal::<D>(&req) {
        return refused;
    }
    let caller = match identify(state, req.headers()).await {
        Ok(c) => c,
        Err(e) => return Failure::<D>::new(e).into_response(),
    };
    let quota = match hit::<D>(state, &caller.rate_key).await {
        Ok(q) => q,
        Err(refused) => return refused,
    };
    req.extensions_mut().insert(caller);
    let mut response = super::guard::finish_response::<D>(super::guard::run(route, req).await).await;
    add_quota_headers(response.headers_mut(), quota);
    response
}

/// Counts a request against `key`'s hourly window: its quota, or the 429 (or the error) to
/// answer instead.
async fn hit<D: Dialect>(state: &AppState, key: &str) -> Result<Quota, Response> {
    match state.service.limits().requests.hit(key).await {
        Ok(Ok(q)) => Ok(q),
        Err(e) => Err(Failure::<D>::new(e).into_response()),
        Ok(Err(q)) => Err(throttled::<D>(q)),
    }
}

/// Routes that answer without credentials too (Kragle's public stacks): a `GET` that carries
/// no credentials at all goes through the dialect's checks without a `Caller`; anything else
/// is [`require_caller`]'s.
pub async fn allow_anonymous<D, R>(state: &AppState, req: Request, route: R) -> Response
where
    D: Dialect,
    R: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let anonymous = req.method() == axum::http::Method::GET
        && bearer(req.headers()).is_none()
        && session_user(req.headers(), &state.cookie_key).is_none()
        && !req.headers().contains_key(axum::http::header::AUTHORIZATION);
    if anonymous {
        // Without credentials there is no token to count against: anonymous reads share
        // one budget of the rate limit.
        let quota = match hit::<D>(state, "anonymous").await {
            Ok(q) => q,
            Err(refused) => return refused,
        };
        let mut response = super::guard::dialect_guard::<D, R>(req, route).await;
        add_quota_headers(response.headers_mut(), quota);
        return response;
    }
    require_caller::<D, R>(state, req, route).await
}
