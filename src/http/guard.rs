//! What each dialect's routes pass through (the public ones as a layer, the others inside
//! `auth::require_caller`: one layer per route either way): refuses what no handler can take
//! (a NUL character in the path or query string), and turns axum's own plain-text rejections
//! (a path segment that is not UTF-8, a query string `Query<T>` cannot read) into the
//! dialect's JSON error.

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Dialect, Failure, RequestError};

/// Largest plain-text rejection body carried over into the JSON error.
const MAX_REJECTION_TEXT: usize = 4096;

/// The dialect's public routes: [`refusal`], the route, [`finish_response`].
pub async fn dialect_guard<D: Dialect>(req: Request, next: Next) -> Response {
    if let Some(refused) = refusal::<D>(&req) {
        return refused;
    }
    let route = req.extensions().get::<MatchedPath>().cloned();
    finish_response::<D>(route, next.run(req).await).await
}

/// The answer to what no handler can take, refused before anything else reads the request.
pub fn refusal<D: Dialect>(req: &Request) -> Option<Response> {
    // PostgreSQL can neither store nor compare text holding NUL, and no name, uid or
    // parameter has one: refused up front, the same way on both backends.
    let uri = req.uri();
    if has_encoded_nul(uri.path()) || uri.query().is_some_and(has_encoded_nul) {
        let e = RequestError::BadParam("the path or query string holds a NUL character (%00)".into());
        return Some(Failure::<D>::new(e).into_response());
    }
    None
}

/// Labels the response with its route (for the request metrics) and turns axum's plain-text
/// rejections into the dialect's JSON error.
pub async fn finish_response<D: Dialect>(route: Option<MatchedPath>, mut response: Response) -> Response {
    super::ops::label_response(route, &mut response);
    let status = response.status();
    let json =
        response.headers().get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() || json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let text = if text.is_empty() {
        parts.status.canonical_reason().unwrap_or("bad request").to_string()
    } else {
        text
    };
    let e = match parts.status.as_u16() {
        404 => RequestError::NoSuchEndpoint(text),
        405 => RequestError::MethodNotAllowed(text),
        415 => RequestError::UnsupportedMediaType(text),
        _ => RequestError::BadParam(text),
    };
    let mut rendered = D::render(&ApiError::Request(e));
    *rendered.status_mut() = parts.status;
    rendered.extensions_mut().extend(parts.extensions);
    for name in [axum::http::header::ALLOW, axum::http::header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            rendered.headers_mut().insert(name, v.clone());
        }
    }
    rendered
}

fn has_encoded_nul(s: &str) -> bool {
    // `str::contains` compares 16 bytes at a time; a byte-by-byte window was ~700
    // instructions on every request to a Cloud 66 job's path (callgrind).
    s.contains("%00")
}

/// Whether valid JSON text holds an escaped NUL (`\u0000`) in a string.
pub(crate) fn has_escaped_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_nul_is_found_only_as_an_escape() {
        assert!(has_escaped_nul(br#"{"a": "x\u0000"}"#));
        assert!(has_escaped_nul(br#"{"a": "\\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a": "\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a": "u0000 \u0001"}"#));
        assert!(!has_encoded_nul("/a/%2500"));
        assert!(has_encoded_nul("/a/b%00"));
    }
}
