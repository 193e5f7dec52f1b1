//! `/jobs`: Kragle's job endpoints, plus cronstack's command and policy fields.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, KResult, ListPage, Page, id_param, not_null, nullable, page_request};
use crate::domain::{ChainAfter, Missed, Overlap};
use crate::http::extract::{JsonBody, PageParam, nullable_time};
use crate::http::{AppState, json_bytes, json_response};
use crate::service::{Caller, DeleteOutcome, JobPatch};
use axum::response::Response;

use crate::api::doc::{Created, JobDeleted, JobList, Paging};
use crate::api::v1::JobView;

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    schedule_id: Option<i64>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    stack_id: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    enabled: Option<bool>,
    /// `null`: the stack's command.
    #[serde(default, deserialize_with = "nullable")]
    command: Option<Option<String>>,
    /// `null`: no timeout.
    #[serde(default, deserialize_with = "nullable")]
    timeout_s: Option<Option<i64>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    overlap: Option<Overlap>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    missed: Option<Missed>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    retries: Option<i64>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    retry_backoff_s: Option<i64>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    retry_lost: Option<bool>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    jitter_s: Option<i64>,
    /// `null`: no window start.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "nullable_time")]
    not_before: Option<Option<i64>>,
    /// `null`: no window end.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, deserialize_with = "nullable_time")]
    not_after: Option<Option<i64>>,
    /// `null`: no limit.
    #[serde(default, deserialize_with = "nullable")]
    max_runs: Option<Option<i64>>,
    /// `null`: the server's default (`--keep-succeeded`).
    #[schema(maximum = 100_000)]
    #[serde(default, deserialize_with = "nullable")]
    keep_succeeded: Option<Option<i64>>,
    /// `null`: the server's default (`--keep-failed`).
    #[schema(maximum = 100_000)]
    #[serde(default, deserialize_with = "nullable")]
    keep_failed: Option<Option<i64>>,
    /// Job chains: `[]` for none.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    after: Option<Vec<ChainAfter>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    after_any: Option<bool>,
    /// `null`: the default grace (60 s).
    #[serde(default, deserialize_with = "nullable")]
    grace_s: Option<Option<i64>>,
    /// `null`: no limit.
    #[serde(default, deserialize_with = "nullable")]
    max_duration_s: Option<Option<i64>>,
    /// `false` cancels a queued deletion.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    do_del: Option<bool>,
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
            pending_delete: i.do_del,
        }
    }
}

#[utoipa::path(get, path = "/jobs", summary = "The caller's jobs, 10 per page", params(Paging), responses((status = 200, body = JobList)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PageParam(page, _): Page,
) -> KResult<Response> {
    let memo = s.memo();
    let found = s.service.list_jobs(&caller, page_request(page)).await?;
    let body = memo.or_render(("v1 jobs", caller.user_id, page), || {
        let jobs = found.items.iter().map(JobView::from).collect();
        json_bytes(&ListPage { items_key: "jobs", page, count: found.total, items: jobs })
    })?;
    Ok(json_response(body))
}

#[utoipa::path(get, path = "/jobs/byid/{id}", summary = "One job by id", responses((status = 200, body = JobView)))]
pub async fn by_id(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Response> {
    let id = id_param(&id, "job")?;
    let memo = s.memo();
    let job = s.service.job(&caller, id).await?;
    Ok(json_response(memo.or_render(("v1 job", id, 0), || json_bytes(&JobView::from(&*job)))?))
}

#[utoipa::path(get, path = "/jobs/byname/{name}", summary = "One job by name", responses((status = 200, body = JobView)))]
pub async fn by_name(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> KResult<Json<JobView>> {
    let job = s.service.job_by_name(&caller, &name).await?;
    Ok(Json(JobView::from(&*job)))
}

#[utoipa::path(post, path = "/jobs", summary = "Create a job (needs stack_id, and schedule_id unless it runs after other jobs: `after`)", request_body = JobInput, responses((status = 200, body = Created)))]
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<JobInput>,
) -> KResult<Json<Created>> {
    let job = s.service.create_job(&caller, input.into()).await?;
    Ok(Json(Created { id: job.id }))
}

#[utoipa::path(put, path = "/jobs/{id}", summary = "Change a job (partial: omitted fields stay)", request_body = JobInput, responses((status = 200, body = JobView)))]
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(input, _): Body<JobInput>,
) -> KResult<Json<JobView>> {
    let job = s.service.update_job(&caller, id_param(&id, "job")?, input.into()).await?;
    Ok(Json(JobView::from(&job)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    now: Option<String>,
    schedule: Option<String>,
}

fn flag(value: Option<&str>) -> bool {
    matches!(value, Some("1" | "true" | "yes"))
}

/// Kragle's delete (an enabled job at its next slot); `?now=1` deletes it at once;
/// `?schedule=1` takes the job's schedule along when the job goes, if no other job uses it
/// (`deleted_schedule`: it went; `with_schedule`: it goes with the job, if still unused).
#[utoipa::path(delete, path = "/jobs/{id}", summary = "Delete a job; an enabled one is queued for deletion at its next slot (cancelled by PUT {\"do_del\": false}), unless now=1; with schedule=1 the job's schedule goes with the job (now or at that slot) if no other job uses it then", params(DeleteQuery), responses((status = 200, body = JobDeleted)))]
pub async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> KResult<Json<Value>> {
    let id = id_param(&id, "job")?;
    let (now, schedule) = (flag(q.now.as_deref()), flag(q.schedule.as_deref()));
    Ok(Json(match s.service.delete_job(&caller, id, now, schedule).await? {
        DeleteOutcome::Deleted { schedule: None } => json!({ "deleted": id }),
        DeleteOutcome::Deleted { schedule: Some(sid) } => json!({ "deleted": id, "deleted_schedule": sid }),
        DeleteOutcome::QueuedForDeletion { schedule: None } => json!({ "queued_for_deletion": id }),
        DeleteOutcome::QueuedForDeletion { schedule: Some(sid) } => {
            json!({ "queued_for_deletion": id, "with_schedule": sid })
        }
    }))
}
