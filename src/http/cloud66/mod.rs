//! The Cloud 66-style v3 dialect: `{"response": …}` envelopes, lists of 30 with Cloud 66's
//! pagination block, `{error, error_description}` errors, stacks and jobs addressed by uid,
//! and asynchronous action records for run now / pause / unpause.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::extract::{Extension, FromRequest, Path, Request, State};

use crate::http::extract::IdempotencyKey;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;

use crate::api::v3::{
    ActionView, Envelope, ErrorBody, JobParams, JobView, ListEnvelope, Pagination, RunNowBody, StackView,
};

use super::error::{ApiError, Dialect, Failure, RequestError};
use super::extract::{PageParam, parse_json, query_map, read_body};
use super::guard::GateLayer;
use super::{AppState, json_bytes, json_response};
use crate::api::doc::{JobsQuery, Paging, RunNowQuery, StacksQuery};
use crate::domain::{Action, EpochMs, Job, Schedule, Stack, utc_fields};
use crate::service::{Caller, Owned, PageRequest, Service, ServiceResult, split_args};
use crate::store::Page;

pub struct Cloud66;

/// Where the dialect is served.
pub const PREFIX: &str = "/api/3";

/// `routes!`, served and documented under [`PREFIX`] (see `openapi::at`).
macro_rules! v3_routes {
    ($($handler:tt)*) => {
        crate::http::openapi::at(PREFIX, utoipa_axum::routes!($($handler)*))
    };
}

type CResult<T> = Result<T, Failure<Cloud66>>;
type PageQ = PageParam<Cloud66>;

pub const PER_PAGE: i64 = 30;

/// Cloud 66 calls a job that runs a command on the stack's host a `DockerHostTaskJob`; that
/// is what every cronstack command job is.
pub const COMMAND_JOB_TYPE: &str = "DockerHostTaskJob";

impl Dialect for Cloud66 {
    fn render(err: &ApiError) -> Response {
        let body = ErrorBody {
            error: crate::api::v3::error_id(err.status().as_u16()).to_string(),
            error_description: err.message(),
        };
        (err.status(), Json(body)).into_response()
    }
}

/// The v3 routes and their part of the OpenAPI document: each handler is registered with
/// `routes!` from its `#[utoipa::path]`, so every route served here is documented.
pub fn router(state: AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use crate::http::openapi::{Access, described};
    let routes = OpenApiRouter::new()
        .routes(v3_routes!(list_stacks))
        .routes(v3_routes!(show_stack))
        .routes(v3_routes!(list_jobs))
        .routes(v3_routes!(pause_all))
        .routes(v3_routes!(unpause_all))
        .routes(v3_routes!(show_job))
        .routes(v3_routes!(run_now))
        .routes(v3_routes!(pause))
        .routes(v3_routes!(unpause))
        .routes(v3_routes!(list_actions))
        .routes(v3_routes!(show_action))
        .route_layer(GateLayer::<Cloud66>::new(Access::Required, &state));
    let (router, doc) = described(routes, Access::Required).split_for_parts();
    (super::dialect_fallbacks(router.method_not_allowed_fallback(method_not_allowed), PREFIX, not_found), doc)
}

