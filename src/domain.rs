//! Plain domain types shared by the store, the service, the engine and both API dialects.
//! No I/O here: parsing, validation and the few pure rules of the model.

use std::collections::BTreeMap;

use cronstack_cron::Trigger;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type EpochMs = i64;
pub type UserId = i64;

pub fn now_ms() -> EpochMs {
    chrono::Utc::now().timestamp_millis()
}

/// Booleans are stored as 0/1 BIGINTs (portable through sqlx's Any driver).
pub fn bool_flag(b: bool) -> i64 {
    i64::from(b)
}

/// A random 32-hex identifier (stack and job `uid`, webhook tokens).
pub fn new_uid() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Generates a string-backed enum with its wire names, parse and display in one place.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
            /// The accepted values, for error messages.
            pub fn choices() -> String {
                [$($wire),+].join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// What a token may do. `public` reads and runs/pauses jobs; `jobs` also changes stacks,
    /// schedules and jobs; `admin` also manages tokens.
    Scope { Public = "public", Jobs = "jobs", Admin = "admin" }
);

impl Scope {
    /// Scopes are levels: each includes the ones below it.
    pub fn rank(self) -> u8 {
        match self {
            Scope::Public => 0,
            Scope::Jobs => 1,
            Scope::Admin => 2,
        }
    }
}

wire_enum!(
    /// What happens to a slot that comes due while the previous run is still going.
    Overlap { Allow = "allow", Forbid = "forbid", Replace = "replace", Queue = "queue" }
);

wire_enum!(
    /// What happens to slots missed while no node was running.
    Missed { Skip = "skip", RunOnce = "run_once", CatchUp = "catch_up" }
);

wire_enum!(
    /// Kragle's webhook access modes for a stack.
    HookAccess { Public = "public", Token = "token", User = "user" }
);

wire_enum!(
    HookMethod { Get = "GET", Post = "POST" }
);

wire_enum!(
    /// Why a run exists.
    TriggerKind { Schedule = "schedule", RunNow = "run_now", Retry = "retry", Webhook = "webhook", Backfill = "backfill", Chain = "chain" }
);

wire_enum!(
    /// Which ends of an upstream job's run trigger a chained job (`after`).
    ChainOn { Success = "success", Failure = "failure", Always = "always" }
);

impl ChainOn {
    /// Whether a run that ended `status` qualifies: `success` a succeeded run, `failure` a
    /// failed, timed out, killed or lost one, `always` either. A skipped slot never does.
    pub fn matches(self, status: RunStatus) -> bool {
        let success = match status {
            RunStatus::Succeeded => true,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Killed | RunStatus::Lost => false,
            RunStatus::Queued | RunStatus::Running | RunStatus::Skipped => return false,
        };
        match self {
            ChainOn::Success => success,
            ChainOn::Failure => !success,
            ChainOn::Always => true,
        }
    }
}

/// One entry of a job's `after`: run after `job_id`'s runs that end as `on` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainAfter {
    pub job_id: i64,
    pub on: ChainOn,
}

/// Why a chained run exists: the upstream runs it consumed (ids, ascending) and the one
/// whose end completed its condition (its id and outcome go to the process's environment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCause {
    pub upstream_runs: Vec<i64>,
    pub run_id: i64,
    pub outcome: RunStatus,
}

wire_enum!(
    /// A run's life: `queued` (claimed, waiting for its instant or a free slot), `running`,
    /// then one of the final states.
    RunStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        TimedOut = "timed_out",
        Killed = "killed",
        Skipped = "skipped",
        Lost = "lost",
    }
);

impl RunStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

