//! `/blockstacks`: Kragle's stacks, which in cronstack hold the command their jobs run.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Body, KResult, Page, id_param, list_page, not_null, nullable, page_request};
use crate::blocks::{ALL_TYPES, BlockState, shell_block};
use crate::domain::{HookAccess, HookMethod, Stack, iso8601};
use crate::http::AppState;
use crate::http::extract::{JsonBody, PageParam};
use crate::service::{Caller, Owned, SecretChanges, Service, ServiceResult, StackPatch, Visible};
use axum::response::Response;

#[derive(Serialize)]
pub struct StackJob {
    id: i64,
    name: Option<String>,
    do_run: bool,
    /// Kragle shows the job's schedule config here.
    schedule: Value,
}

/// A block as its owner sees it (Kragle's shape).
#[derive(Serialize)]
pub struct BlockView {
    id: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversion: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<BlockState>,
}

/// The stack's blocks (a one-command stack's is one Shell command block); `conversion` and
/// `state` for its owner only.
fn block_views(s: &Stack, owner: bool) -> Vec<BlockView> {
    let blocks = match &s.blocks {
        Some(blocks) => blocks.clone(),
        None => vec![shell_block(&s.command)],
    };
    blocks
        .into_iter()
        .map(|b| BlockView {
            id: b.id,
            kind: b.kind.name(),
            name: b.name,
            conversion: owner.then_some(b.conversion),
            state: owner.then_some(b.state),
        })
        .collect()
}

/// Someone else's public stack (or any public stack without credentials): read-only, without
/// `conversion`, `state`, `jobs` and `webhook_token` (Kragle's unauthenticated shape).
#[derive(Serialize)]
pub struct PublicStackView {
    id: i64,
    owner: i64,
    name: String,
    webhook: Option<HookAccess>,
    webhook_method: HookMethod,
    public: bool,
    blocks: Vec<BlockView>,
}

fn public_view(s: &Stack) -> PublicStackView {
    PublicStackView {
        id: s.id,
        owner: s.owner,
        name: s.name.clone(),
        webhook: s.webhook,
        webhook_method: s.webhook_method,
        public: s.public,
        blocks: block_views(s, false),
    }
}

/// A stack in a listing: its owner's view, or the public one.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Listed {
    Own(Box<StackView<StackJob>>),
    Public(PublicStackView),
}

#[derive(Serialize)]
pub struct StackView<J> {
    id: i64,
    uid: String,
    owner: i64,
    name: String,
    /// `null` for a pipeline (its commands are in its blocks).
    command: Option<String>,
    blocks: Vec<BlockView>,
    public: bool,
    /// Cloud 66's stack environment; `null`: "production".
    environment: Option<String>,
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
    let blocks = block_views(&s, true);
    StackView {
        id: s.id,
        uid: s.uid,
        owner: s.owner,
        name: s.name,
        command: s.blocks.is_none().then_some(s.command),
        blocks,
        public: s.public,
        environment: s.environment,
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
    Ok(view(stack.into_inner(), jobs))
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
    /// Kragle's blocks: `[[type, conversion, {"name", "state"}?], …]`.
    #[serde(default, deserialize_with = "not_null")]
    blocks: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "not_null")]
    public: Option<bool>,
    /// Kragle's approval flags, accepted: a stack is public when it says `public`.
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
        (Visible::Own(stack), None) => Listed::Public(public_view(&stack)),
        (Visible::Public(stack), _) => Listed::Public(public_view(&stack)),
    })
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
    Ok(Json(view(stack.into_inner(), jobs)))
}

/// `GET /types`: the block types a stack's `blocks` may name (no credentials needed).
pub async fn types() -> Response {
    let types: Vec<Value> = ALL_TYPES.iter().map(|t| t.describe()).collect();
    list_page("types", 1, types.len() as i64, types)
}
