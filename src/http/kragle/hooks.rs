//! Kragle's stack hooks: `/blockstacks/hook/<id>` (access by the stack's `webhook` setting),
//! `/blockstacks/exec/<id>` (the owner, by hand) and `/blockstacks/hook/token_refresh/<id>`.

use axum::Json;
use axum::extract::{Extension, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{KResult, Kragle, id_param};
use crate::domain::{HookAccess, HookMethod};
use crate::http::AppState;
use crate::http::auth::{add_quota_headers, identify, throttled};
use crate::http::error::{Failure, RequestError};
use crate::http::extract::read_body;
use crate::service::{Caller, HookAnswer, HookRequest};

/// Where a `token` hook's token may come instead of `?token=`.
const TOKEN_HEADER: &str = "x-cronstack-hook-token";

/// Request headers never passed to the command: they are credentials.
const HIDDEN_HEADERS: [&str; 3] = ["authorization", "cookie", TOKEN_HEADER];

/// `GET|POST /blockstacks/hook/<id>`: runs the stack's command with Kragle's request document
/// on stdin and answers `{"status": 0, "result": …}` or `{"status": 1, "err": …}` (HTTP 200).
pub async fn hook(State(s): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    match call(&s, &id, req).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    }
}

async fn call(s: &AppState, id: &str, req: Request) -> KResult<Response> {
    let (stack, access) = s.service.hook_stack(id_param(id, "stack")?).await?;
    let (parts, body) = req.into_parts();
    let (allowed, allow_header) = match stack.webhook_method {
        HookMethod::Get => (Method::GET, "GET"),
        HookMethod::Post => (Method::POST, "POST"),
    };
    if parts.method != allowed {
        let mut response = Failure::<Kragle>::new(RequestError::MethodNotAllowed(format!(
            "this hook takes {allowed} only (the stack's webhook_method)"
        )))
        .into_response();
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow_header));
        return Ok(response);
    }
    let query = query_pairs(&parts)?;
    match access {
        HookAccess::Public => {}
        HookAccess::Token => {
            let given = parts
                .headers
                .get(TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
                .or_else(|| query.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str()));
            s.service.check_hook_token(&stack, given)?;
        }
        HookAccess::User => {
            let caller = identify(s, &parts.headers).await?;
            s.service.check_hook_owner(&stack, &caller)?;
        }
    }
    let quota = match s.hook_limiter.hit(&format!("hook:{}", stack.id)).await? {
        Ok(q) => q,
        Err(q) => return Ok(throttled::<Kragle>(q)),
    };
    let body = read_body(crate::http::extract::rejoin(&parts, body), &()).await?;
    let document = document(&parts, query, &body, access == HookAccess::Token)?;
    let answer = s.service.call_hook(&stack, &HookRequest { document }).await?;
    let body = match &answer.result {
        Ok(result) => json!({ "status": 0, "result": result }),
        Err(err) => json!({ "status": 1, "err": err }),
    };
    let mut response = with_run_headers(Json(body).into_response(), &answer);
    add_quota_headers(response.headers_mut(), quota);
    Ok(response)
}

/// `GET|POST /blockstacks/exec/<id>`: the owner runs the stack by hand (hook or not), with the
/// same document on stdin. Kragle's `{"success": [<ids executed>]}` holds the run id here,
/// next to the `result`; a failure is `{"error": "…"}`. HTTP 200 either way.
pub async fn exec(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    req: Request,
) -> KResult<Response> {
    let id = id_param(&id, "stack")?;
    let (parts, body) = req.into_parts();
    let query = query_pairs(&parts)?;
    let body = read_body(crate::http::extract::rejoin(&parts, body), &()).await?;
    let document = document(&parts, query, &body, false)?;
    let answer = s.service.exec_stack(&caller, id, &HookRequest { document }).await?;
    let body = match &answer.result {
        Ok(result) => json!({ "success": [answer.run_id], "result": result }),
        Err(err) => json!({ "error": err }),
    };
    Ok(with_run_headers(Json(body).into_response(), &answer))
}

/// `GET /blockstacks/hook/token_refresh/<id>` → `{"token": …}`; the old token stops working.
pub async fn token_refresh(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<Value>> {
    let token = s.service.refresh_hook_token(&caller, id_param(&id, "stack")?).await?;
    Ok(Json(json!({ "token": token })))
}

/// Which run answered, and the hook job that records it.
fn with_run_headers(mut response: Response, answer: &HookAnswer) -> Response {
    response.headers_mut().insert("x-cronstack-run-id", HeaderValue::from(answer.run_id));
    response.headers_mut().insert("x-cronstack-job-id", HeaderValue::from(answer.job_id));
    response
}

fn query_pairs(parts: &Parts) -> Result<Vec<(String, String)>, RequestError> {
    serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
        .map_err(|e| RequestError::BadParam(format!("malformed query string: {e}")))
}

/// Kragle's request document: `{"GET": {...}, "POST": {...}, "JSON": <body or {}>,
/// "HEADERS": {...}}`. A parameter (or header) given more than once becomes an array of its
/// values, in order. A token hook's `token` parameter and credential headers are left out.
fn document(
    parts: &Parts,
    query: Vec<(String, String)>,
    body: &[u8],
    drop_token: bool,
) -> Result<Value, RequestError> {
    let get = multi_map(query.into_iter().filter(|(k, _)| !(drop_token && k == "token")));
    let mime = mime(&parts.headers);
    let blank = body.iter().all(u8::is_ascii_whitespace);
    let post = if mime.as_deref() == Some("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| RequestError::BadPayload(format!("malformed form body: {e}")))?;
        multi_map(pairs)
    } else {
        Map::new()
    };
    let json = match mime.as_deref() {
        _ if blank => Value::Object(Map::new()),
        Some(m) if m == "application/json" || m.ends_with("+json") => {
            serde_json::from_slice(body).map_err(|e| RequestError::BadJson(e.to_string()))?
        }
        // No content type: JSON if it is JSON.
        None => serde_json::from_slice(body).unwrap_or_else(|_| Value::Object(Map::new())),
        Some(_) => Value::Object(Map::new()),
    };
    let headers =
        multi_map(parts.headers.iter().filter(|(name, _)| !HIDDEN_HEADERS.contains(&name.as_str())).map(
            |(name, value)| {
                (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            },
        ));
    Ok(json!({ "GET": get, "POST": post, "JSON": json, "HEADERS": headers }))
}

fn mime(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// Single values as strings; repeated keys as arrays.
fn multi_map(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in pairs {
        match map.get_mut(&key) {
            None => {
                map.insert(key, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                map.insert(key, Value::Array(vec![first, Value::String(value)]));
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::multi_map;
    use serde_json::json;

    #[test]
    fn repeated_keys_become_arrays() {
        let pairs =
            [("a", "1"), ("b", "2"), ("a", "3"), ("a", "4")].map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(serde_json::Value::Object(multi_map(pairs)), json!({"a": ["1", "3", "4"], "b": "2"}));
    }
}