/// Cloud 66 clients append `.json` to every path; routing sees the path without it.
pub fn strip_json_suffix(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.starts_with("/api/3/") && path.ends_with(".json") {
        let stripped = &path[..path.len() - ".json".len()];
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{stripped}?{q}"),
            None => stripped.to_string(),
        };
        if let Ok(uri) = rebuilt.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

async fn not_found(uri: axum::http::Uri) -> Failure<Cloud66> {
    Failure::new(RequestError::NoSuchEndpoint(uri.path().chars().take(200).collect()))
}

async fn method_not_allowed() -> Failure<Cloud66> {
    Failure::new(RequestError::MethodNotAllowed("this endpoint does not take that method".into()))
}

/// `YYYY-MM-DD<sep>HH:MM:SS<suffix>` in UTC (empty outside years 0 to 9999).
fn utc_text(ms: EpochMs, sep: u8, suffix: &str) -> String {
    let Some(fields) = utc_fields(ms, sep) else { return String::new() };
    let mut text = String::with_capacity(fields.len() + suffix.len());
    text.push_str(std::str::from_utf8(&fields).expect("ASCII digits"));
    text.push_str(suffix);
    text
}

/// Cloud 66's timestamp format in job and stack objects: `2023-10-24 15:38:29 UTC`.
fn c66_time(ms: EpochMs) -> String {
    utc_text(ms, b' ', " UTC")
}

/// Action timestamps are ISO-8601 (`2016-02-04T12:52:24Z`), as in Cloud 66's examples.
fn iso_seconds(ms: EpochMs) -> String {
    utc_text(ms, b'T', "Z")
}

// The envelopes and views are typed (`crate::api::v3`): serialized straight to bytes, not
// through a `serde_json::Value` tree.

fn envelope<V: Serialize>(response: V) -> Response {
    Json(Envelope { response }).into_response()
}

fn list_envelope<T, V: Serialize>(page: i64, found: &Page<T>, items: Vec<V>) -> Response {
    Json(list_body(page, found, items)).into_response()
}

fn list_body<T, V: Serialize>(page: i64, found: &Page<T>, items: Vec<V>) -> ListEnvelope<V> {
    let pages = ((found.total + PER_PAGE - 1) / PER_PAGE).max(1);
    ListEnvelope {
        count: found.total,
        pagination: Pagination {
            count: found.total,
            current: page,
            next: (page < pages).then(|| page + 1),
            pages,
            per_page: PER_PAGE,
            previous: (page > 1).then(|| (page - 1).min(pages)),
        },
        response: items,
    }
}

fn page_request(page: i64) -> PageRequest {
    PageRequest { page, per_page: PER_PAGE }
}

/// Cloud 66's `last_activity`: `2014-08-14T01:46:53+00:00`.
fn offset_time(ms: EpochMs) -> String {
    utc_text(ms, b'T', "+00:00")
}

/// Cloud 66's stack object: the fields its clients read, with cronstack's `id` and `command`
/// (`null` for a pipeline). `status` is 1 (deployed) for every stack; `health` sums up its
/// jobs' last runs (see `service::health`).
async fn stack_view(service: &Service, s: &Owned<Stack>) -> ServiceResult<StackView> {
    let last_activity = service.stack_last_activity(s).await?;
    let health = service.stack_health(s).await?;
    Ok(StackView {
        id: s.id,
        uid: s.uid.clone(),
        name: s.name.clone(),
        command: s.blocks.is_none().then(|| s.command.clone()),
        environment: s.environment.as_deref().unwrap_or("production").to_string(),
        status: 1,
        health,
        last_activity: last_activity.map(offset_time),
        last_activity_iso: last_activity.map(offset_time),
        created_at: c66_time(s.created_at),
        updated_at: c66_time(s.updated_at),
        created_at_iso: iso_seconds(s.created_at),
        updated_at_iso: iso_seconds(s.updated_at),
    })
}

fn job_params(stack: &Stack, job: &Job) -> JobParams {
    let (command, steps) = match (&stack.blocks, &job.command) {
        (Some(blocks), _) => (None, Some(blocks.iter().map(|b| b.kind.name().to_string()).collect())),
        (None, command) => (Some(command.clone().unwrap_or_else(|| stack.command.clone())), None),
    };
    JobParams { command, steps, after: job.after.clone(), after_any: job.after_any }
}

fn job_view(stack: &Stack, job: &Job, schedule: &Schedule) -> JobView {
    JobView {
        created_at: c66_time(job.created_at),
        cron: schedule.config.cron_text(),
        id: job.id,
        name: job.display_name(),
        params: job_params(stack, job),
        paused: !job.enabled,
        status: job.last_status as i64,
        kind: COMMAND_JOB_TYPE.to_string(),
        uid: job.uid.clone(),
        updated_at: c66_time(job.updated_at),
    }
}

async fn action_view(service: &Service, a: &Action) -> ServiceResult<ActionView> {
    let user = service.user(a.owner).await?;
    Ok(ActionView {
        id: a.id,
        user: user.email.unwrap_or(user.username),
        resource_type: "stack".to_string(),
        action: a.kind.as_str().to_string(),
        resource_id: a.stack_id.to_string(),
        started_via: a.started_via.clone(),
        started_at: iso_seconds(a.started_at),
        finished_at: a.finished_at.map(iso_seconds),
        finished_success: a.finished_success,
        finished_message: a.finished_message.clone(),
        finished_result: a.finished_result.clone(),
        metadata: a.metadata.clone(),
    })
}

/// `filter_name` on `GET /stacks`: stacks whose name holds it.
struct FilterName(Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for FilterName {
    type Rejection = Failure<Cloud66>;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(FilterName(query_map(parts)?.remove("filter_name").filter(|n| !n.is_empty())))
    }
}

#[utoipa::path(get, path = "/stacks", summary = "The caller's stacks, 30 per page", params(StacksQuery), responses((status = 200, body = ListEnvelope<StackView>)))]
async fn list_stacks(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PageParam(page, _): PageQ,
    FilterName(filter_name): FilterName,
) -> CResult<Response> {
    let found = match &filter_name {
        Some(name) => s.service.list_stacks_named(&caller, name, page_request(page)).await?,
        _ => s.service.list_stacks(&caller, page_request(page)).await?,
    };
    let mut items = Vec::with_capacity(found.items.len());
    for stack in &found.items {
        items.push(stack_view(&s.service, stack).await?);
    }
    Ok(list_envelope(page, &found, items))
}

#[utoipa::path(get, path = "/stacks/{stack}", summary = "One stack by uid", responses((status = 200, body = Envelope<StackView>)))]
async fn show_stack(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> CResult<Response> {
    let stack = s.service.stack_by_uid(&caller, &uid).await?;
    Ok(envelope(stack_view(&s.service, &stack).await?))
}

#[utoipa::path(get, path = "/stacks/{stack}/jobs", summary = "A stack's jobs, 30 per page", params(JobsQuery), responses((status = 200, body = ListEnvelope<JobView>)))]
async fn list_jobs(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    PageParam(page, _): PageQ,
) -> CResult<Response> {
    let memo = s.memo();
    let stack = s.service.stack_by_uid(&caller, &uid).await?;
    let found = s.service.list_stack_jobs(&stack, page_request(page)).await?;
    let key = ("v3 stack jobs", stack.id, page);
    if let Some(body) = memo.kept(&key) {
        return Ok(json_response(body));
    }
    // Jobs share schedules: each is read once per page.
    let mut schedules: HashMap<i64, Schedule> = HashMap::new();
    for job in &found.items {
        if let Entry::Vacant(slot) = schedules.entry(job.schedule_id) {
            slot.insert(s.service.schedule(&caller, job.schedule_id).await?.into_inner());
        }
    }
    let body = memo.or_render(key, || {
        let items =
            found.items.iter().map(|job| job_view(&stack, job, &schedules[&job.schedule_id])).collect();
        json_bytes(&list_body(page, &found, items))
    })?;
    Ok(json_response(body))
}

/// The caller's stack and one of its jobs, both by uid.
async fn stack_and_job(
    s: &AppState,
    caller: &Caller,
    stack_uid: &str,
    job_uid: &str,
) -> ServiceResult<(Owned<Stack>, Owned<Job>)> {
    let stack = s.service.stack_by_uid(caller, stack_uid).await?;
    let job = s.service.stack_job_by_uid(&stack, job_uid).await?;
    Ok((stack, job))
}

#[utoipa::path(get, path = "/stacks/{stack}/jobs/{job}", summary = "One job by uid", responses((status = 200, body = Envelope<JobView>)))]
async fn show_job(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((stack_uid, job_uid)): Path<(String, String)>,
) -> CResult<Response> {
    let memo = s.memo();
    let (stack, job) = stack_and_job(&s, &caller, &stack_uid, &job_uid).await?;
    let key = ("v3 job", job.id, 0);
    if let Some(body) = memo.kept(&key) {
        return Ok(json_response(body));
    }
    let schedule = s.service.schedule(&caller, job.schedule_id).await?;
    Ok(json_response(
        memo.or_render(key, || json_bytes(&Envelope { response: job_view(&stack, &job, &schedule) }))?,
    ))
}

/// `job_args` from the query string, a form body or a JSON body.
struct JobArgs(Option<String>);

impl<S: Send + Sync> FromRequest<S> for JobArgs {
    type Rejection = Failure<Cloud66>;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let mut args = query_map(&parts)?.remove("job_args");
        let content_type =
            parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let bytes = read_body(Request::from_parts(parts, body), state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JobArgs(args));
        }
        if content_type.starts_with("application/x-www-form-urlencoded") {
            args = form_field(&bytes, "job_args")?.or(args);
        } else if content_type.is_empty() || content_type.contains("json") {
            let body: RunNowBody = parse_json(&bytes)?;
            args = body.job_args.or(args);
        } else {
            return Err(RequestError::UnsupportedMediaType(content_type.chars().take(100).collect()).into());
        }
        Ok(JobArgs(args))
    }
}

