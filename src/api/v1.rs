//! The v1 (Kragle-style) wire types: the objects the API answers with, the webhook and
//! channel payloads carry, and clients (the CLI, the tests) read back — one definition each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::blocks::{BlockState, shell_block};
use crate::domain::monitor::{Monitor, MonitorState, Ping, PingKind};
use crate::domain::{
    ApiToken, ChainAfter, ChannelKind, Delivery, DeliveryStatus, EventKind, Health, HookAccess, HookMethod,
    Job, Missed, Overlap, Run, RunStatus, Schedule, Scope, Stack, TriggerKind, Webhook, iso8601,
};

/// A job as the v1 API shows it: Kragle's fields first, then cronstack's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Job)]
pub struct JobView {
    pub id: i64,
    pub owner: i64,
    pub name: Option<String>,
    pub stack: i64,
    pub schedule: i64,
    pub next_run: Option<String>,
    pub do_run: bool,
    pub do_del: bool,
    pub uid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub command: Option<String>,
    pub timeout_s: Option<i64>,
    pub overlap: Overlap,
    pub missed: Missed,
    pub retries: i64,
    pub retry_backoff_s: i64,
    pub retry_lost: bool,
    pub jitter_s: i64,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub max_runs: Option<i64>,
    pub runs_fired: i64,
    #[schema(maximum = 100_000)]
    pub keep_succeeded: Option<i64>,
    #[schema(maximum = 100_000)]
    pub keep_failed: Option<i64>,
    pub after: Vec<ChainAfter>,
    pub after_any: bool,
    pub grace_s: Option<i64>,
    pub max_duration_s: Option<i64>,
    pub health: Health,
    pub last_run: Option<LastRunView>,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
    /// The first slot of an open missed incident.
    pub missed_slot: Option<String>,
    /// The run of an open stuck incident.
    pub stuck_run: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

/// A job's last finished run (skipped slots aside).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = LastRun)]
pub struct LastRunView {
    pub id: i64,
    pub outcome: RunStatus,
    pub finished_at: String,
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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Run)]
pub struct RunView {
    pub id: i64,
    pub job: i64,
    pub trigger: TriggerKind,
    pub attempt: i64,
    pub scheduled_for: String,
    /// How long after its slot the run was due (the job's `jitter_s`); lateness counts from then.
    pub jitter_ms: i64,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub lateness_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub outcome: RunStatus,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub args: Vec<String>,
    pub node: Option<String>,
    pub log_truncated: bool,
    /// A chained run's upstream runs (`null` for any other run).
    pub upstream_runs: Option<Vec<i64>>,
    /// A pipeline run's steps (`GET /runs/<id>` only; absent for a one-command run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<serde_json::Value>,
}

impl From<&Run> for RunView {
    fn from(r: &Run) -> Self {
        RunView {
            id: r.id,
            job: r.job_id,
            trigger: r.trigger,
            attempt: r.attempt,
            scheduled_for: iso8601(r.scheduled_for),
            jitter_ms: r.due() - r.scheduled_for,
            started_at: r.started_at.map(iso8601),
            finished_at: r.finished_at.map(iso8601),
            lateness_ms: r.lateness_ms(),
            duration_ms: r.started_at.zip(r.finished_at).map(|(s, f)| f - s),
            outcome: r.status,
            exit_code: r.exit_code,
            signal: r.signal,
            args: r.args.clone(),
            node: r.node_id.clone(),
            log_truncated: r.log_truncated,
            upstream_runs: r.chain.as_ref().map(|c| c.upstream_runs.clone()),
            steps: None,
        }
    }
}

