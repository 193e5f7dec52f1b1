//! A layer for each dialect's router: refuses what no handler can take (a NUL character in the
//! path or query string), and turns axum's own plain-text rejections (a path segment that is
//! not UTF-8, a query string `Query<T>` cannot read) into the dialect's JSON error. And one
//! for the whole app that closes connections whose request body was refused.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Dialect, Failure, RequestError};

/// Largest plain-text rejection body carried over into the JSON error.
const MAX_REJECTION_TEXT: usize = 4096;

/// A request refused before its body was read (too large, wrong type, no token…) leaves
/// unread bytes on its connection, which the server then closes after the answer. The answer
/// says so (`Connection: close`): a client that reused the connection for its next request
/// would otherwise see it closed without an answer.
pub async fn close_after_refused_body(req: Request, next: Next) -> Response {
    let headers = req.headers();
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers.get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
    let mut response = next.run(req).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

pub async fn dialect_guard<D: Dialect>(req: Request, next: Next) -> Response {
    // PostgreSQL can neither store nor compare text holding NUL, and no name, uid or
    // parameter has one: refused up front, the same way on both backends.
    let uri = req.uri();
    if has_encoded_nul(uri.path()) || uri.query().is_some_and(has_encoded_nul) {
        let e = RequestError::BadParam("the path or query string holds a NUL character (%00)".into());
        return Failure::<D>::new(e).into_response();
    }
    let response = next.run(req).await;
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
    for name in [axum::http::header::ALLOW, axum::http::header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            rendered.headers_mut().insert(name, v.clone());
        }
    }
    rendered
}

fn has_encoded_nul(s: &str) -> bool {
    s.as_bytes().windows(3).any(|w| w == b"%00")
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
