//! Kragle's stack hooks: `/blockstacks/hook/<id>` (access by the stack's `webhook` setting),
//! `/blockstacks/exec/<id>` (the owner, by hand) and `/blockstacks/hook/token_refresh/<id>`.

use axum::Json;
use axum::extract::{Extension, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{KResult, Kragle, id_param};
use crate::api::doc::{ExecAnswer, HookQuery, HookReply, HookToken};
use crate::domain::HookMethod;
use crate::http::AppState;
use crate::http::auth::{add_quota_headers, identify};
use crate::http::error::{Failure, RequestError};
use crate::http::extract::read_body;
use crate::service::{Caller, HOOK_TOKEN_HEADER, HookAnswer, HookCall, HookRequest, ServiceError};

/// `GET|POST /blockstacks/hook/<id>`: runs the stack's command with Kragle's request document
/// on stdin and answers `{"status": 0, "result": …}` or `{"status": 1, "err": …}` (HTTP 200).
#[utoipa::path(method(get, post), path = "/blockstacks/hook/{id}", summary = "Call a stack's hook (by its webhook_method; access by its webhook setting): the command gets Kragle's request document on stdin, a POST's body (JSON or form) in it too; HTTP 200 with {status: 0, result} or {status: 1, err}", params(HookQuery), request_body(content = Option<serde_json::Value>, description = "anything: a JSON body becomes the document's JSON, a form body its POST"), responses((status = 200, body = HookReply)))]
pub async fn hook(State(s): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    match call(&s, &id, req).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    }
}

async fn call(s: &AppState, id: &str, req: Request) -> KResult<Response> {
    let id = id_param(id, "stack")?;
    let (parts, body) = req.into_parts();
    let query = query_pairs(&parts)?;
    let method = match parts.method {
        Method::GET => Some(HookMethod::Get),
        Method::POST => Some(HookMethod::Post),
        _ => None,
    };
    // Credentials are looked at only when given: a public hook answers without any.
    let caller = match credentials_given(&parts.headers) {
        true => identify(s, &parts.headers).await.ok(),
        false => None,
    };
    let token = parts
        .headers
        .get(HOOK_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| query.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str()));
    // Another method than GET or POST is never a stack's: refused as the other one would be.
    let call = HookCall { method: method.unwrap_or(HookMethod::Get), token, caller: caller.as_ref() };
    let admitted = match (method, s.service.admit_hook(id, call).await) {
        (Some(_), Ok(admitted)) => admitted,
        (None, Ok(admitted)) => return Ok(wrong_method(admitted.stack_method())),
        (_, Err(ServiceError::HookMethod(allowed))) => return Ok(wrong_method(allowed)),
        (_, Err(e)) => return Err(e.into()),
    };
    let body = read_body(crate::http::extract::rejoin(&parts, body), &()).await?;
    let request = hook_request(&parts, query, &body)?;
    let answer = s.service.call_hook(&admitted, request).await?;
    let body = match &answer.result {
        Ok(result) => json!({ "status": 0, "result": result }),
        Err(err) => json!({ "status": 1, "err": err }),
    };
    let mut response = with_run_headers(Json(body).into_response(), &answer);
    add_quota_headers(response.headers_mut(), admitted.quota);
    Ok(response)
}

/// 405 with the method the hook takes in `Allow`.
fn wrong_method(allowed: HookMethod) -> Response {
    let mut response = Failure::<Kragle>::new(ServiceError::HookMethod(allowed)).into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allowed.as_str()));
    response
}

/// Whether the request carries credentials (a bearer token or a session cookie).
fn credentials_given(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || headers.contains_key(header::COOKIE)
}

/// `GET|POST /blockstacks/exec/<id>`: the owner runs the stack by hand (hook or not), with the
/// same document on stdin. Kragle's `{"success": [<ids executed>]}` holds the run id here,
/// next to the `result`; a failure is `{"error": "…"}`. HTTP 200 either way.
#[utoipa::path(method(get, post), path = "/blockstacks/exec/{id}", summary = "Run one of the caller's stacks by hand (hook or not), a POST's body in the document: {success: [run id], result} or {error}", request_body(content = Option<serde_json::Value>, description = "anything: a JSON body becomes the document's JSON, a form body its POST"), responses((status = 200, body = ExecAnswer)))]
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
    let request = hook_request(&parts, query, &body)?;
    let answer = s.service.exec_stack(&caller, id, request).await?;
    let body = match &answer.result {
        Ok(result) => json!({ "success": [answer.run_id], "result": result }),
        Err(err) => json!({ "error": err }),
    };
    Ok(with_run_headers(Json(body).into_response(), &answer))
}

/// `GET /blockstacks/hook/token_refresh/<id>` → `{"token": …}`; the old token stops working.
#[utoipa::path(get, path = "/blockstacks/hook/token_refresh/{id}", summary = "Replace a stack's webhook_token; the old one stops working", responses((status = 200, body = HookToken)))]
pub async fn token_refresh(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<HookToken>> {
    let token = s.service.refresh_hook_token(&caller, id_param(&id, "stack")?).await?;
    Ok(Json(HookToken { token }))
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

/// What a hook (or exec) call carries, for the service's request document: the form fields
/// of a form body, the JSON body (`{}` when blank or not JSON), the headers.
fn hook_request(
    parts: &Parts,
    query: Vec<(String, String)>,
    body: &[u8],
) -> Result<HookRequest, RequestError> {
    let mime = mime(&parts.headers);
    let blank = body.iter().all(u8::is_ascii_whitespace);
    let form = if mime.as_deref() == Some("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| RequestError::BadPayload(format!("malformed form body: {e}")))?
    } else {
        Vec::new()
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
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect();
    Ok(HookRequest { query, form, json, headers })
}

fn mime(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}
