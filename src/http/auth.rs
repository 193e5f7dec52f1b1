//! Authentication (bearer token or the Kragle `auth_tkt` session cookie) and the per-token
//! rate limit, as one middleware per dialect so that failures speak the dialect.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{Dialect, Failure, RequestError};
use crate::domain::{EpochMs, UserId, now_ms};
use crate::service::{Caller, ServiceError};
use crate::store::{Backend, Store};

pub const SESSION_COOKIE: &str = "auth_tkt";
const SESSION_TTL_MS: EpochMs = 7 * 24 * 3600 * 1000;

#[derive(Serialize, Deserialize)]
struct SessionTicket {
    user_id: UserId,
    expires: EpochMs,
}

/// A signed, HttpOnly, SameSite=Strict session cookie for `user_id`.
pub fn session_cookie(user_id: UserId) -> Cookie<'static> {
    let ticket = SessionTicket { user_id, expires: now_ms() + SESSION_TTL_MS };
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

fn session_user(headers: &HeaderMap, key: &Key) -> Option<UserId> {
    let jar = SignedCookieJar::from_headers(headers, key.clone());
    let ticket: SessionTicket = serde_json::from_str(jar.get(SESSION_COOKIE)?.value()).ok()?;
    (ticket.expires > now_ms()).then_some(ticket.user_id)
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
        Some(user) => state.service.caller_for_session(user).await,
        None => Err(ServiceError::Unauthenticated),
    }
}

/// A fixed hourly window per key: gives the remaining count and the reset time that the
/// `X-RateLimit-*` headers promise (a GCRA limiter such as governor has no such window).
/// On PostgreSQL the windows live in the database, so a token has one budget for the whole
/// cluster; on SQLite (one node) they live in memory.
///
/// On PostgreSQL a node takes hits from the shared window a block at a time (1% of the limit,
/// at most 100) and spends them locally: one write per block instead of one per request.
/// The cluster never admits more than the limit; near the end of a window up to a block per
/// node may go unused, so a node can refuse a little before the whole budget is spent.
pub struct RateLimiter {
    limit: u32,
    window_ms: EpochMs,
    counts: Counts,
}

enum Counts {
    Local(Mutex<HashMap<String, (EpochMs, u32)>>),
    Shared { store: Store, blocks: Mutex<HashMap<String, Block>> },
}

/// Hits a node took from a shared window and has not spent yet.
#[derive(Clone, Copy)]
struct Block {
    window_start: EpochMs,
    /// The shared window's count when the block was taken (the block included).
    shared_hits: i64,
    unspent: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds when the window resets.
    pub reset: i64,
}

impl Quota {
    pub fn retry_after(&self) -> u64 {
        (self.reset - now_ms() / 1000).max(1) as u64
    }
}

impl RateLimiter {
    pub fn new(limit_per_hour: u32, store: &Store) -> Self {
        let counts = match store.backend() {
            Backend::Postgres => Counts::Shared { store: store.clone(), blocks: Mutex::new(HashMap::new()) },
            Backend::Sqlite => Counts::Local(Mutex::new(HashMap::new())),
        };
        RateLimiter { limit: limit_per_hour, window_ms: 3_600_000, counts }
    }

    /// Counts a request. `Ok(Err(quota))` when the limit is already reached.
    pub async fn hit(&self, key: &str) -> Result<Result<Quota, Quota>, ServiceError> {
        let now = now_ms();
        let (hits, start) = match &self.counts {
            Counts::Local(windows) => {
                let mut windows = windows.lock().unwrap();
                if windows.len() > 100_000 {
                    windows.retain(|_, (start, _)| now - *start < self.window_ms);
                }
                if !windows.contains_key(key) {
                    windows.insert(key.to_string(), (now, 0));
                }
                let (start, count) = windows.get_mut(key).expect("inserted above");
                if now - *start >= self.window_ms {
                    *start = now;
                    *count = 0;
                }
                // A refused request does not count.
                if *count < self.limit {
                    *count += 1;
                    (i64::from(*count), *start)
                } else {
                    (i64::from(self.limit) + 1, *start)
                }
            }
            Counts::Shared { store, blocks } => self.hit_shared(store, blocks, key, now).await?,
        };
        let reset = (start + self.window_ms + 999) / 1000;
        let limit = i64::from(self.limit);
        Ok(if hits > limit {
            Err(Quota { limit: self.limit, remaining: 0, reset })
        } else {
            Ok(Quota { limit: self.limit, remaining: (limit - hits) as u32, reset })
        })
    }
}