wire_enum!(
    /// What an outbound webhook can subscribe to. `job.fail` / `job.backon` are Cloud 66's:
    /// a run fails after the job's previous run succeeded (or it never ran) / a run succeeds
    /// after the previous one failed.
    EventKind {
        RunStarted = "run.started",
        RunSucceeded = "run.succeeded",
        RunFailed = "run.failed",
        RunTimedOut = "run.timed_out",
        JobPaused = "job.paused",
        JobUnpaused = "job.unpaused",
        JobDeleted = "job.deleted",
        JobFail = "job.fail",
        JobBackon = "job.backon",
        JobMissed = "job.missed",
        JobStuck = "job.stuck",
        JobRecovered = "job.recovered",
        MonitorDown = "monitor.down",
        MonitorUp = "monitor.up",
    }
);

impl EventKind {
    /// The event announcing a run's end; `None` for a skipped slot. Killed and lost runs
    /// count as failed (the run's `outcome` tells them apart).
    pub fn for_run_end(status: RunStatus) -> Option<Self> {
        match status {
            RunStatus::Succeeded => Some(EventKind::RunSucceeded),
            RunStatus::TimedOut => Some(EventKind::RunTimedOut),
            RunStatus::Failed | RunStatus::Killed | RunStatus::Lost => Some(EventKind::RunFailed),
            RunStatus::Queued | RunStatus::Running | RunStatus::Skipped => None,
        }
    }
}

wire_enum!(
    /// The asynchronous actions of the Cloud 66 dialect.
    ActionKind {
        RunNow = "job_run_now",
        Pause = "job_pause_handler",
        Unpause = "job_unpause_handler",
        PauseAll = "job_pause_all_handler",
        UnpauseAll = "job_unpause_all_handler",
    }
);

/// Cloud 66's integer job status: what the job's last run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Never run since it was last changed.
    Updated = 0,
    Started = 1,
    Success = 2,
    Failed = 3,
}

impl JobStatus {
    /// The stored code; `None` for a value no version wrote (a corrupt row, not a status).
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(JobStatus::Updated),
            1 => Some(JobStatus::Started),
            2 => Some(JobStatus::Success),
            3 => Some(JobStatus::Failed),
            _ => None,
        }
    }
}

wire_enum!(
    /// A job's health, worst first (see [`Job::health`]).
    Health { Paused = "paused", Stuck = "stuck", Late = "late", Failing = "failing", Ok = "ok" }
);

/// A job's grace when its `grace_s` is null: a slot this late with no run started makes the
/// job `late` (and announces `job.missed`).
pub const DEFAULT_GRACE_S: i64 = 60;

/// What the job's runs and the watcher recorded on the job: its last finished run, and the
/// incidents open on it (`crate::engine::watcher`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobTrack {
    /// The last finished run (skipped slots aside): id, outcome, when it ended.
    pub last_run: Option<(i64, RunStatus, EpochMs)>,
    pub last_success_at: Option<EpochMs>,
    pub last_failure_at: Option<EpochMs>,
    /// An open "missed" incident: the first slot that passed unrun or late past the grace.
    pub missed_slot: Option<EpochMs>,
    /// Whether `job.missed` was announced for it.
    pub missed_announced: bool,
    /// An open "stuck" incident: the run going longer than `max_duration_s`.
    pub stuck_run: Option<i64>,
}

impl RunStatus {
    /// Whether a finished run counts as a failure for the job's health (and `job.fail`).
    pub fn is_failure(self) -> bool {
        matches!(self, RunStatus::Failed | RunStatus::TimedOut | RunStatus::Killed | RunStatus::Lost)
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: Option<String>,
    pub created_at: EpochMs,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: EpochMs,
}

/// A stack's secret env: each variable's value sealed under the server's key (see
/// `crate::secrets`). Shown by name only: its `Debug` prints the names.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedEnv(BTreeMap<String, String>);

impl SealedEnv {
    /// The variables' names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (name, sealed value) pairs, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn insert(&mut self, name: String, sealed: String) {
        self.0.insert(name, sealed);
    }

    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }
}