/// A monitor as the API shows it. `ping_url` is a path on the server's address; the uuid in
/// it is the only credential a ping needs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Monitor)]
pub struct MonitorView {
    pub id: i64,
    pub owner: i64,
    pub name: String,
    pub state: MonitorState,
    pub ping_url: String,
    pub schedule: Value,
    /// The schedule in words.
    pub description: String,
    pub grace_s: i64,
    pub keep_pings: i64,
    pub last_ping_at: Option<String>,
    pub last_ping_kind: Option<PingKind>,
    /// When the next ping is expected (late after it), while up or late.
    pub next_expected: Option<String>,
    /// When it goes down without a ping, while up or late.
    pub down_after: Option<String>,
    /// When the job it watches said it started, if no result followed yet.
    pub started_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Monitor> for MonitorView {
    fn from(m: &Monitor) -> Self {
        let description = m
            .schedule
            .trigger_for(crate::domain::job_hash_key(&m.uuid))
            .map(|t| t.describe())
            .unwrap_or_default();
        MonitorView {
            id: m.id,
            owner: m.owner,
            name: m.name.clone(),
            state: m.state,
            ping_url: format!("/ping/{}", m.uuid),
            schedule: m.schedule.to_json(),
            description,
            grace_s: m.grace_s,
            keep_pings: m.keep_pings,
            last_ping_at: m.last_ping_at.map(iso8601),
            last_ping_kind: m.last_ping_kind,
            next_expected: m.late_at.map(iso8601),
            down_after: m.down_at.map(iso8601),
            started_at: m.started_at.map(iso8601),
            created_at: iso8601(m.created_at),
            updated_at: iso8601(m.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Ping)]
pub struct PingView {
    pub id: i64,
    pub monitor: i64,
    pub kind: PingKind,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<i64>,
    pub method: String,
    pub user_agent: Option<String>,
    /// The request body's tail (at most 10 KiB), the ping's log.
    pub body: String,
    pub body_truncated: bool,
    pub created_at: String,
}

impl From<&Ping> for PingView {
    fn from(p: &Ping) -> Self {
        PingView {
            id: p.id,
            monitor: p.monitor_id,
            kind: p.kind,
            exit_code: p.exit_code,
            duration_ms: p.duration_ms,
            method: p.method.clone(),
            user_agent: p.user_agent.clone(),
            body: p.body.clone(),
            body_truncated: p.body_truncated,
            created_at: iso8601(p.created_at),
        }
    }
}

/// A schedule as the v1 API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Schedule)]
pub struct ScheduleView {
    pub id: i64,
    pub name: Option<String>,
    pub once: bool,
    pub config: Value,
    /// cronstack: the rule in words.
    pub description: String,
    /// cronstack: the next five fire times from now (ISO-8601 UTC).
    pub upcoming: Vec<String>,
}

impl From<&Schedule> for ScheduleView {
    fn from(s: &Schedule) -> Self {
        ScheduleView {
            id: s.id,
            name: s.name.clone(),
            once: s.once,
            config: s.config.to_json(),
            description: s.config.trigger().map(|t| t.describe()).unwrap_or_default(),
            upcoming: s
                .config
                .trigger()
                .map(|t| {
                    t.upcoming(crate::domain::now_ms(), 5).into_iter().map(crate::domain::iso8601).collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A subscription as the API shows it (the secret never appears after creation).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    pub id: i64,
    pub owner: i64,
    pub url: String,
    pub events: Vec<EventKind>,
    pub stack_id: Option<i64>,
    pub job_id: Option<i64>,
    pub kind: ChannelKind,
    pub name: Option<String>,
    pub monitor_id: Option<i64>,
    /// An email channel's recipients (its `url` is their `mailto:` URL); `null` for the others.
    pub to: Option<Vec<String>>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id,
            owner: w.owner,
            url: w.url.clone(),
            events: w.events.clone(),
            stack_id: w.stack_id,
            job_id: w.job_id,
            kind: w.kind,
            name: w.name.clone(),
            monitor_id: w.monitor_id,
            to: (w.kind == ChannelKind::Email).then(|| crate::webhooks::email::recipients(&w.url)).flatten(),
            created_at: iso8601(w.created_at),
            updated_at: iso8601(w.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Delivery)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook: i64,
    pub event: EventKind,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
    /// The body sent (and signed), as JSON.
    pub payload: Value,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            id: d.id,
            webhook: d.webhook_id,
            event: d.event,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            next_attempt: d.next_attempt_at.filter(|_| d.status == DeliveryStatus::Pending).map(iso8601),
            delivered_at: d.delivered_at.map(iso8601),
            created_at: iso8601(d.created_at),
            payload: serde_json::from_str(&d.payload).unwrap_or(Value::Null),
        }
    }
}

/// An API token as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Token)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        TokenView {
            id: t.id,
            name: t.name.clone(),
            scopes: t.scopes.clone(),
            created_at: iso8601(t.created_at),
        }
    }
}

/// A token just issued: its secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = NewToken)]
pub struct NewTokenView {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub token: String,
    pub created_at: String,
}

/// `GET /tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub count: usize,
    pub tokens: Vec<TokenView>,
}

/// A subscription just created: its signing secret (of a `webhook` kind), shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = WebhookCreated)]
pub struct NewWebhookView {
    pub id: i64,
    pub secret: String,
}

/// A page of a webhook's deliveries (`{count, pagesize, page, deliveries}`, as every v1 list).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    pub count: i64,
    pub deliveries: Vec<DeliveryView>,
}

