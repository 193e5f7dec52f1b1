//! Request extractors whose rejections are dialect errors naming what is wrong.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::{Dialect, Failure, RequestError};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 256 * 1024;

/// A JSON body of type `T`; an empty body counts as `{}` (for POSTs whose fields are all
/// optional). Unknown fields, wrong types and malformed JSON are refused with the field named.
pub struct JsonBody<T, D>(pub T, pub PhantomData<D>);

impl<T, D, S> FromRequest<S> for JsonBody<T, D>
where
    T: DeserializeOwned,
    D: Dialect,
    S: Send + Sync,
{
    type Rejection = Failure<D>;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers())?;
        let bytes = read_body(req, state).await?;
        Ok(JsonBody(parse_json(&bytes)?, PhantomData))
    }
}

pub(crate) fn check_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), RequestError> {
    match headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(not text)")) {
        None => Ok(()),
        Some(ct) => {
            let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if mime == "application/json" || mime.ends_with("+json") {
                Ok(())
            } else {
                Err(RequestError::UnsupportedMediaType(ct.chars().take(100).collect()))
            }
        }
    }
}

pub(crate) async fn read_body<S: Send + Sync>(req: Request, _state: &S) -> Result<Bytes, RequestError> {
    // The server bounds how long a body may take (`http::serve`) when a request has one;
    // bodyless requests and requests built in-process (the fuzz entry points) carry no bound.
    let timeout = req.extensions().get::<super::ClientTimeout>().map(|t| t.0);
    let read = axum::body::to_bytes(req.into_body(), BODY_LIMIT);
    let read = match timeout {
        Some(t) => tokio::time::timeout(t, read).await.map_err(|_| RequestError::BodyTimeout(t.as_secs()))?,
        None => read.await,
    };
    read.map_err(|e| {
        // to_bytes fails on the length limit or on a broken connection.
        let too_large =
            std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            RequestError::TooLarge(BODY_LIMIT)
        } else {
            RequestError::BadJson(format!("could not read the body: {e}"))
        }
    })
}

/// A body split from its request, in a request of its own that keeps the server's body
/// timeout (`read_body` bounds the read by it).
pub(crate) fn rejoin(parts: &Parts, body: axum::body::Body) -> Request {
    let mut req = Request::new(body);
    if let Some(t) = parts.extensions.get::<super::ClientTimeout>() {
        req.extensions_mut().insert(*t);
    }
    req
}

/// Parses JSON, telling malformed JSON (Kragle 2) from a wrong shape (Kragle 4).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RequestError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    // Bodies are JSON objects; serde would also read a struct from a positional array.
    let not_an_object = || RequestError::BadPayload("the request body must be a JSON object".into());
    let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut *de);
    let value = result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if !is_object => not_an_object(),
            serde_json::error::Category::Data => {
                let msg = strip_position(&inner.to_string());
                if path == "." || path.is_empty() {
                    RequestError::BadPayload(msg)
                } else {
                    RequestError::BadPayload(format!("{path}: {msg}"))
                }
            }
            _ => RequestError::BadJson(inner.to_string()),
        }
    })?;
    // Anything after the value (`{...} x`) makes the body malformed, not just oddly shaped.
    de.end().map_err(|e| RequestError::BadJson(e.to_string()))?;
    refuse_duplicate_keys(bytes)?;
    if !is_object {
        return Err(not_an_object());
    }
    // PostgreSQL cannot store text holding NUL: refused the same way on both backends.
    if super::guard::has_escaped_nul(bytes) {
        let field = serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| nul_field(&v, ""))
            .unwrap_or_else(|| "a text field".into());
        return Err(RequestError::BadPayload(format!(
            "{field}: text must not contain NUL characters (\\u0000)"
        )));
    }
    Ok(value)
}

/// serde refuses a struct field given twice, but a map (`env`) or a free-form value
/// (`config`) keeps the last one silently: any object naming a key twice, at any depth, is
/// refused the same way, the key named with its path (`env.A`). `bytes` is valid JSON here.
fn refuse_duplicate_keys(bytes: &[u8]) -> Result<(), RequestError> {
    use serde::de::DeserializeSeed;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    UniqueKeys { path: String::new() }
        .deserialize(de)
        .map_err(|e| RequestError::BadPayload(strip_position(&e.to_string())))
}