impl std::fmt::Debug for SealedEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub id: i64,
    pub uid: String,
    pub owner: UserId,
    pub name: String,
    pub command: String,
    pub env: BTreeMap<String, String>,
    /// Never shown but by name; opened only to start a run.
    pub secret_env: SealedEnv,
    pub workdir: Option<String>,
    pub webhook: Option<HookAccess>,
    pub webhook_method: HookMethod,
    pub webhook_token: Option<String>,
    /// `None`: the stack runs its one `command` (as every stack did before pipelines);
    /// `Some`: a pipeline of these blocks (`crate::blocks`).
    pub blocks: Option<Vec<crate::blocks::Block>>,
    /// Listed read-only to every user, and without credentials (Kragle's public stacks).
    pub public: bool,
    /// Cloud 66's `environment` (`None` reads "production").
    pub environment: Option<String>,
    pub created_at: EpochMs,
    pub updated_at: EpochMs,
}

/// A schedule's rule as users write it (Kragle's `config`).
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleConfig {
    Period {
        seconds: i64,
    },
    Timestamp {
        unix_seconds: i64,
    },
    Cron {
        expr: String,
        timezone: String,
    },
    /// `{"manual": true}`: never fires on its own (Dkron's `@manually`) — the schedule of a job
    /// that runs only when run now or after other jobs (chains).
    Manual,
}

/// The longest period a schedule may have: 100 years of 365.25 days. Its slots then always
/// fall before year 10000, so every time shown renders as RFC 3339.
pub const MAX_PERIOD_S: i64 = 3_155_760_000;

impl ScheduleConfig {
    /// Validates a new or changed config from a request: a well-formed one (`from_json`)
    /// that can fire and be shown — a period of at most `MAX_PERIOD_S`, a one-time timestamp
    /// after `now`, a named time zone. The message says what is wrong (Kragle code 26).
    /// Stored configs are read with `from_json` alone: these rules came later, and a
    /// timestamp goes by.
    pub fn from_request(value: &Value, now: EpochMs) -> Result<Self, String> {
        let config = Self::parse(value)?;
        match &config {
            ScheduleConfig::Period { seconds } if *seconds > MAX_PERIOD_S => {
                return Err(format!(
                    "config.period must be at most {MAX_PERIOD_S} seconds (100 years), got {seconds}"
                ));
            }
            ScheduleConfig::Timestamp { unix_seconds } if unix_seconds * 1000 <= now => {
                return Err(format!(
                    "config.timestamp {unix_seconds} ({}) is in the past: a one-time schedule must be in the future",
                    iso8601(unix_seconds * 1000)
                ));
            }
            ScheduleConfig::Cron { timezone, .. } if timezone.is_empty() => {
                return Err(
                    "config.timezone must name a time zone such as \"Europe/Paris\" (or be left out for UTC)"
                        .into(),
                );
            }
            _ => {}
        }
        config.trigger()?;
        Ok(config)
    }

