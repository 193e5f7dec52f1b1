//! `/blockstacks`: Kragle's stacks, which in cronstack hold the command their jobs run.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde::Deserialize;
use serde_json::Value;

use super::{Body, KResult, Page, id_param, list_page, not_null, nullable, page_request};
use crate::api::doc::{Created, Deleted, Paging, StackList, TypeList};
use crate::api::v1::{Listed, PublicStackView, StackJob, StackView};
use crate::blocks::ALL_TYPES;
use crate::domain::{HookAccess, HookMethod, Stack};
use crate::http::AppState;
use crate::http::extract::{JsonBody, PageParam};
use crate::service::{Caller, Owned, SecretChanges, Service, ServiceResult, StackPatch, Visible};
use axum::response::Response;

/// The stack with its jobs as Kragle lists them (each with its schedule's config).
async fn full_view(
    service: &Service,
    caller: &Caller,
    stack: Owned<Stack>,
) -> ServiceResult<StackView<StackJob>> {
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
    Ok(StackView::new(stack.into_inner(), jobs))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StackInput {
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    command: Option<String>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    env: Option<BTreeMap<String, String>>,
    /// Name → value sets a secret variable, name → `null` removes it, the others stay;
    /// `null`: remove them all.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>)]
    secret_env: Option<Option<SecretChanges>>,
    /// `null`: the server's working directory.
    #[serde(default, deserialize_with = "nullable")]
    workdir: Option<Option<String>>,
    /// `null`: no hook (Kragle's default).
    #[serde(default, deserialize_with = "nullable")]
    webhook: Option<Option<HookAccess>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    webhook_method: Option<HookMethod>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    schedule_id: Option<i64>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    enabled: Option<bool>,
    /// Kragle's blocks: `[[type, conversion, {"name", "state"}?], …]`.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    blocks: Option<Vec<Value>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    public: Option<bool>,
    /// Kragle's approval flags, accepted: a stack is public when it says `public`.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    needs_approval: Option<bool>,
    /// `null`: the default ("production").
    #[serde(default, deserialize_with = "nullable")]
    environment: Option<Option<String>>,
}

impl From<StackInput> for StackPatch {
    fn from(i: StackInput) -> Self {
        // Nothing here waits for approval: a stack is public when it says so.
        let _ = i.needs_approval;
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
            blocks: i.blocks,
            public: i.public,
            environment: i.environment,
        }
    }
}

/// Public stacks and, with credentials, the caller's own (Kragle's `GET /blockstacks`).
#[utoipa::path(get, path = "/blockstacks", summary = "Public stacks and the caller's own, 10 per page: the caller's with their jobs, blocks' conversions and state; others' public ones read-only without them (without credentials: the public stacks only)", params(Paging), responses((status = 200, body = StackList)))]
pub async fn list(
    State(s): State<AppState>,
    caller: Option<Extension<Caller>>,
    PageParam(page, _): Page,
) -> KResult<Response> {
    let caller = caller.map(|Extension(c)| c);
    let found = s.service.list_visible_stacks(caller.as_ref(), page_request(page)).await?;
    let mut stacks = Vec::new();
    for stack in found.items {
        stacks.push(listed(&s.service, caller.as_ref(), stack).await?);
    }
    Ok(list_page("stacks", page, found.total, stacks))
}

#[utoipa::path(get, path = "/blockstacks/byid/{id}", summary = "One stack with its jobs (someone else's public stack, or any without credentials: read-only, without jobs, conversions, state and webhook_token)", responses((status = 200, body = Listed)))]
pub async fn by_id(
    State(s): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> KResult<Json<Listed>> {
    let caller = caller.map(|Extension(c)| c);
    let stack = s.service.visible_stack(caller.as_ref(), id_param(&id, "stack")?).await?;
    Ok(Json(listed(&s.service, caller.as_ref(), stack).await?))
}

/// A stack as its viewer sees it: whole when it is theirs, else its public view.
async fn listed(service: &Service, caller: Option<&Caller>, stack: Visible<Stack>) -> ServiceResult<Listed> {
    Ok(match (stack, caller) {
        (Visible::Own(stack), Some(c)) => Listed::Own(Box::new(full_view(service, c, stack).await?)),
        (Visible::Own(stack), None) => Listed::Public(PublicStackView::from(&*stack)),
        (Visible::Public(stack), _) => Listed::Public(PublicStackView::from(&stack)),
    })
}

#[utoipa::path(get, path = "/blockstacks/byname/{name}", summary = "One stack by name with its jobs", responses((status = 200, body = StackView<StackJob>)))]
pub async fn by_name(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> KResult<Json<StackView<StackJob>>> {
    let stack = s.service.stack_by_name(&caller, &name).await?;
    Ok(Json(full_view(&s.service, &caller, stack).await?))
}

#[utoipa::path(post, path = "/blockstacks", summary = "Create a stack", request_body = StackInput, responses((status = 200, body = Created)))]
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<StackInput>,
) -> KResult<Json<Created>> {
    let id = s.service.create_stack(&caller, input.into()).await?;
    Ok(Json(Created { id }))
}

/// Kragle's PUT answers the stack with its jobs as a list of ids.
#[utoipa::path(put, path = "/blockstacks/{id}", summary = "Change a stack (partial)", request_body = StackInput, responses((status = 200, body = StackView<i64>)))]
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(input, _): Body<StackInput>,
) -> KResult<Json<StackView<i64>>> {
    let stack = s.service.update_stack(&caller, id_param(&id, "stack")?, input.into()).await?;
    let jobs = s.service.all_stack_jobs(&stack).await?.iter().map(|j| j.id).collect();
    Ok(Json(StackView::new(stack.into_inner(), jobs)))
}

/// Deletes a stack no job uses (409 while one does).
#[utoipa::path(delete, path = "/blockstacks/{id}", summary = "Delete a stack no job uses (409 while one does), with its hook runs and v3 actions", responses((status = 200, body = Deleted)))]
pub async fn delete(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<Deleted>> {
    let id = id_param(&id, "stack")?;
    s.service.delete_stack(&caller, id).await?;
    Ok(Json(Deleted { deleted: id }))
}

/// `GET /types`: the block types a stack's `blocks` may name (no credentials needed).
#[utoipa::path(get, path = "/types", summary = "The block types a stack's blocks may name, with their input and output (no credentials needed)", responses((status = 200, body = TypeList)))]
pub async fn types() -> Response {
    let types: Vec<Value> = ALL_TYPES.iter().map(|t| t.describe()).collect();
    list_page("types", 1, types.len() as i64, types)
}
