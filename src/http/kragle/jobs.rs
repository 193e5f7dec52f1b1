//! `/jobs`: Kragle's job endpoints, plus cronstack's command and policy fields.

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Body, KResult, ListPage, Page, id_param, not_null, nullable, page_request};
use crate::domain::{ChainAfter, Health, Job, Missed, Overlap, RunStatus, iso8601};
use crate::http::extract::{JsonBody, PageParam, nullable_time};
use crate::http::{AppState, json_bytes, json_response};
use crate::service::{Caller, DeleteOutcome, JobPatch};
use axum::response::Response;

/// A job as the v1 API shows it: Kragle's fields first, then cronstack's.
#[derive(Serialize)]
pub struct JobView {
    id: i64,
    owner: i64,
    name: Option<String>,
    stack: i64,
    schedule: i64,
    next_run: Option<String>,
    do_run: bool,
    do_del: bool,
    uid: String,
    #[serde(rename = "type")]
    kind: String,
    command: Option<String>,
    timeout_s: Option<i64>,
    overlap: Overlap,
    missed: Missed,
    retries: i64,
    retry_backoff_s: i64,
    retry_lost: bool,
    jitter_s: i64,
    not_before: Option<String>,
    not_after: Option<String>,
    max_runs: Option<i64>,
    runs_fired: i64,
    keep_succeeded: Option<i64>,
    keep_failed: Option<i64>,
    after: Vec<ChainAfter>,
    after_any: bool,
    grace_s: Option<i64>,
    max_duration_s: Option<i64>,
    health: Health,
    last_run: Option<LastRunView>,
    last_success_at: Option<String>,
    last_failure_at: Option<String>,
    /// The first slot of an open missed incident.
    missed_slot: Option<String>,
    /// The run of an open stuck incident.
    stuck_run: Option<i64>,
    created_at: String,
    updated_at: String,
}