    /// Reads a Kragle `config` object, well-formed and compilable. The message says what is
    /// wrong (Kragle code 26).
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let config = Self::parse(value)?;
        config.trigger()?;
        Ok(config)
    }

    /// The config a Kragle `config` object describes, not yet compiled.
    fn parse(value: &Value) -> Result<Self, String> {
        let obj = value
            .as_object()
            .ok_or("config must be an object such as {\"period\": 60}, {\"timestamp\": 1893456000}, {\"cron\": \"0 3 * * *\", \"timezone\": \"UTC\"} or {\"manual\": true}")?;
        if let Some(key) =
            obj.keys().find(|k| !["period", "timestamp", "cron", "timezone", "manual"].contains(&k.as_str()))
        {
            return Err(format!(
                "unknown config key \"{key}\": use period, timestamp, cron with an optional timezone, or manual"
            ));
        }
        match obj.get("manual") {
            None => {}
            Some(Value::Bool(true)) if obj.len() == 1 => return Ok(ScheduleConfig::Manual),
            Some(Value::Bool(true)) => {
                return Err(
                    "config.manual takes no other key: a manual schedule never fires on its own".into()
                );
            }
            Some(_) => return Err("config.manual must be true (or left out)".into()),
        }
        let int = |key: &str| -> Result<Option<i64>, String> {
            match obj.get(key) {
                None => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or(format!("config.{key} must be an integer")),
            }
        };
        let period = int("period")?;
        let timestamp = int("timestamp")?;
        let cron = match obj.get("cron") {
            None => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => return Err("config.cron must be a string".into()),
        };
        let timezone = match obj.get("timezone") {
            None => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => return Err("config.timezone must be a string".into()),
        };
        let config = match (period, timestamp, cron) {
            (Some(seconds), None, None) => {
                if seconds < 1 {
                    return Err(format!("config.period must be at least 1 second, got {seconds}"));
                }
                ScheduleConfig::Period { seconds }
            }
            (None, Some(unix_seconds), None) => {
                if !(0..=253_402_300_799).contains(&unix_seconds) {
                    return Err(format!(
                        "config.timestamp {unix_seconds} is not a Unix time between 1970 and 9999"
                    ));
                }
                ScheduleConfig::Timestamp { unix_seconds }
            }
            (None, None, Some(expr)) => {
                ScheduleConfig::Cron { expr, timezone: timezone.clone().unwrap_or_else(|| "UTC".into()) }
            }
            (None, None, None) => {
                return Err("config needs one of period, timestamp, cron or manual".into());
            }
            _ => return Err("config takes only one of period, timestamp, cron or manual".into()),
        };
        if timezone.is_some() && !matches!(config, ScheduleConfig::Cron { .. }) {
            return Err("config.timezone applies only to a cron schedule".into());
        }
        Ok(config)
    }

    pub fn to_json(&self) -> Value {
        match self {
            ScheduleConfig::Period { seconds } => serde_json::json!({ "period": seconds }),
            ScheduleConfig::Timestamp { unix_seconds } => {
                serde_json::json!({ "timestamp": unix_seconds })
            }
            ScheduleConfig::Cron { expr, timezone } => {
                serde_json::json!({ "cron": expr, "timezone": timezone })
            }
            ScheduleConfig::Manual => serde_json::json!({ "manual": true }),
        }
    }

    /// The compiled fire-time rule.
    /// The schedule's trigger as any job would have it: an expression with Jenkins' `H` is
    /// compiled with key 0 (whether it can fire never depends on the key) — for checks and
    /// the schedule's own views. A job's slots come from [`ScheduleConfig::trigger_for`].
    pub fn trigger(&self) -> Result<Trigger, String> {
        self.trigger_for(0)
    }

    /// The schedule's trigger for the job whose uid hashes to `hash_key` (see
    /// [`job_hash_key`]): the values its `H` fields pick.
    pub fn trigger_for(&self, hash_key: u64) -> Result<Trigger, String> {
        match self {
            ScheduleConfig::Period { seconds } => {
                Trigger::every(*seconds).map_err(|e| format!("config.period: {e}"))
            }
            ScheduleConfig::Timestamp { unix_seconds } => {
                Ok(Trigger::once(unix_seconds.saturating_mul(1000)))
            }
            ScheduleConfig::Cron { expr, timezone } => {
                Trigger::cron_with_hash_key(expr, timezone, hash_key).map_err(|e| format!("config.cron: {e}"))
            }
            ScheduleConfig::Manual => Ok(Trigger::Never),
        }
    }

    /// Whether the trigger depends on the job (its expression uses `H`).
    pub fn per_job(&self) -> bool {
        matches!(self.trigger(), Ok(Trigger::Cron(c)) if c.hash_key().is_some())
    }

    /// The expression shown by the Cloud 66 dialect's `cron` field.
    pub fn cron_text(&self) -> Option<String> {
        match self {
            ScheduleConfig::Period { seconds } => Some(format!("@every {seconds}s")),
            ScheduleConfig::Timestamp { .. } | ScheduleConfig::Manual => None,
            ScheduleConfig::Cron { expr, .. } => Some(expr.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub id: i64,
    pub owner: UserId,
    pub name: Option<String>,
    /// One-time: a job using it disables itself after it ran.
    pub once: bool,
    pub config: ScheduleConfig,
    pub created_at: EpochMs,
    pub updated_at: EpochMs,
}

/// The only job type so far: a shell command. Cloud 66 calls it `DockerHostTaskJob`.
pub const JOB_KIND_COMMAND: &str = "command";

/// A stack's hook job: created by cronstack on the stack's first hook (or exec) call to record
/// those runs; never scheduled, not listed, not changeable through the API.
pub const JOB_KIND_HOOK: &str = "hook";

#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub uid: String,
    pub owner: UserId,
    pub stack_id: i64,
    pub schedule_id: i64,
    pub name: Option<String>,
    pub kind: String,
    pub command: Option<String>,
    /// Kragle's `do_run`; Cloud 66's `paused` is its negation.
    pub enabled: bool,
    /// Kragle's `do_del`: deleted at its next slot instead of running.
    pub pending_delete: bool,
    /// With `pending_delete`: the job's schedule goes with it, if no other job uses it then.
    pub delete_schedule: bool,
    /// Paused by `pause_all`, so `unpause_all` restores it (and only it).
    pub paused_by_all: bool,
    pub timeout_s: Option<i64>,
    pub overlap: Overlap,
    pub missed: Missed,
    pub retries: i64,
    pub retry_backoff_s: i64,
    /// Whether a run lost with its node is retried (within `retries`). Off for jobs that must
    /// not overlap their own run on a node that was frozen rather than dead.
    pub retry_lost: bool,
    /// Each slot fires up to this many seconds after its time (deterministic per slot).
    pub jitter_s: i64,
    /// Slots outside `[not_before, not_after]` never fire.
    pub not_before: Option<EpochMs>,
    pub not_after: Option<EpochMs>,
    /// After this many scheduled runs the job disables itself.
    pub max_runs: Option<i64>,
    /// Scheduled runs fired since `max_runs` was last set.
    pub runs_fired: i64,
    /// Finished runs kept: the newest this many succeeded ones and this many others (failed,
    /// timed out, killed, lost, skipped). `None`: the server's default.
    pub keep_succeeded: Option<i64>,
    pub keep_failed: Option<i64>,
    /// Job chains: the upstream jobs whose runs trigger this one (all of them, or any with
    /// `after_any`).
    pub after: Vec<ChainAfter>,
    pub after_any: bool,
    /// A slot this late with no run started is missed (`None`: [`DEFAULT_GRACE_S`]).
    pub grace_s: Option<i64>,
    /// A run going longer than this is stuck (`None`: never).
    pub max_duration_s: Option<i64>,
    pub track: JobTrack,
    pub next_run_at: Option<EpochMs>,
    pub last_status: JobStatus,
    pub created_at: EpochMs,
    pub updated_at: EpochMs,
}

impl Job {
    /// Paused (disabled), stuck (a run past `max_duration_s`), late (a slot missed or past
    /// its grace, until a later slot starts on time), failing (the last finished run failed,
    /// timed out, was killed or lost), else ok — from what is stored, so every node and every
    /// cached read agrees.
    pub fn health(&self) -> Health {
        if !self.enabled {
            Health::Paused
        } else if self.track.stuck_run.is_some() {
            Health::Stuck
        } else if self.track.missed_slot.is_some() {
            Health::Late
        } else if self.track.last_run.is_some_and(|(_, status, _)| status.is_failure()) {
            Health::Failing
        } else {
            Health::Ok
        }
    }

    /// The grace in effect, in milliseconds.
    pub fn grace_ms(&self) -> EpochMs {
        self.grace_s.unwrap_or(DEFAULT_GRACE_S) * 1000
    }

    /// Whether this is a stack's hook job (managed by cronstack).
    pub fn is_hook(&self) -> bool {
        self.kind == JOB_KIND_HOOK
    }

    /// The name the command sees as `$0`.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("job-{}", self.id))
    }

    /// Whether `run` of this job, ended `status`, earns a retry: a failure, a timeout or a
    /// loss (unless the job turned retries of lost runs off), within the job's retries; never
    /// a hook's run. A run that earns none is the final attempt (the one chains follow).
    pub fn retries_after(&self, run: &Run, status: RunStatus) -> bool {
        let failed = match status {
            RunStatus::Failed | RunStatus::TimedOut => true,
            RunStatus::Lost => self.retry_lost,
            _ => false,
        };
        failed && run.attempt <= self.retries && run.trigger != TriggerKind::Webhook
    }
}