/// Walks a JSON value, failing at the first object that holds a key twice.
struct UniqueKeys {
    /// Where the value is, `""` for the body itself.
    path: String,
}

impl UniqueKeys {
    fn at(&self, step: &str) -> UniqueKeys {
        let path = if self.path.is_empty() { step.to_string() } else { format!("{}.{step}", self.path) };
        UniqueKeys { path }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let inner = self.at(&key);
            if !seen.insert(key) {
                return Err(serde::de::Error::custom(format!("{}: duplicate key", inner.path)));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq.next_element_seed(self.at(&i.to_string()))?.is_some() {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The path of the first string (key or value) holding a NUL, e.g. `name` or `env.KEY`.
fn nul_field(v: &serde_json::Value, path: &str) -> Option<String> {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match v {
        serde_json::Value::String(s) if s.contains('\0') => {
            Some(if path.is_empty() { "body".into() } else { path.into() })
        }
        serde_json::Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| if k.contains('\0') { Some(join(k)) } else { nul_field(v, &join(k)) }),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| nul_field(v, &join(&i.to_string())))
        }
        _ => None,
    }
}

/// For an optional field that `null` may clear: `Some(None)` for an explicit `null`, `None`
/// when the field is absent (partial updates leave it unchanged).
pub(crate) fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// For an optional field that cannot be null (`#[serde(default, deserialize_with =
/// "not_null")]`): a plain `Option` reads `null` as absent, so a PUT of `{"enabled": null}`
/// would answer 200 and change nothing. Refused instead, the field named by the path.
pub(crate) fn not_null<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(v) => Ok(Some(v)),
        None => Err(serde::de::Error::custom("must not be null (give a value or leave the field out)")),
    }
}

/// The `Idempotency-Key` header, if any (see `Service::once_per_key`).
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyKey {
    /// The service checks the key (and answers in the caller's dialect).
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let key =
            parts.headers.get("idempotency-key").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Ok(IdempotencyKey(key))
    }
}

/// A nullable instant given as RFC 3339 text (`"2027-01-01T00:00:00Z"`), as epoch ms.
pub(crate) fn nullable_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(Some(None)),
        Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(Some(t.timestamp_millis())))
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is not an RFC 3339 time (e.g. 2027-01-01T00:00:00Z)"
                ))
            }),
    }
}

/// serde's "… at line 1 column 12" helps nobody once the field is named.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The `page` query parameter (default 1), validated.
pub struct PageParam<D>(pub i64, pub PhantomData<D>);

impl<D: Dialect, S: Send + Sync> FromRequestParts<S> for PageParam<D> {
    type Rejection = Failure<D>;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let params = query_map(parts)?;
        let page = match params.get("page").map(String::as_str) {
            None | Some("") => 1,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(Failure::new(RequestError::BadParam(format!(
                        "page must be an integer of 1 or more, got {:?}",
                        raw.chars().take(40).collect::<String>()
                    ))));
                }
            },
        };
        Ok(PageParam(page, PhantomData))
    }
}

pub(crate) fn query_map(parts: &Parts) -> Result<HashMap<String, String>, RequestError> {
    let query = parts.uri.query().unwrap_or("");
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|e| RequestError::BadParam(format!("malformed query string: {e}")))
}

/// Parses an integer id from a path segment.
pub fn parse_id(raw: &str, what: &str) -> Result<i64, RequestError> {
    raw.parse::<i64>().map_err(|_| {
        RequestError::BadParam(format!(
            "{what} id must be an integer, got {:?}",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn refusal(body: &str) -> String {
        match parse_json::<Value>(body.as_bytes()) {
            Err(RequestError::BadPayload(msg)) => msg,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth_with_its_path() {
        assert_eq!(refusal(r#"{"a": 1, "a": 2}"#), "a: duplicate key");
        assert_eq!(refusal(r#"{"env": {"A": "1", "B": "2", "A": "3"}}"#), "env.A: duplicate key");
        assert_eq!(refusal(r#"{"x": [1, {"k": {"a": [], "\u0061": {}}}]}"#), "x.1.k.a: duplicate key");
        for fine in [r#"{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}"#, "{}", r#"{"a": null}"#] {
            parse_json::<Value>(fine.as_bytes()).unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
    }
}