/// A page of a monitor's pings (`{count, pagesize, page, pings}`, as every v1 list).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PingPage {
    pub count: i64,
    pub pings: Vec<PingView>,
}

/// `GET /whoami`: who the credentials stand for, with what scopes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = WhoAmI)]
pub struct WhoamiView {
    pub user_id: i64,
    pub username: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackJob {
    pub id: i64,
    pub name: Option<String>,
    pub do_run: bool,
    /// Kragle shows the job's schedule config here.
    pub schedule: Value,
}

/// A block as its owner sees it (Kragle's shape).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Block)]
pub struct BlockView {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<BlockState>,
}

/// The stack's blocks (a one-command stack's is one Shell command block); `conversion` and
/// `state` for its owner only.
pub fn block_views(s: &Stack, owner: bool) -> Vec<BlockView> {
    let blocks = match &s.blocks {
        Some(blocks) => blocks.clone(),
        None => vec![shell_block(&s.command)],
    };
    blocks
        .into_iter()
        .map(|b| BlockView {
            id: b.id,
            kind: b.kind.name().to_string(),
            name: b.name,
            conversion: owner.then_some(b.conversion),
            state: owner.then_some(b.state),
        })
        .collect()
}

/// Someone else's public stack (or any public stack without credentials): read-only, without
/// `conversion`, `state`, `jobs` and `webhook_token` (Kragle's unauthenticated shape).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = PublicStack)]
pub struct PublicStackView {
    pub id: i64,
    pub owner: i64,
    pub name: String,
    pub webhook: Option<HookAccess>,
    pub webhook_method: HookMethod,
    pub public: bool,
    pub blocks: Vec<BlockView>,
}

impl From<&Stack> for PublicStackView {
    fn from(s: &Stack) -> Self {
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
}

/// A stack in a listing: its owner's view, or the public one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Listed {
    Own(Box<StackView<StackJob>>),
    Public(PublicStackView),
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackView<J> {
    pub id: i64,
    pub uid: String,
    pub owner: i64,
    pub name: String,
    /// `null` for a pipeline (its commands are in its blocks).
    pub command: Option<String>,
    pub blocks: Vec<BlockView>,
    pub public: bool,
    /// Cloud 66's stack environment; `null`: "production".
    pub environment: Option<String>,
    pub env: BTreeMap<String, String>,
    /// Names only, sorted: secret values are never shown.
    pub secret_env: Vec<String>,
    pub workdir: Option<String>,
    pub webhook: Option<HookAccess>,
    pub webhook_method: HookMethod,
    pub webhook_token: Option<String>,
    pub jobs: Vec<J>,
    pub created_at: String,
    pub updated_at: String,
}

impl<J> StackView<J> {
    /// Its owner's view of a stack, with `jobs` as the caller shows them.
    pub fn new(s: Stack, jobs: Vec<J>) -> Self {
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
}

// ---------------------------------------------------------------------------------------------
// The answers built in place by their handlers (`{"id": N}`, `{"deleted": N}`, a job's
// delete), the dashboard's overview, backfill, the cluster's nodes, block types and a pipeline
// run's steps: typed here too, for the handlers that build them and the CLI that reads them.

/// `POST` of a stack, schedule or job: the new object's id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Created {
    pub id: i64,
}

/// `DELETE` of a stack, schedule or monitor: the id deleted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    pub deleted: i64,
}

/// `DELETE /jobs/<id>`: `deleted` (with `deleted_schedule` when its schedule went with it),
/// or `queued_for_deletion` (an enabled job, at its next slot; `with_schedule` goes along).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobDeleted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_schedule: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_for_deletion: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_schedule: Option<i64>,
}

/// A page of a job's runs (`{count, pagesize, page, runs}`, as every v1 list).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunPage {
    pub count: i64,
    pub runs: Vec<RunView>,
}