#[derive(Debug, Clone)]
pub struct Run {
    pub id: i64,
    pub job_id: i64,
    pub owner: UserId,
    pub trigger: TriggerKind,
    pub scheduled_for: EpochMs,
    pub attempt: i64,
    pub args: Vec<String>,
    pub status: RunStatus,
    pub node_id: Option<String>,
    pub started_at: Option<EpochMs>,
    pub finished_at: Option<EpochMs>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub log_truncated: bool,
    pub created_at: EpochMs,
    /// When a scheduled slot was due: its time plus the job's jitter (`None`: the slot's time).
    pub due_at: Option<EpochMs>,
    /// A chained run's upstream runs (also on its retries).
    pub chain: Option<ChainCause>,
}

impl Run {
    /// The instant the run was due: its slot, plus the slot's jitter.
    pub fn due(&self) -> EpochMs {
        self.due_at.unwrap_or(self.scheduled_for)
    }

    /// How late it started, measured from when it was due.
    pub fn lateness_ms(&self) -> Option<i64> {
        self.started_at.map(|s| s - self.due())
    }
}

/// Where a job's slots fall beyond what its schedule says: inside a window, each delayed by a
/// jitter that every node computes alike (and a restart does not move).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotPolicy {
    pub not_before: Option<EpochMs>,
    pub not_after: Option<EpochMs>,
    pub jitter_ms: i64,
    /// A stable hash of the job's uid: the jitter's seed.
    pub seed: u64,
}