/// The value of `name` in a form body (the last one if repeated). Every key and value must
/// decode to UTF-8 text without NUL, as in JSON bodies and query strings: a lossy decoding
/// would run the job with other arguments than those sent.
fn form_field(body: &[u8], name: &str) -> Result<Option<String>, RequestError> {
    let mut found = None;
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let key = form_text(key, "a form field name")?;
        let value = form_text(value, &key)?;
        if key == name {
            found = Some(value);
        }
    }
    Ok(found)
}

/// One `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte.
fn form_text(raw: &[u8], what: &str) -> Result<String, RequestError> {
    let spaced: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    let text = String::from_utf8(bytes)
        .map_err(|_| RequestError::BadPayload(format!("{what}: the form body is not UTF-8 text")))?;
    if text.contains('\0') {
        return Err(RequestError::BadPayload(format!("{what}: text must not contain NUL characters (%00)")));
    }
    Ok(text)
}

#[utoipa::path(post, path = "/stacks/{stack}/jobs/{job}/run_now", summary = "Run a job now; job_args from a JSON or form body or the query string; with an Idempotency-Key header a repeat within 24 h answers the first action and starts nothing", params(RunNowQuery, ("Idempotency-Key" = Option<String>, Header, description = "a repeat with the same key within 24 h answers the first answer and starts nothing")), request_body = Option<RunNowBody>, responses((status = 200, body = Envelope<ActionView>)))]
async fn run_now(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((stack_uid, job_uid)): Path<(String, String)>,
    IdempotencyKey(key): IdempotencyKey,
    JobArgs(line): JobArgs,
) -> CResult<Response> {
    let (stack, job) = stack_and_job(&s, &caller, &stack_uid, &job_uid).await?;
    let args = match line {
        Some(line) => split_args("job_args", &line)?,
        None => Vec::new(),
    };
    let action = s.service.run_now_action(&caller, &stack, &job, args, key.as_deref()).await?;
    Ok(envelope(action_view(&s.service, &action).await?))
}

