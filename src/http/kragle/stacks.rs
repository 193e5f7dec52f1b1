//! `/blockstacks`: Kragle's stacks, which in cronstack hold the command their jobs run.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Body, KResult, Page, id_param, list_page, not_null, nullable, page_request};
use crate::domain::{HookAccess, HookMethod, Stack, iso8601};
use crate::http::AppState;
use crate::http::extract::{JsonBody, PageParam};
use crate::service::{Caller, SecretChanges, Service, ServiceResult, StackPatch};
use axum::response::Response;

#[derive(Serialize)]
pub struct StackJob {
    id: i64,
    name: Option<String>,
    do_run: bool,
    /// Kragle shows the job's schedule config here.
    schedule: Value,
}

#[derive(Serialize)]
pub struct StackView<J> {
    id: i64,
    uid: String,
    owner: i64,
    name: String,
    command: String,
    env: BTreeMap<String, String>,
    /// Names only, sorted: secret values are never shown.
    secret_env: Vec<String>,
    workdir: Option<String>,
    webhook: Option<HookAccess>,
    webhook_method: HookMethod,
    webhook_token: Option<String>,
    jobs: Vec<J>,
    created_at: String,
    updated_at: String,
}

fn view<J>(s: Stack, jobs: Vec<J>) -> StackView<J> {
    StackView {
        id: s.id,
        uid: s.uid,
        owner: s.owner,
        name: s.name,
        command: s.command,
        env: s.env,
        secret_env: s.secret_env.names(),
        workdir: s.workdir,
        webhook: s.webhook,
        webhook_method: s.webhook_method,
        webhook_token: s.webhook_token,
        jobs,
        created_at: iso8601(s.created_at),
        updated_at: iso8601(s.updated_at),
    }
}

/// The stack with its jobs as Kragle lists them (each with its schedule's config).
async fn full_view(service: &Service, caller: &Caller, stack: Stack) -> ServiceResult<StackView<StackJob>> {
    let mut jobs = Vec::new();
    for job in service.all_stack_jobs(&stack).await? {
        let schedule = service.schedule(caller, job.schedule_id).await?;
        jobs.push(StackJob {
            id: job.id,
            name: job.name,
            do_run: job.enabled,
            schedule: schedule.config.to_json(),
        });
    }
    Ok(view(stack, jobs))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackInput {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    command: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    env: Option<BTreeMap<String, String>>,
    /// Name → value sets a secret variable, name → `null` removes it, the others stay;
    /// `null`: remove them all.
    #[serde(default, deserialize_with = "nullable")]
    secret_env: Option<Option<SecretChanges>>,
    /// `null`: the server's working directory.
    #[serde(default, deserialize_with = "nullable")]
    workdir: Option<Option<String>>,
    /// `null`: no hook (Kragle's default).
    #[serde(default, deserialize_with = "nullable")]
    webhook: Option<Option<HookAccess>>,
    #[serde(default, deserialize_with = "not_null")]
    webhook_method: Option<HookMethod>,
    #[serde(default, deserialize_with = "not_null")]
    schedule_id: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    enabled: Option<bool>,
}

impl From<StackInput> for StackPatch {
    fn from(i: StackInput) -> Self {
        StackPatch {
            name: i.name,
            command: i.command,
            env: i.env,
            secret_env: i.secret_env,
            workdir: i.workdir,
            webhook: i.webhook,
            webhook_method: i.webhook_method,
            schedule_id: i.schedule_id,
            enabled: i.enabled,
        }
    }
}

pub async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PageParam(page, _): Page,
) -> KResult<Response> {
    let found = s.service.list_stacks(&caller, page_request(page)).await?;
    let mut stacks = Vec::new();
    for stack in found.items {
        stacks.push(full_view(&s.service, &caller, stack).await?);
    }
    Ok(list_page("stacks", page, found.total, stacks))
}

pub async fn by_id(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<StackView<StackJob>>> {
    let stack = s.service.stack(&caller, id_param(&id, "stack")?).await?;
    Ok(Json(full_view(&s.service, &caller, stack).await?))
}

pub async fn by_name(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> KResult<Json<StackView<StackJob>>> {
    let stack = s.service.stack_by_name(&caller, &name).await?;
    Ok(Json(full_view(&s.service, &caller, stack).await?))
}

pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<StackInput>,
) -> KResult<Json<Value>> {
    let id = s.service.create_stack(&caller, input.into()).await?;
    Ok(Json(json!({ "id": id })))
}

/// Kragle's PUT answers the stack with its jobs as a list of ids.
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(input, _): Body<StackInput>,
) -> KResult<Json<StackView<i64>>> {
    let stack = s.service.update_stack(&caller, id_param(&id, "stack")?, input.into()).await?;
    let jobs = s.service.all_stack_jobs(&stack).await?.iter().map(|j| j.id).collect();
    Ok(Json(view(stack, jobs)))
}