impl SlotPolicy {
    pub fn of(job: &Job) -> Self {
        SlotPolicy {
            not_before: job.not_before,
            not_after: job.not_after,
            jitter_ms: job.jitter_s * 1000,
            seed: job_hash_key(&job.uid),
        }
    }

    /// The first slot of `trigger` strictly after `after` that lies inside the window.
    pub fn next_after(&self, trigger: &cronstack_cron::Trigger, after: EpochMs) -> Option<EpochMs> {
        let from = match self.not_before {
            Some(start) if start - 1 > after => start - 1,
            _ => after,
        };
        trigger.next_after(from).filter(|slot| self.not_after.is_none_or(|end| *slot <= end))
    }

    /// When `slot` fires: its time plus a delay in `[0, jitter)` drawn from the job and the slot.
    pub fn due(&self, slot: EpochMs) -> EpochMs {
        if self.jitter_ms <= 0 {
            return slot;
        }
        slot + (mix64(self.seed ^ slot as u64) % self.jitter_ms as u64) as EpochMs
    }
}

/// A job's hash key: FNV-1a of its uid, stable across versions, platforms and nodes. It picks
/// the job's `H` values and seeds its jitter, which every node must agree on.
pub fn job_hash_key(uid: &str) -> u64 {
    cronstack_cron::hash_key(uid)
}

/// SplitMix64's finaliser: spreads nearby inputs (consecutive slots) over the whole range.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug, Clone)]
pub struct Action {
    pub id: i64,
    pub owner: UserId,
    pub stack_id: i64,
    pub kind: ActionKind,
    pub started_via: String,
    pub started_at: EpochMs,
    pub finished_at: Option<EpochMs>,
    pub finished_success: Option<bool>,
    pub finished_message: Option<String>,
    pub finished_result: Option<Value>,
    pub metadata: Map<String, Value>,
    pub run_id: Option<i64>,
}