async fn pause_or_unpause(
    s: &AppState,
    caller: &Caller,
    stack_uid: &str,
    job_uid: &str,
    paused: bool,
) -> CResult<Response> {
    let (stack, job) = stack_and_job(s, caller, stack_uid, job_uid).await?;
    let action = s.service.pause_action(caller, &stack, &job, paused).await?;
    Ok(envelope(action_view(&s.service, &action).await?))
}

#[utoipa::path(post, path = "/stacks/{stack}/jobs/{job}/pause", summary = "Pause a job", responses((status = 200, body = Envelope<ActionView>)))]
async fn pause(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((stack_uid, job_uid)): Path<(String, String)>,
) -> CResult<Response> {
    pause_or_unpause(&s, &caller, &stack_uid, &job_uid, true).await
}

#[utoipa::path(post, path = "/stacks/{stack}/jobs/{job}/unpause", summary = "Unpause a job", responses((status = 200, body = Envelope<ActionView>)))]
async fn unpause(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((stack_uid, job_uid)): Path<(String, String)>,
) -> CResult<Response> {
    pause_or_unpause(&s, &caller, &stack_uid, &job_uid, false).await
}

async fn pause_all_or_none(
    s: &AppState,
    caller: &Caller,
    stack_uid: &str,
    paused: bool,
) -> CResult<Response> {
    let stack = s.service.stack_by_uid(caller, stack_uid).await?;
    let action = s.service.pause_all_action(caller, &stack, paused).await?;
    Ok(envelope(action_view(&s.service, &action).await?))
}

