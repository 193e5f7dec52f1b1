//! cronstack's run endpoints in the v1 style: history, one run, its log (live), run now.

use std::time::Duration;

use axum::Json;
use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Body, KResult, Page, id_param, list_page, page_request};
use crate::http::AppState;
use crate::http::extract::{IdempotencyKey, JsonBody, PageParam};
use crate::service::{Caller, RunLog, Service};

use crate::api::doc::{Paging, RunList};
use crate::api::v1::{BackfillView, RunView};

#[utoipa::path(get, path = "/jobs/byid/{id}/runs", summary = "A job's runs, newest first, 10 per page", params(Paging), responses((status = 200, body = RunList)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    PageParam(page, _): Page,
) -> KResult<Response> {
    let job = s.service.job(&caller, id_param(&id, "job")?).await?;
    let found = s.service.job_runs(&job, page_request(page)).await?;
    let runs: Vec<RunView> = found.items.iter().map(RunView::from).collect();
    Ok(list_page("runs", page, found.total, runs))
}

#[utoipa::path(get, path = "/runs/{id}", summary = "One run", responses((status = 200, body = RunView)))]
pub async fn show(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<RunView>> {
    let (run, steps) = s.service.run_with_steps(&caller, id_param(&id, "run")?).await?;
    Ok(Json(RunView { steps, ..RunView::from(&*run) }))
}

#[utoipa::path(post, path = "/runs/{id}/kill", summary = "Kills a queued or running run on whichever node holds it (SIGTERM to its process group, SIGKILL after the kill grace); answers the run a moment later; 409 once it has ended", responses((status = 200, body = RunView)))]
pub async fn kill(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<RunView>> {
    let run = s.service.kill_run(&caller, id_param(&id, "run")?).await?;
    Ok(Json(RunView::from(&run)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillInput {
    /// RFC 3339; the range's slots run, both ends included.
    from: String,
    to: String,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "super::not_null")]
    overlap: Option<BackfillOverlap>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum BackfillOverlap {
    Allow,
    Queue,
}

#[utoipa::path(post, path = "/jobs/byid/{id}/backfill", summary = "Runs every slot of the job's schedule between from and to (RFC 3339, both included) that never ran, oldest first, trigger backfill; at most --catch-up-max slots (400 naming the count)", request_body = BackfillInput, responses((status = 200, body = BackfillView)))]
pub async fn backfill(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(input, _): Body<BackfillInput>,
) -> KResult<Json<BackfillView>> {
    let job = s.service.job(&caller, id_param(&id, "job")?).await?;
    let time = |field: &str, text: &str| {
        chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()).map_err(|_| {
            crate::service::ServiceError::invalid(field, format!("{text:?} is not an RFC 3339 time"))
        })
    };
    let (from, to) = (time("from", &input.from)?, time("to", &input.to)?);
    let queue = input.overlap == Some(BackfillOverlap::Queue);
    let runs = s.service.backfill(&caller, &job, from, to, queue).await?;
    Ok(Json(BackfillView { count: runs.len(), runs: runs.iter().map(RunView::from).collect() }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunNowInput {
    /// Each a separate `$N`; a string is split like a shell splits words. `null`: none.
    args: Option<ArgsInput>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum ArgsInput {
    List(Vec<String>),
    Line(String),
}

#[utoipa::path(post, path = "/jobs/byid/{id}/run", summary = "Run a job now, with arguments; with an Idempotency-Key header a repeat within 24 h answers the first run and starts nothing (409 for the same key with another body)", params(("Idempotency-Key" = Option<String>, Header, description = "a repeat with the same key within 24 h answers the first answer and starts nothing")), request_body = RunNowInput, responses((status = 200, body = RunView)))]
pub async fn run_now(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(input, _): Body<RunNowInput>,
) -> KResult<Json<RunView>> {
    let job = s.service.job(&caller, id_param(&id, "job")?).await?;
    let args = match input.args {
        None => Vec::new(),
        Some(ArgsInput::List(list)) => list,
        Some(ArgsInput::Line(line)) => crate::service::split_args("args", &line)?,
    };
    let run = s.service.run_now(&caller, &job, args, key.as_deref()).await?;
    Ok(Json(RunView::from(&run)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    follow: Option<String>,
}

/// The run's log as text; with `?follow=1` the response streams until the run ends.
#[utoipa::path(get, path = "/runs/{id}/log", summary = "A run's log as text; with follow=1 it streams until the run ends", params(LogQuery), responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn log(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> KResult<Response> {
    let run = s.service.run(&caller, id_param(&id, "run")?).await?;
    let follow = matches!(q.follow.as_deref(), Some("1" | "true" | "yes"));
    let text = [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if !follow {
        let body = match s.service.run_log(&run).await? {
            RunLog::Live(log) => log.snapshot(),
            RunLog::Stored(text) => text,
        };
        return Ok((text, body).into_response());
    }
    let stream = follow_log(s.service.clone(), caller, run.id);
    Ok((text, HttpBody::from_stream(stream)).into_response())
}

/// Streams a run's log: waits for it to start, follows the live output, ends with the run.
/// The follower receives exactly the stored log: the head as it is written, the omission
/// marker and the tail when the run ends (see `cronstack_exec::Log::read_from`).
fn follow_log(
    service: Service,
    caller: Caller,
    run_id: i64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    enum State {
        Waiting,
        Live(cronstack_exec::Log, u64),
        Done,
    }
    futures_util::stream::unfold(State::Waiting, move |state| {
        let service = service.clone();
        let caller = caller.clone();
        async move {
            match state {
                State::Done => None,
                State::Waiting => loop {
                    let run = service.run(&caller, run_id).await.ok()?;
                    match service.run_log(&run).await.ok()? {
                        RunLog::Live(log) => break Some((Ok(Bytes::new()), State::Live(log, 0))),
                        RunLog::Stored(text) if run.status.is_final() => {
                            break Some((Ok(Bytes::from(text)), State::Done));
                        }
                        RunLog::Stored(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                },
                State::Live(log, pos) => {
                    // Looked at before the read: a close in between is followed by one more
                    // read, which gets the marker and the tail that the close made known.
                    let closed = log.is_closed();
                    let (bytes, next) = log.read_from(pos);
                    if !bytes.is_empty() {
                        return Some((Ok(Bytes::from(bytes)), State::Live(log, next)));
                    }
                    if closed {
                        return None;
                    }
                    log.changed(pos).await;
                    Some((Ok(Bytes::new()), State::Live(log, pos)))
                }
            }
        }
    })
}