/// A job's last finished run (skipped slots aside).
#[derive(Serialize)]
pub struct LastRunView {
    id: i64,
    outcome: RunStatus,
    finished_at: String,
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> Self {
        JobView {
            id: j.id,
            owner: j.owner,
            name: j.name.clone(),
            stack: j.stack_id,
            schedule: j.schedule_id,
            next_run: j.next_run_at.map(iso8601),
            do_run: j.enabled,
            do_del: j.pending_delete,
            uid: j.uid.clone(),
            kind: j.kind.clone(),
            command: j.command.clone(),
            timeout_s: j.timeout_s,
            overlap: j.overlap,
            missed: j.missed,
            retries: j.retries,
            retry_backoff_s: j.retry_backoff_s,
            retry_lost: j.retry_lost,
            jitter_s: j.jitter_s,
            not_before: j.not_before.map(iso8601),
            not_after: j.not_after.map(iso8601),
            max_runs: j.max_runs,
            runs_fired: j.runs_fired,
            keep_succeeded: j.keep_succeeded,
            keep_failed: j.keep_failed,
            after: j.after.clone(),
            after_any: j.after_any,
            grace_s: j.grace_s,
            max_duration_s: j.max_duration_s,
            health: j.health(),
            last_run: j.track.last_run.map(|(id, outcome, finished_at)| LastRunView {
                id,
                outcome,
                finished_at: iso8601(finished_at),
            }),
            last_success_at: j.track.last_success_at.map(iso8601),
            last_failure_at: j.track.last_failure_at.map(iso8601),
            missed_slot: j.track.missed_slot.map(iso8601),
            stuck_run: j.track.stuck_run,
            created_at: iso8601(j.created_at),
            updated_at: iso8601(j.updated_at),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    #[serde(default, deserialize_with = "not_null")]
    schedule_id: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    stack_id: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    enabled: Option<bool>,
    /// `null`: the stack's command.
    #[serde(default, deserialize_with = "nullable")]
    command: Option<Option<String>>,
    /// `null`: no timeout.
    #[serde(default, deserialize_with = "nullable")]
    timeout_s: Option<Option<i64>>,
    #[serde(default, deserialize_with = "not_null")]
    overlap: Option<Overlap>,
    #[serde(default, deserialize_with = "not_null")]
    missed: Option<Missed>,
    #[serde(default, deserialize_with = "not_null")]
    retries: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    retry_backoff_s: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    retry_lost: Option<bool>,
    #[serde(default, deserialize_with = "not_null")]
    jitter_s: Option<i64>,
    /// `null`: no window start.
    #[serde(default, deserialize_with = "nullable_time")]
    not_before: Option<Option<i64>>,
    /// `null`: no window end.
    #[serde(default, deserialize_with = "nullable_time")]
    not_after: Option<Option<i64>>,
    /// `null`: no limit.
    #[serde(default, deserialize_with = "nullable")]
    max_runs: Option<Option<i64>>,
    /// `null`: the server's default (`--keep-succeeded`).
    #[serde(default, deserialize_with = "nullable")]
    keep_succeeded: Option<Option<i64>>,
    /// `null`: the server's default (`--keep-failed`).
    #[serde(default, deserialize_with = "nullable")]
    keep_failed: Option<Option<i64>>,
    /// Job chains: `[]` for none.
    #[serde(default, deserialize_with = "not_null")]
    after: Option<Vec<ChainAfter>>,
    #[serde(default, deserialize_with = "not_null")]
    after_any: Option<bool>,
    /// `null`: the default grace (60 s).
    #[serde(default, deserialize_with = "nullable")]
    grace_s: Option<Option<i64>>,
    /// `null`: no limit.
    #[serde(default, deserialize_with = "nullable")]
    max_duration_s: Option<Option<i64>>,
}

impl From<JobInput> for JobPatch {
    fn from(i: JobInput) -> Self {
        JobPatch {
            stack_id: i.stack_id,
            schedule_id: i.schedule_id,
            name: i.name,
            enabled: i.enabled,
            command: i.command,
            timeout_s: i.timeout_s,
            overlap: i.overlap,
            missed: i.missed,
            retries: i.retries,
            retry_backoff_s: i.retry_backoff_s,
            retry_lost: i.retry_lost,
            jitter_s: i.jitter_s,
            not_before: i.not_before,
            not_after: i.not_after,
            max_runs: i.max_runs,
            keep_succeeded: i.keep_succeeded,
            keep_failed: i.keep_failed,
            after: i.after,
            after_any: i.after_any,
            grace_s: i.grace_s,
            max_duration_s: i.max_duration_s,
        }
    }
}

pub async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PageParam(page, _): Page,
) -> KResult<Response> {
    let memo = s.service.memo();
    let found = s.service.list_jobs(&caller, page_request(page)).await?;
    let body = memo.or_render(("v1 jobs", caller.user_id, page), || {
        let jobs = found.items.iter().map(JobView::from).collect();
        json_bytes(&ListPage { items_key: "jobs", page, count: found.total, items: jobs })
    })?;
    Ok(json_response(body))
}

pub async fn by_id(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Response> {
    let id = id_param(&id, "job")?;
    let memo = s.service.memo();
    let job = s.service.job(&caller, id).await?;
    Ok(json_response(memo.or_render(("v1 job", id, 0), || json_bytes(&JobView::from(&*job)))?))
}

pub async fn by_name(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> KResult<Json<JobView>> {
    let job = s.service.job_by_name(&caller, &name).await?;
    Ok(Json(JobView::from(&*job)))
}

pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<JobInput>,
) -> KResult<Json<Value>> {
    let job = s.service.create_job(&caller, input.into()).await?;
    Ok(Json(json!({ "id": job.id })))
}

pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(input, _): Body<JobInput>,
) -> KResult<Json<JobView>> {
    let job = s.service.update_job(&caller, id_param(&id, "job")?, input.into()).await?;
    Ok(Json(JobView::from(&job)))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<Value>> {
    let id = id_param(&id, "job")?;
    Ok(Json(match s.service.delete_job(&caller, id).await? {
        DeleteOutcome::Deleted => json!({ "deleted": id }),
        DeleteOutcome::QueuedForDeletion => json!({ "queued_for_deletion": id }),
    }))
}