#[utoipa::path(post, path = "/stacks/{stack}/jobs/pause_all", summary = "Pause every job of a stack", responses((status = 200, body = Envelope<ActionView>)))]
async fn pause_all(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(stack_uid): Path<String>,
) -> CResult<Response> {
    pause_all_or_none(&s, &caller, &stack_uid, true).await
}

#[utoipa::path(post, path = "/stacks/{stack}/jobs/unpause_all", summary = "Unpause the jobs pause_all paused", responses((status = 200, body = Envelope<ActionView>)))]
async fn unpause_all(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(stack_uid): Path<String>,
) -> CResult<Response> {
    pause_all_or_none(&s, &caller, &stack_uid, false).await
}

#[utoipa::path(get, path = "/stacks/{stack}/actions", summary = "A stack's action records, 30 per page", params(Paging), responses((status = 200, body = ListEnvelope<ActionView>)))]
async fn list_actions(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(stack_uid): Path<String>,
    PageParam(page, _): PageQ,
) -> CResult<Response> {
    let stack = s.service.stack_by_uid(&caller, &stack_uid).await?;
    let found = s.service.stack_actions(&stack, page_request(page)).await?;
    let mut items = Vec::with_capacity(found.items.len());
    for a in &found.items {
        items.push(action_view(&s.service, a).await?);
    }
    Ok(list_envelope(page, &found, items))
}

#[utoipa::path(get, path = "/stacks/{stack}/actions/{id}", summary = "One action record", responses((status = 200, body = Envelope<ActionView>)))]
async fn show_action(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((stack_uid, id)): Path<(String, String)>,
) -> CResult<Response> {
    let stack = s.service.stack_by_uid(&caller, &stack_uid).await?;
    let id = super::extract::parse_id(&id, "action")?;
    let action = s.service.action(&stack, id).await?;
    Ok(envelope(action_view(&s.service, &action).await?))
}

/// Fuzzing (see `crate::fuzz`): `data` as a `run_now` body with each content type a Cloud 66
/// client may send.
pub(super) fn fuzz_bodies(data: &[u8]) {
    for content_type in
        [Some("application/json"), Some("application/x-www-form-urlencoded"), None, Some("text/plain")]
    {
        let req = super::fuzz_request(data, content_type);
        match super::fuzz_ready(JobArgs::from_request(req, &())) {
            Ok(JobArgs(Some(line))) => {
                let _ = split_args("job_args", &line);
            }
            Ok(JobArgs(None)) => {}
            Err(failure) => super::fuzz_check_rejection(failure.into_response()),
        }
    }
}