wire_enum!(
    /// A subscription's (notification channel's) kind: how its deliveries are shaped.
    /// `webhook`: the signed event JSON; the chat kinds: their incoming webhooks' message JSON
    /// (Slack's also serves Mattermost and Rocket.Chat); `email`: a mail through the server's
    /// SMTP settings, its recipients kept as a `mailto:` URL.
    ChannelKind { Webhook = "webhook", Slack = "slack", Discord = "discord", Teams = "teams", Email = "email" }
);

/// An outbound webhook subscription: `events` of the owner's jobs (all of them, or those of
/// one stack and/or one job) are POSTed to `url`, signed with `secret`.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: i64,
    pub owner: UserId,
    pub url: String,
    pub events: Vec<EventKind>,
    pub secret: String,
    pub stack_id: Option<i64>,
    pub job_id: Option<i64>,
    pub kind: ChannelKind,
    pub name: Option<String>,
    /// Narrows to one heartbeat monitor's events (and then none of the jobs').
    pub monitor_id: Option<i64>,
    pub created_at: EpochMs,
    pub updated_at: EpochMs,
}

impl Webhook {
    /// Whether an event of `kind` about `job` goes to this subscription.
    pub fn wants(&self, kind: EventKind, job: &Job) -> bool {
        self.owner == job.owner
            && self.events.contains(&kind)
            && self.monitor_id.is_none()
            && self.stack_id.is_none_or(|s| s == job.stack_id)
            && self.job_id.is_none_or(|j| j == job.id)
    }

    /// Whether a monitor event of `kind` about `monitor` goes to this subscription: one not
    /// narrowed to a stack or job, for all of the owner's monitors or this one.
    pub fn wants_monitor(&self, kind: EventKind, monitor: &monitor::Monitor) -> bool {
        self.owner == monitor.owner
            && self.events.contains(&kind)
            && self.stack_id.is_none()
            && self.job_id.is_none()
            && self.monitor_id.is_none_or(|m| m == monitor.id)
    }
}

wire_enum!(
    /// A delivery's life: `pending` (due at `next_attempt_at`), `delivering` (claimed by a
    /// node), then `delivered` or `failed` (attempts exhausted).
    DeliveryStatus { Pending = "pending", Delivering = "delivering", Delivered = "delivered", Failed = "failed" }
);

/// One event for one subscription, with its attempts.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: EventKind,
    /// The exact body POSTed (and signed).
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<EpochMs>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<EpochMs>,
    pub created_at: EpochMs,
    pub updated_at: EpochMs,
}