impl RateLimiter {
    /// Spends a hit of this node's block for `key`, taking a new block when it is spent.
    /// Returns the window's hits as this node counts them (this one included) and its start.
    async fn hit_shared(
        &self,
        store: &Store,
        blocks: &Mutex<HashMap<String, Block>>,
        key: &str,
        now: EpochMs,
    ) -> Result<(i64, EpochMs), ServiceError> {
        let spend = |b: &mut Block| {
            b.unspent -= 1;
            (b.shared_hits - b.unspent, b.window_start)
        };
        {
            let mut blocks = blocks.lock().unwrap_or_else(|e| e.into_inner());
            match blocks.get_mut(key) {
                Some(b) if b.unspent > 0 && now - b.window_start < self.window_ms => return Ok(spend(b)),
                Some(_) => {
                    blocks.remove(key);
                }
                None => {}
            }
        }
        let limit = i64::from(self.limit);
        let size = (limit / 100).clamp(1, 100);
        let (shared_hits, window_start) = store.hit_rate_window(key, size, now, self.window_ms).await?;
        // Of the hits taken, those within the limit can be spent; none: refused.
        let granted = (limit - (shared_hits - size)).clamp(0, size);
        if granted == 0 {
            return Ok((limit + 1, window_start));
        }
        let mut block = Block { window_start, shared_hits: shared_hits - size + granted, unspent: granted };
        let spent = spend(&mut block);
        if block.unspent > 0 {
            let mut blocks = blocks.lock().unwrap_or_else(|e| e.into_inner());
            if blocks.len() > 100_000 {
                blocks.retain(|_, b| now - b.window_start < self.window_ms);
            }
            // A concurrent request of the same key may have taken a block too: keep both.
            let kept = blocks.entry(key.to_string()).or_insert(Block { unspent: 0, ..block });
            if kept.window_start == block.window_start {
                kept.unspent += block.unspent;
                kept.shared_hits = kept.shared_hits.max(block.shared_hits);
            } else {
                *kept = block;
            }
        }
        Ok(spent)
    }
}

pub(super) fn add_quota_headers(headers: &mut HeaderMap, q: Quota) {
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    headers.insert(LIMIT, HeaderValue::from(q.limit));
    headers.insert(REMAINING, HeaderValue::from(q.remaining));
    headers.insert(RESET, HeaderValue::from(q.reset));
}

/// The dialect's routes that need a caller: the dialect's checks (`guard`), then
/// authentication and the caller's quota; the `Caller` reaches the handler as an extension.
pub async fn require_caller<D: Dialect>(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(refused) = super::guard::refusal::<D>(&req) {
        return refused;
    }
    let caller = match identify(&state, req.headers()).await {
        Ok(c) => c,
        Err(e) => return Failure::<D>::new(e).into_response(),
    };
    let quota = match state.limiter.hit(&caller.rate_key).await {
        Ok(Ok(q)) => q,
        Err(e) => return Failure::<D>::new(e).into_response(),
        Ok(Err(q)) => {
            let retry_after = q.retry_after();
            let mut response =
                Failure::<D>::new(RequestError::RateLimited { limit: q.limit, retry_after }).into_response();
            add_quota_headers(response.headers_mut(), q);
            return response;
        }
    };
    let route = req.extensions().get::<axum::extract::MatchedPath>().cloned();
    req.extensions_mut().insert(caller);
    let mut response = super::guard::finish_response::<D>(route, next.run(req).await).await;
    add_quota_headers(response.headers_mut(), quota);
    response
}