/// `POST /jobs/byid/<id>/backfill`: the runs created, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackfillView {
    pub count: usize,
    pub runs: Vec<RunView>,
}

/// `GET /overview`: a page of the caller's jobs as the dashboard lists them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Overview)]
pub struct OverviewView {
    pub count: i64,
    pub page: i64,
    pub pagesize: i64,
    pub jobs: Vec<OverviewJobView>,
    /// Every stack of the caller, by name: the choices of the stack filter.
    pub stacks: Vec<StackRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = OverviewJob)]
pub struct OverviewJobView {
    #[serde(flatten)]
    pub job: JobView,
    pub stack_name: Option<String>,
    /// The schedule in words, as `GET /schedules/byid/<id>` describes it.
    pub schedule_description: Option<String>,
    /// The zone its times are read in: a cron schedule's `timezone`; `null` for a period or
    /// a one-time schedule (UTC).
    pub timezone: Option<String>,
    /// The outcomes of its newest runs (at most 20), newest first.
    pub recent_outcomes: Vec<RunStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackRef {
    pub id: i64,
    pub name: String,
}

/// `GET /nodes`: the cluster's nodes seen in the last hour (fields in the order the answer
/// always had them).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    pub count: usize,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Node)]
pub struct NodeView {
    pub address: String,
    pub id: String,
    pub last_seen: String,
    /// Of the caller's runs only.
    pub running_runs: i64,
    pub started_at: String,
    pub this_node: bool,
}

/// `GET /types`: a block type (`BlockType::describe`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = BlockType)]
pub struct BlockTypeView {
    pub name: String,
    pub description: String,
    pub io: BlockIo,
}

/// A block type's input (an object of field descriptions, or one description) and output.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BlockIo {
    pub input: Value,
    pub output: Value,
}

/// One step of a pipeline run (`RunView::steps`, one per block).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    pub index: i64,
    pub block: i64,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub output: Value,
    pub error: Option<String>,
}

impl RunView {
    /// A pipeline run's steps, typed (`None` for a one-command run, or steps of another shape).
    pub fn step_views(&self) -> Option<Vec<StepView>> {
        self.steps.clone().and_then(|s| serde_json::from_value(s).ok())
    }
}

impl ScheduleView {
    /// The rule, typed (`None` for a config this build cannot read).
    pub fn rule(&self) -> Option<crate::domain::ScheduleConfig> {
        crate::domain::ScheduleConfig::from_json(&self.config).ok()
    }

    /// The zone its times are shown in: its cron's, else `None` (UTC).
    pub fn timezone(&self) -> Option<String> {
        match self.rule() {
            Some(crate::domain::ScheduleConfig::Cron { timezone, .. }) => Some(timezone),
            _ => None,
        }
    }
}

impl Listed {
    pub fn id(&self) -> i64 {
        match self {
            Listed::Own(s) => s.id,
            Listed::Public(s) => s.id,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Listed::Own(s) => &s.name,
            Listed::Public(s) => &s.name,
        }
    }

    pub fn owner(&self) -> i64 {
        match self {
            Listed::Own(s) => s.owner,
            Listed::Public(s) => s.owner,
        }
    }
}

/// `POST /schedules` and `PUT /schedules/<id>`: what is left out stays.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ScheduleRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub once: Option<bool>,
}

/// An error answer, as either dialect phrases it: Kragle's `{code, msg}`, Cloud 66's
/// `{error, error_description}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub msg: Option<Value>,
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub error_description: Option<Value>,
}

/// `POST /authenticate` and `PUT /password`: who is signed in (`code` 0: Kragle's success).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = LoginAnswer)]
pub struct SessionView {
    pub code: i64,
    pub user_id: i64,
}

/// Every v1 error: `{code, msg}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KragleError {
    /// Kragle's fault code: 1 bad parameter, 2 bad JSON, 3 not authenticated, 4 invalid,
    /// 6 not found, 10 stack name taken, 12 name taken, 24 no such stack, 25 no such object,
    /// 26 invalid schedule, 27 schedule in use; cronstack's 28 rate limited, 29 missing
    /// scope, 30 server-side failure.
    pub code: u32,
    /// What went wrong, for a person.
    pub msg: String,
}