/// Formats epoch ms as ISO-8601 UTC (`2026-11-24T10:00:00Z`, with millis when not whole).
pub fn iso8601(ms: EpochMs) -> String {
    use chrono::{SecondsFormat, TimeZone, Utc};
    if let Some(fields) = utc_fields(ms, b'T') {
        let mut text = String::with_capacity(24);
        text.push_str(std::str::from_utf8(&fields).expect("ASCII digits"));
        if ms.rem_euclid(1000) != 0 {
            text.push_str(&format!(".{:03}", ms.rem_euclid(1000)));
        }
        text.push('Z');
        return text;
    }
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) if ms % 1000 == 0 => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// `YYYY-MM-DD<sep>HH:MM:SS` of epoch ms in UTC, for years 0 to 9999: the part every API
/// timestamp starts with, written digit by digit (through `format!` it was a visible share
/// of a job list's time).
pub fn utc_fields(ms: EpochMs, sep: u8) -> Option<[u8; 19]> {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut b = *b"0000-00-00T00:00:00";
    b[10] = sep;
    for (at, width, mut v) in [
        (0, 4, year),
        (5, 2, t.month()),
        (8, 2, t.day()),
        (11, 2, t.hour()),
        (14, 2, t.minute()),
        (17, 2, t.second()),
    ] {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    Some(b)
}

// Heartbeat monitors: after `wire_enum!`, which they use.
pub mod chain;
pub mod monitor;
mod output;
pub use output::parse_output;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_match_chrono_formatting() {
        use chrono::{SecondsFormat, TimeZone, Utc};
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        let mut samples =
            vec![0, -1, 999, 1000, -1000, 1_764_000_000_000, 253_402_300_799_999, -62_167_219_200_000];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Years about 0 to 9999, whole seconds half of the time.
            let ms = x.rem_euclid(315_537_897_600_000) - 62_167_219_200_000;
            samples.push(if x & 1 == 0 { ms - ms.rem_euclid(1000) } else { ms });
        }
        for ms in samples {
            let t = Utc.timestamp_millis_opt(ms).single().unwrap();
            let want = if ms % 1000 == 0 {
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            } else {
                t.to_rfc3339_opts(SecondsFormat::Millis, true)
            };
            assert_eq!(iso8601(ms), want, "{ms}");
            let fields = utc_fields(ms, b' ').unwrap();
            assert_eq!(
                std::str::from_utf8(&fields).unwrap(),
                t.format("%Y-%m-%d %H:%M:%S").to_string(),
                "{ms}"
            );
        }
        assert_eq!(utc_fields(253_402_300_800_000, b'T'), None, "year 10000");
        assert_eq!(iso8601(253_402_300_800_000), "+10000-01-01T00:00:00Z");
    }

    #[test]
    fn schedule_configs_validate_with_clear_messages() {
        assert_eq!(
            ScheduleConfig::from_json(&json!({"period": 60})).unwrap(),
            ScheduleConfig::Period { seconds: 60 }
        );
        assert_eq!(
            ScheduleConfig::from_json(&json!({"cron": "0 3 * * *"})).unwrap(),
            ScheduleConfig::Cron { expr: "0 3 * * *".into(), timezone: "UTC".into() }
        );
        for (bad, needle) in [
            (json!({"period": 0}), "at least 1"),
            (json!({"period": "60"}), "integer"),
            (json!({"every": 5}), "unknown config key"),
            (json!({}), "needs one of"),
            (json!({"period": 5, "cron": "* * * * *"}), "only one"),
            (json!({"cron": "61 * * * *"}), "config.cron"),
            (json!({"cron": "* * * * *", "timezone": "Mars/Base"}), "config.cron"),
            (json!({"period": 5, "timezone": "UTC"}), "only to a cron"),
            (json!([1]), "must be an object"),
        ] {
            let err = ScheduleConfig::from_json(&bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn requested_configs_can_fire_and_render() {
        let now = 1_800_000_000_000;
        for ok in [
            json!({"period": MAX_PERIOD_S}),
            json!({"timestamp": 1_800_000_001}),
            json!({"cron": "0 3 * * *", "timezone": "Europe/Paris"}),
        ] {
            ScheduleConfig::from_request(&ok, now).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, needle) in [
            (json!({"period": MAX_PERIOD_S + 1}), "100 years"),
            (json!({"timestamp": 1_800_000_000}), "in the past"),
            (json!({"timestamp": 0}), "1970-01-01T00:00:00Z"),
            (json!({"cron": "0 3 * * *", "timezone": " "}), "config.timezone"),
            (json!({"period": 0}), "at least 1"),
        ] {
            let err = ScheduleConfig::from_request(&bad, now).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        // What was stored before these rules still reads.
        assert!(ScheduleConfig::from_json(&json!({"timestamp": 0})).is_ok());
        assert!(ScheduleConfig::from_json(&json!({"period": MAX_PERIOD_S + 1})).is_ok());
    }

    #[test]
    fn iso_times() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_500), "1970-01-01T00:00:01.500Z");
    }
}
