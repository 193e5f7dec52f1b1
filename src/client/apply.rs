//! Configuration as code: `cronstack apply -f FILE` makes the server match a declarative file
//! of stacks, schedules and jobs (matched by name), and `cronstack export` writes the caller's
//! configuration in that format, so `export | apply` reproduces it elsewhere.
//!
//! The file (YAML, or JSON, which is YAML too):
//!
//! ```yaml
//! stacks:
//!   - name: backup
//!     command: echo backing up "$TARGET" "$@"
//!     env: {TARGET: /srv}
//!     secret_env: {S3_KEY: {from_env: S3_KEY}}   # the value from the applying shell
//! schedules:
//!   - name: nightly
//!     cron: "0 3 * * *"
//!     timezone: Europe/Paris                     # or `every: 5m` / `at: 2027-01-01T00:00:00Z`
//! jobs:
//!   - name: nightly-backup
//!     stack: backup
//!     schedule: nightly                          # or inline: cron / timezone / every / at
//!     retries: 2                                 # any v1 job field, by its v1 name
//!   - name: verify
//!     stack: backup
//!     after: [{job: nightly-backup, on: success}] # a chain, by name; no schedule: chain-only
//! ```
//!
//! Rules: the whole file is checked first (YAML, names, rules and cron expressions, each
//! error with its line); a refusal by the server stops the apply there, and the next apply
//! goes on from what was done. A field left out is left as the server has it (a job created without `enabled` is
//! enabled); a secret variable's value is sent when the name is new on the server (values
//! cannot be read back to compare), a name the file no longer lists is removed; an inline
//! schedule is the schedule named after its job. `--prune` deletes the jobs, and then the
//! schedules and stacks no remaining job uses, that the file does not name. The plan is printed first (`+` create, `~` change with
//! `old → new`, `-` delete); `--dry-run` stops there and exits 2 when something would change.
//! Chains name upstream jobs of the file or the server; jobs are applied upstream first, and an
//! unknown name or a cycle is refused before anything changes.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use super::api::Api;
use super::{Exit, Output, api_err};
use crate::api::v1::{Created, Deleted, JobDeleted, JobView, Listed, ScheduleView, StackJob, StackView};
use crate::domain::{ChainAfter, ChainOn, ScheduleConfig};

#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file's text, so that errors found against the server can name their line too.
    #[serde(skip)]
    source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<StackSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobSpec>,
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    pub name: String,
    pub command: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_env: BTreeMap<String, SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_method: Option<String>,
}

/// Where a secret value comes from: a variable of the environment `apply` runs in.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub from_env: String,
}

/// A cron expression (with its zone), a period (seconds, or a duration such as `5m`), or one
/// instant (RFC 3339, or Unix seconds): the fields a schedule and an inline job rule share.
/// (They are spelled out in each file type, as `deny_unknown_fields` cannot see through a
/// flattened struct.)
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rule {
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub every: Option<Value>,
    pub at: Option<Value>,
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Value>,
}

/// A job: its stack and schedule by name (or an inline rule), and any v1 job field. A field
/// given as `null` means what `null` means in the API ("none" / the server's default).
#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    pub stack: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Upstream jobs by name (a chain): `[]` removes the chain, left out leaves it as it is.
    /// With no schedule and no inline rule, the job runs only after them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<AfterSpec>>,
    // The v1 job fields `apply` sets and `export` writes (the job object's own names).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub command: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub missed: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub retries: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub retry_backoff_s: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub retry_lost: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub jitter_s: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub max_runs: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub keep_succeeded: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub keep_failed: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub grace_s: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub max_duration_s: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub after_any: Option<Value>,
}

/// One upstream job of a chain, by name; `on` is `success` unless given.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AfterSpec {
    pub job: String,
    #[serde(default = "on_success")]
    pub on: ChainOn,
}

fn on_success() -> ChainOn {
    ChainOn::Success
}

/// A chain as the plan prints it: `extract, load:failure` (`on` shown unless success), or `none`.
fn show_after(after: &[(String, ChainOn)]) -> String {
    if after.is_empty() {
        return "none".into();
    }
    let entries: Vec<String> = after
        .iter()
        .map(|(job, on)| if *on == ChainOn::Success { job.clone() } else { format!("{job}:{on}") })
        .collect();
    entries.join(", ")
}

/// The keys of [`JobSpec`] that are not v1 job fields.
const JOB_STRUCTURE: [&str; 9] =
    ["name", "stack", "schedule", "cron", "timezone", "every", "at", "enabled", "after"];

/// A field given (`null` included) is `Some`; a field left out is `None` (serde's default).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl JobSpec {
    /// The v1 job fields the file gives, by name.
    fn fields(&self) -> Map<String, Value> {
        let Ok(Value::Object(mut all)) = serde_json::to_value(self) else { return Map::new() };
        all.retain(|k, _| !JOB_STRUCTURE.contains(&k.as_str()));
        all
    }

    fn rule(&self) -> Rule {
        Rule {
            cron: self.cron.clone(),
            timezone: self.timezone.clone(),
            every: self.every.clone(),
            at: self.at.clone(),
        }
    }

    /// A job with `after` and neither a schedule nor an inline rule runs only after its
    /// upstream jobs: the server puts it on the owner's manual schedule.
    fn chain_only(&self) -> bool {
        self.schedule.is_none()
            && !self.rule().is_given()
            && self.after.as_ref().is_some_and(|a| !a.is_empty())
    }

    fn after_pairs(&self) -> Option<Vec<(String, ChainOn)>> {
        self.after.as_ref().map(|a| a.iter().map(|e| (e.job.clone(), e.on)).collect())
    }
}

impl ScheduleSpec {
    fn rule(&self) -> Rule {
        Rule {
            cron: self.cron.clone(),
            timezone: self.timezone.clone(),
            every: self.every.clone(),
            at: self.at.clone(),
        }
    }
}

impl Rule {
    fn is_given(&self) -> bool {
        self.cron.is_some() || self.every.is_some() || self.at.is_some()
    }

    /// The API's `(config, once)`; a cron expression is checked here, before anything is sent.
    fn config(&self) -> Result<(Value, bool), String> {
        match (&self.cron, &self.every, &self.at) {
            (Some(cron), None, None) => {
                let zone = self.timezone.as_deref().unwrap_or("UTC");
                match cronstack_cron::Trigger::cron(cron, zone) {
                    // `H` needs the job's uid: the server checks those.
                    Err(cronstack_cron::ParseError::HashKeyRequired { .. }) | Ok(_) => {}
                    Err(e) => return Err(format!("cron {cron:?}: {e}")),
                }
                // The zone always: the server shows UTC for one left out, so comparing with
                // what was sent would otherwise find a change every time.
                Ok((json!({ "cron": cron, "timezone": zone }), false))
            }
            (None, Some(every), None) if self.timezone.is_none() => {
                let secs = match every {
                    Value::Number(n) => n.as_i64().ok_or("every: a whole number of seconds")?,
                    Value::String(s) => humantime::parse_duration(s)
                        .map_err(|e| format!("every: {s:?}: {e}"))?
                        .as_secs() as i64,
                    _ => return Err("every: seconds, or a duration such as 5m".into()),
                };
                Ok((json!({ "period": secs }), false))
            }
            (None, None, Some(at)) if self.timezone.is_none() => {
                let ts = match at {
                    Value::Number(n) => n.as_i64().ok_or("at: Unix seconds")?,
                    Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                        .map_err(|e| format!("at: {s:?} is not RFC 3339: {e}"))?
                        .timestamp(),
                    _ => return Err("at: RFC 3339 or Unix seconds".into()),
                };
                Ok((json!({ "timestamp": ts }), true))
            }
            _ => Err("give one of cron (with an optional timezone), every or at".into()),
        }
    }

    /// The file's rule for a server schedule.
    fn from_schedule(schedule: &ScheduleView) -> Rule {
        match schedule.rule() {
            Some(ScheduleConfig::Cron { expr, timezone }) => {
                Rule { cron: Some(expr), timezone: Some(timezone), ..Rule::default() }
            }
            Some(ScheduleConfig::Period { seconds }) => {
                Rule { every: Some(json!(seconds)), ..Rule::default() }
            }
            Some(ScheduleConfig::Timestamp { unix_seconds }) => Rule {
                at: chrono::DateTime::from_timestamp(unix_seconds, 0).map(|t| json!(t.to_rfc3339())),
                ..Rule::default()
            },
            Some(ScheduleConfig::Manual) | None => Rule::default(),
        }
    }
}

/// Reads a file's text; errors name the line (YAML's own), or the entry and its line.
pub fn parse(text: &str) -> anyhow::Result<Config> {
    let mut config: Config = serde_norway::from_str(text).map_err(|e| anyhow!("{e}"))?;
    config.source = text.to_string();
    let mut errors = Vec::new();
    let mut seen = HashMap::new();
    let line_of = |name: &str| line_of(text, name);
    for s in &config.stacks {
        if seen.insert(("stack", s.name.clone()), ()).is_some() {
            errors.push(format!("{}stack {:?} is named twice", line_of(&s.name), s.name));
        }
    }
    for s in &config.schedules {
        if seen.insert(("schedule", s.name.clone()), ()).is_some() {
            errors.push(format!("{}schedule {:?} is named twice", line_of(&s.name), s.name));
        }
        if let Err(e) = s.rule().config() {
            errors.push(format!("{}schedule {:?}: {e}", line_of(&s.name), s.name));
        }
    }
    for j in &config.jobs {
        if seen.insert(("job", j.name.clone()), ()).is_some() {
            errors.push(format!("{}job {:?} is named twice", line_of(&j.name), j.name));
        }
        match (&j.schedule, j.rule().is_given()) {
            (Some(_), true) => errors.push(format!(
                "{}job {:?}: a schedule by name or an inline rule, not both",
                line_of(&j.name),
                j.name
            )),
            (None, false) if j.chain_only() => {}
            (None, false) => errors.push(format!(
                "{}job {:?}: needs a schedule (by name, or inline cron / every / at), or `after` to run only after other jobs",
                line_of(&j.name),
                j.name
            )),
            (None, true) => {
                if let Err(e) = j.rule().config() {
                    errors.push(format!("{}job {:?}: {e}", line_of(&j.name), j.name));
                }
            }
            (Some(_), false) => {}
        }
        let mut upstream = Vec::new();
        for entry in j.after.iter().flatten() {
            if entry.job == j.name {
                errors.push(format!(
                    "{}job {:?}: a chain cycle: {1} → {1} (a job cannot run after itself)",
                    line_of(&j.name),
                    j.name
                ));
            } else if upstream.contains(&&entry.job) {
                errors.push(format!(
                    "{}job {:?}: after names {:?} twice: one entry per upstream job",
                    line_of(&j.name),
                    j.name,
                    entry.job
                ));
            }
            upstream.push(&entry.job);
        }
    }
    if errors.is_empty() { Ok(config) } else { bail!("{}", errors.join("\n")) }
}

/// `line N: ` for the entry named `name` (its first `name:` line in the file), or nothing.
fn line_of(text: &str, name: &str) -> String {
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches("- ").trim();
            l.strip_prefix("name:").is_some_and(|v| v.trim().trim_matches(['"', '\'']) == name)
        })
        .map(|i| format!("line {}: ", i + 1))
        .unwrap_or_default()
}

/// Whether a server schedule is a manual one (`{"manual": true}`: never fires on its own).
fn is_manual(schedule: &ScheduleView) -> bool {
    matches!(schedule.rule(), Some(ScheduleConfig::Manual))
}

/// One planned change, as printed.
#[derive(Debug, Serialize)]
struct Change {
    op: &'static str,
    kind: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = match self.op {
            "create" => "+",
            "delete" => "-",
            _ => "~",
        };
        write!(f, "{sign} {} {}", self.kind, self.name)?;
        if !self.fields.is_empty() {
            write!(f, ": {}", self.fields.join(", "))?;
        }
        Ok(())
    }
}

/// `old → new` for each field of `want` that the server's view `have` shows otherwise (the
/// file's fields are the view's, by name).
fn differences<T: Serialize>(have: &T, want: &Map<String, Value>) -> Vec<String> {
    let shown = match serde_json::to_value(have) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    want.iter()
        .map(|(k, v)| (k, v, shown.get(k).unwrap_or(&Value::Null)))
        .filter(|(_, v, had)| !same(had, v))
        .map(|(k, v, had)| format!("{k} {} → {}", short(had), short(v)))
        .collect()
}

/// Equal as JSON, or as the same instant when both are times.
fn same(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let instant = |v: &Value| v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    matches!((instant(a), instant(b)), (Some(x), Some(y)) if x == y)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}…", s.chars().take(59).collect::<String>()) } else { s }
}

/// What the server has, by name.
struct Current {
    stacks: HashMap<String, StackView<StackJob>>,
    schedules: HashMap<String, ScheduleView>,
    jobs: HashMap<String, JobView>,
    /// Every schedule by id (unnamed ones included), for the jobs' inline rules.
    schedules_by_id: HashMap<i64, ScheduleView>,
}

async fn current(api: &Api) -> anyhow::Result<Current> {
    // The list holds other users' public stacks too: they are not the caller's to apply to.
    let me = api.me().await.map_err(api_err)?;
    let stacks: Vec<Listed> = api.all("/blockstacks", "stacks").await.map_err(api_err)?;
    let stacks = stacks
        .into_iter()
        .filter_map(|s| match s {
            Listed::Own(s) if s.owner == me.user_id => Some((s.name.clone(), *s)),
            _ => None,
        })
        .collect();
    let schedules: Vec<ScheduleView> = api.all("/schedules", "schedules").await.map_err(api_err)?;
    let jobs: Vec<JobView> = api.all("/jobs", "jobs").await.map_err(api_err)?;
    let schedules_by_id = schedules.iter().map(|s| (s.id, s.clone())).collect();
    Ok(Current {
        stacks,
        schedules: schedules.into_iter().filter_map(|s| Some((s.name.clone()?, s))).collect(),
        jobs: jobs.into_iter().filter_map(|j| Some((j.name.clone()?, j))).collect(),
        schedules_by_id,
    })
}

/// The plan's steps, carried out in order by [`execute`]. Schedules are known by a key
/// (`s:NAME` for a named one, `j:JOB` for a job's inline one), their ids as steps create them.
enum Step {
    Stack {
        id: Option<i64>,
        name: String,
        body: Value,
    },
    /// Create (`old: None`), or replace `old` by a new schedule that takes over its jobs.
    Schedule {
        key: String,
        old: Option<i64>,
        moving: Vec<i64>,
        body: Value,
    },
    /// `schedule`: a key, or `None` to send none (the server's manual schedule for a new job,
    /// the one it is on for another); `after`: upstream jobs by name, their ids found then.
    Job {
        id: Option<i64>,
        name: String,
        stack: String,
        schedule: Option<String>,
        after: Option<Vec<(String, ChainOn)>>,
        body: Map<String, Value>,
    },
    DeleteJob {
        id: i64,
    },
    DeleteSchedule {
        id: i64,
    },
    DeleteStack {
        id: i64,
    },
}

/// The schedule key of the owner's manual schedule (`{"manual": true}`, unnamed).
const MANUAL: &str = "m:";

/// A server job's `after`, by name.
fn server_after(job: &JobView, names: &HashMap<i64, &str>) -> Vec<(String, ChainOn)> {
    job.after.iter().filter_map(|e| Some((names.get(&e.job_id)?.to_string(), e.on))).collect()
}

/// The file's jobs in the order to apply them: upstream jobs before the jobs that run after
/// them (else in the file's order). Checked first, before anything changes: every upstream
/// name is a job of the file or of the server (one --prune keeps), and the chains as they will
/// be once applied — the file's, and the server's for the jobs the file leaves alone — have
/// no cycle (named in the order runs flow, as the server does).
fn chain_order(
    config: &Config,
    now: &Current,
    prune: bool,
    job_names: &HashMap<i64, &str>,
) -> anyhow::Result<Vec<usize>> {
    let in_file: HashMap<&str, usize> =
        config.jobs.iter().enumerate().map(|(i, j)| (j.name.as_str(), i)).collect();
    let mut upstream: HashMap<String, Vec<String>> = HashMap::new();
    for (name, job) in &now.jobs {
        if !prune || in_file.contains_key(name.as_str()) {
            upstream.insert(name.clone(), server_after(job, job_names).into_iter().map(|(n, _)| n).collect());
        }
    }
    for j in &config.jobs {
        let Some(after) = &j.after else { continue };
        for e in after {
            let line = line_of(&config.source, &j.name);
            if !in_file.contains_key(e.job.as_str()) {
                match now.jobs.contains_key(&e.job) {
                    false => bail!(
                        "{line}job {:?}: after {:?}: no job of that name in the file or on the server",
                        j.name,
                        e.job
                    ),
                    true if prune => bail!(
                        "{line}job {:?}: after {:?}, a job the file does not name, which --prune would delete: add it to the file",
                        j.name,
                        e.job
                    ),
                    true => {}
                }
            }
        }
        upstream.insert(j.name.clone(), after.iter().map(|e| e.job.clone()).collect());
    }
    // Depth first along `after` (towards upstream jobs): a job met again on the path closes a cycle.
    fn visit<'a>(
        name: &'a str,
        upstream: &'a HashMap<String, Vec<String>>,
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Result<(), String> {
        if done.contains(&name) {
            return Ok(());
        }
        if let Some(at) = path.iter().position(|p| *p == name) {
            // `path` runs downstream → upstream; runs flow the other way.
            let mut cycle: Vec<&str> = path[at..].to_vec();
            cycle.reverse();
            cycle.push(cycle[0]);
            return Err(cycle.join(" → "));
        }
        path.push(name);
        for u in upstream.get(name).into_iter().flatten() {
            visit(u, upstream, path, done)?;
        }
        path.pop();
        done.push(name);
        Ok(())
    }
    let mut done = Vec::new();
    for j in &config.jobs {
        visit(&j.name, &upstream, &mut Vec::new(), &mut done).map_err(|cycle| {
            let members: Vec<&str> = cycle.split(" → ").collect();
            let given = |n: &str| config.jobs.iter().any(|j| j.name == n && j.after.is_some());
            // Named by a job of the cycle whose after the file gives (its line), else this one.
            let at = members.iter().copied().find(|n| given(n)).unwrap_or(&j.name);
            // A job whose after the file leaves out keeps the server's: say which, as the
            // cycle may come from there.
            let mut kept: Vec<String> =
                members.iter().filter(|n| !given(n)).map(|n| format!("{n:?}")).collect();
            kept.sort();
            kept.dedup();
            let hint = if kept.is_empty() {
                String::new()
            } else {
                format!(" (the server's after for {}, which the file leaves as it is)", kept.join(", "))
            };
            anyhow!("{}job {at:?}: a chain cycle: {cycle}{hint}", line_of(&config.source, at))
        })?;
    }
    // `done` holds upstream jobs before their downstream ones; the file's jobs, in that order.
    Ok(done.into_iter().filter_map(|n| in_file.get(n).copied()).collect())
}

/// The changes to print, the steps to take, notes, and the schedule keys known so far.
type Plan = (Vec<Change>, Vec<Step>, Vec<String>, HashMap<String, Option<i64>>);

fn plan(config: &Config, now: &Current, prune: bool) -> anyhow::Result<Plan> {
    let (mut changes, mut steps, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for s in &config.stacks {
        let mut body = Map::new();
        body.insert("command".into(), json!(s.command));
        body.insert("env".into(), json!(s.env));
        body.insert("workdir".into(), json!(s.workdir));
        if let Some(w) = &s.webhook {
            body.insert("webhook".into(), json!(w));
        }
        if let Some(m) = &s.webhook_method {
            body.insert("webhook_method".into(), json!(m));
        }
        let have = now.stacks.get(&s.name);
        let known: Vec<&str> =
            have.map(|h| h.secret_env.iter().map(String::as_str).collect()).unwrap_or_default();
        let mut secrets = Map::new();
        for (name, source) in &s.secret_env {
            if !known.contains(&name.as_str()) {
                let value = std::env::var(&source.from_env).map_err(|_| {
                    anyhow!(
                        "stack {:?}: secret {name} comes from ${}, which is not set",
                        s.name,
                        source.from_env
                    )
                })?;
                secrets.insert(name.clone(), json!(value));
            }
        }
        for name in known.iter().filter(|n| !s.secret_env.contains_key(**n)) {
            secrets.insert(name.to_string(), Value::Null);
        }
        let mut fields = match have {
            Some(h) => differences(h, &body),
            None => Vec::new(),
        };
        fields.extend(
            secrets
                .iter()
                .map(|(k, v)| format!("secret_env.{k} {}", if v.is_null() { "removed" } else { "set" })),
        );
        if !secrets.is_empty() {
            body.insert("secret_env".into(), Value::Object(secrets));
        }
        match have {
            None => {
                body.insert("name".into(), json!(s.name));
                changes.push(Change {
                    op: "create",
                    kind: "stack",
                    name: s.name.clone(),
                    fields: Vec::new(),
                });
                steps.push(Step::Stack { id: None, name: s.name.clone(), body: Value::Object(body) });
            }
            Some(h) if !fields.is_empty() => {
                changes.push(Change { op: "update", kind: "stack", name: s.name.clone(), fields });
                steps.push(Step::Stack { id: Some(h.id), name: s.name.clone(), body: Value::Object(body) });
            }
            Some(_) => {}
        }
    }
    // Named schedules (key `s:NAME`), then the jobs' inline ones (key `j:JOB`: the job's own
    // schedule — one only it uses, unnamed or named after it — else one named after it).
    let users = |id: i64| now.jobs.values().filter(|j| j.schedule == id).count();
    let mut keys: HashMap<String, Option<i64>> = HashMap::new();
    let mut wanted: Vec<(String, String, Rule, Option<&ScheduleView>)> = Vec::new();
    for sp in &config.schedules {
        wanted.push((format!("s:{}", sp.name), sp.name.clone(), sp.rule(), now.schedules.get(&sp.name)));
    }
    for j in config.jobs.iter().filter(|j| j.schedule.is_none() && !j.chain_only()) {
        let current = now.jobs.get(&j.name).and_then(|h| now.schedules_by_id.get(&h.schedule));
        let own =
            current.filter(|s| users(s.id) == 1 && s.name.as_deref().is_none_or(|n| n == j.name.as_str()));
        let have = own.or_else(|| now.schedules.get(&j.name).filter(|s| users(s.id) == 0));
        wanted.push((format!("j:{}", j.name), j.name.clone(), j.rule(), have));
    }
    for (key, name, rule, have) in wanted {
        let (config_value, once) = rule.config().map_err(|e| anyhow!("schedule {name:?}: {e}"))?;
        let mut want = Map::new();
        want.insert("config".into(), config_value);
        want.insert("once".into(), json!(once));
        match have {
            None => {
                want.insert("name".into(), json!(name));
                keys.insert(key.clone(), None);
                changes.push(Change { op: "create", kind: "schedule", name, fields: Vec::new() });
                steps.push(Step::Schedule { key, old: None, moving: Vec::new(), body: Value::Object(want) });
            }
            Some(h) => {
                keys.insert(key.clone(), Some(h.id));
                let fields = differences(h, &want);
                if !fields.is_empty() {
                    // A schedule jobs use cannot change: a new one takes over their jobs.
                    let moving: Vec<i64> =
                        now.jobs.values().filter(|j| j.schedule == h.id).map(|j| j.id).collect();
                    want.insert("name".into(), json!(h.name));
                    changes.push(Change { op: "update", kind: "schedule", name, fields });
                    steps.push(Step::Schedule { key, old: Some(h.id), moving, body: Value::Object(want) });
                }
            }
        }
    }
    let wanted_schedules: Vec<i64> = keys.values().flatten().copied().collect();
    // The schedule each job of the file ends up on, where known: what --prune keeps.
    let mut planned_schedules: Vec<i64> = Vec::new();
    // The owner's manual schedule (the oldest unnamed one, as the server picks it), for a job
    // that becomes chain-only; created by the plan if none exists yet.
    let manual =
        now.schedules_by_id.values().filter(|s| s.name.is_none() && is_manual(s)).map(|s| s.id).min();
    let job_names = job_names(now);
    for j in chain_order(config, now, prune, &job_names)?.into_iter().map(|i| &config.jobs[i]) {
        if !now.stacks.contains_key(&j.stack) && !config.stacks.iter().any(|s| s.name == j.stack) {
            bail!("job {:?}: no stack named {:?} in the file or on the server", j.name, j.stack);
        }
        let have = now.jobs.get(&j.name);
        let current_schedule = have.and_then(|h| now.schedules_by_id.get(&h.schedule));
        let schedule = match &j.schedule {
            Some(name) => {
                let key = format!("s:{name}");
                if !keys.contains_key(&key) {
                    let id = now.schedules.get(name).map(|s| s.id).ok_or_else(|| {
                        anyhow!("job {:?}: no schedule named {name:?} in the file or on the server", j.name)
                    })?;
                    keys.insert(key.clone(), Some(id));
                }
                Some(key)
            }
            // Chain-only: created without a schedule (the server picks the manual one); one
            // already on a manual schedule stays there, one on another moves to the manual one.
            None if j.chain_only() => match current_schedule {
                Some(s) if is_manual(s) => None,
                None => None,
                Some(_) => {
                    if !keys.contains_key(MANUAL) {
                        keys.insert(MANUAL.into(), manual);
                        if manual.is_none() {
                            steps.push(Step::Schedule {
                                key: MANUAL.into(),
                                old: None,
                                moving: Vec::new(),
                                body: json!({ "config": { "manual": true } }),
                            });
                        }
                    }
                    Some(MANUAL.to_string())
                }
            },
            None => Some(format!("j:{}", j.name)),
        };
        let planned = match &schedule {
            Some(key) => keys[key],
            None => current_schedule.map(|s| s.id),
        };
        planned_schedules.extend(planned);
        let after = j.after_pairs();
        let mut want = j.fields();
        let mut fields = match have {
            Some(h) => differences(h, &want),
            None => Vec::new(),
        };
        if let Some(h) = have {
            let stack_name = now.stacks.values().find(|s| s.id == h.stack).map(|s| s.name.as_str());
            if stack_name != Some(j.stack.as_str()) {
                fields.push(format!(
                    "stack {} → {:?}",
                    stack_name.map_or("?".into(), |n| format!("{n:?}")),
                    j.stack
                ));
            }
            match schedule.as_ref().map(|key| (key, keys[key])) {
                None => {}
                Some((_, Some(id))) if id == h.schedule => {}
                Some((key, _)) if key == MANUAL => {
                    fields.push("schedule → none (runs only after others)".into())
                }
                Some((key, Some(_))) => fields.push(format!("schedule → {:?}", &key[2..])),
                Some((key, None)) => fields.push(format!("schedule → {:?} (new)", &key[2..])),
            }
            if let Some(after) = &after {
                let had = server_after(h, &job_names);
                let sorted = |list: &[(String, ChainOn)]| {
                    let mut l: Vec<(String, &str)> =
                        list.iter().map(|(n, on)| (n.clone(), on.as_str())).collect();
                    l.sort();
                    l
                };
                // The same upstream jobs in another order are the same chain.
                if sorted(&had) != sorted(after) {
                    fields.push(format!("after {} → {}", show_after(&had), show_after(after)));
                }
            }
            if let Some(enabled) = j.enabled
                && h.do_run != enabled
            {
                fields.push(format!("enabled {} → {enabled}", h.do_run));
            }
        }
        want.insert("enabled".into(), json!(j.enabled.unwrap_or(true)));
        if have.is_some() && j.enabled.is_none() {
            want.remove("enabled");
        }
        match have {
            None => {
                want.insert("name".into(), json!(j.name));
                changes.push(Change { op: "create", kind: "job", name: j.name.clone(), fields: Vec::new() });
                steps.push(Step::Job {
                    id: None,
                    name: j.name.clone(),
                    stack: j.stack.clone(),
                    schedule,
                    after,
                    body: want,
                });
            }
            Some(h) if !fields.is_empty() => {
                changes.push(Change { op: "update", kind: "job", name: j.name.clone(), fields });
                steps.push(Step::Job {
                    id: Some(h.id),
                    name: j.name.clone(),
                    stack: j.stack.clone(),
                    schedule,
                    after,
                    body: want,
                });
            }
            Some(_) => {}
        }
    }
    let wanted_jobs: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
    let mut unlisted_jobs: Vec<(&String, &JobView)> =
        now.jobs.iter().filter(|(n, _)| !wanted_jobs.contains(&n.as_str())).collect();
    unlisted_jobs.sort_by_key(|(n, _)| n.as_str());
    let mut unlisted_schedules: Vec<(&String, &ScheduleView)> =
        now.schedules.iter().filter(|(_, s)| !wanted_schedules.contains(&s.id)).collect();
    unlisted_schedules.sort_by_key(|(n, _)| n.as_str());
    if prune {
        for (name, job) in &unlisted_jobs {
            changes.push(Change { op: "delete", kind: "job", name: name.to_string(), fields: Vec::new() });
            steps.push(Step::DeleteJob { id: job.id });
        }
        // A schedule a job that stays still uses, once applied, is kept (and said).
        for (name, schedule) in &unlisted_schedules {
            let used = planned_schedules.contains(&schedule.id);
            if used {
                notes.push(format!("schedule {name:?} is not in the file but a job uses it: kept"));
            } else {
                changes.push(Change {
                    op: "delete",
                    kind: "schedule",
                    name: name.to_string(),
                    fields: Vec::new(),
                });
                steps.push(Step::DeleteSchedule { id: schedule.id });
            }
        }
        let mut unlisted_stacks: Vec<&String> =
            now.stacks.keys().filter(|n| !config.stacks.iter().any(|s| &&s.name == n)).collect();
        unlisted_stacks.sort();
        // A stack a job that stays still runs is kept (and said); the others go, after the jobs.
        for name in unlisted_stacks {
            let stack = &now.stacks[name];
            let used = config.jobs.iter().any(|j| &j.stack == name);
            if used {
                notes.push(format!("stack {name:?} is not in the file but a job uses it: kept"));
            } else {
                changes.push(Change {
                    op: "delete",
                    kind: "stack",
                    name: name.to_string(),
                    fields: Vec::new(),
                });
                steps.push(Step::DeleteStack { id: stack.id });
            }
        }
    } else if !unlisted_jobs.is_empty() {
        notes.push(format!(
            "{} job(s) on the server are not in the file (--prune deletes them)",
            unlisted_jobs.len()
        ));
    }
    Ok((changes, steps, notes, keys))
}

async fn execute(
    api: &Api,
    now: &Current,
    steps: Vec<Step>,
    keys: HashMap<String, Option<i64>>,
) -> anyhow::Result<()> {
    let mut stack_ids: HashMap<String, i64> = now.stacks.iter().map(|(n, s)| (n.clone(), s.id)).collect();
    let mut schedule_ids: HashMap<String, i64> =
        keys.into_iter().filter_map(|(k, id)| Some((k, id?))).collect();
    let mut job_ids: HashMap<String, i64> = now.jobs.iter().map(|(n, j)| (n.clone(), j.id)).collect();
    for step in steps {
        match step {
            Step::Stack { id: None, name, body } => {
                let created: Created = api
                    .post("/blockstacks", &body)
                    .await
                    .map_err(|e| anyhow!("stack {name:?}: {}", api_err(e)))?;
                stack_ids.insert(name, created.id);
            }
            Step::Stack { id: Some(id), name, body } => {
                api.put::<StackView<i64>, _>(&format!("/blockstacks/{id}"), &body)
                    .await
                    .map_err(|e| anyhow!("stack {name:?}: {}", api_err(e)))?;
            }
            Step::Schedule { key, old, moving, body } => {
                let name = &key[2..];
                let created: Created = api
                    .post("/schedules", &body)
                    .await
                    .map_err(|e| anyhow!("schedule {name:?}: {}", api_err(e)))?;
                let id = created.id;
                for job in moving {
                    api.put::<JobView, _>(&format!("/jobs/{job}"), &json!({ "schedule_id": id }))
                        .await
                        .map_err(|e| anyhow!("moving job {job} to schedule {name:?}: {}", api_err(e)))?;
                }
                if let Some(old) = old {
                    api.delete::<Deleted>(&format!("/schedules/{old}"))
                        .await
                        .map_err(|e| anyhow!("schedule {name:?}: {}", api_err(e)))?;
                }
                schedule_ids.insert(key, id);
            }
            Step::Job { id, name, stack, schedule, after, mut body } => {
                let stack_id = stack_ids
                    .get(&stack)
                    .ok_or_else(|| anyhow!("job {name:?}: stack {stack:?} not created"))?;
                body.insert("stack_id".into(), json!(stack_id));
                if let Some(schedule) = schedule {
                    let schedule_id = schedule_ids
                        .get(&schedule)
                        .ok_or_else(|| anyhow!("job {name:?}: schedule {:?} not created", &schedule[2..]))?;
                    body.insert("schedule_id".into(), json!(schedule_id));
                }
                if let Some(after) = after {
                    // Upstream jobs come first in the plan: each has its id by now.
                    let entries = after
                        .iter()
                        .map(|(job, on)| {
                            let job_id = *job_ids
                                .get(job)
                                .ok_or_else(|| anyhow!("job {name:?}: job {job:?} not created"))?;
                            Ok(ChainAfter { job_id, on: *on })
                        })
                        .collect::<anyhow::Result<Vec<ChainAfter>>>()?;
                    body.insert("after".into(), json!(entries));
                }
                let failed = |e| anyhow!("job {name:?}: {}", api_err(e));
                match id {
                    None => {
                        let created: Created = api.post("/jobs", &body).await.map_err(failed)?;
                        job_ids.insert(name, created.id);
                    }
                    Some(id) => {
                        api.put::<JobView, _>(&format!("/jobs/{id}"), &body).await.map_err(failed)?;
                    }
                }
            }
            Step::DeleteJob { id } => {
                // At once, rather than at the next slot of an enabled job.
                api.delete::<JobDeleted>(&format!("/jobs/{id}?now=1")).await.map_err(api_err)?;
            }
            Step::DeleteSchedule { id } => {
                api.delete::<Deleted>(&format!("/schedules/{id}")).await.map_err(api_err)?;
            }
            Step::DeleteStack { id } => {
                api.delete::<Deleted>(&format!("/blockstacks/{id}")).await.map_err(api_err)?;
            }
        }
    }
    Ok(())
}

/// `cronstack apply`.
pub async fn apply(api: &Api, out: Output, file: &str, prune: bool, dry_run: bool) -> anyhow::Result<()> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the configuration from stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
    };
    let config = parse(&text).map_err(|e| anyhow!("{file}: {e}"))?;
    let now = current(api).await?;
    let (changes, steps, notes, keys) = plan(&config, &now, prune)?;
    for note in &notes {
        eprintln!("note: {note}");
    }
    if out == Output::Json {
        super::output::print_json(&json!({ "dry_run": dry_run, "changes": changes }));
    } else if changes.is_empty() {
        outln!("nothing to change");
    } else {
        for change in &changes {
            outln!("{change}");
        }
    }
    if dry_run {
        // Like diff(1): 2 when something would change, so CI can gate on it.
        return if changes.is_empty() { Ok(()) } else { Err(Exit(2).into()) };
    }
    execute(api, &now, steps, keys).await?;
    if out == Output::Table && !changes.is_empty() {
        outln!("applied {} change(s)", changes.len());
    }
    Ok(())
}

/// `cronstack export`: the caller's stacks, schedules and jobs as an `apply` file.
pub async fn export(api: &Api, json_out: bool) -> anyhow::Result<()> {
    let now = current(api).await?;
    let mut config = Config::default();
    let mut stacks: Vec<&StackView<StackJob>> = now.stacks.values().collect();
    stacks.sort_by_key(|s| s.id);
    for s in stacks {
        let secret_env =
            s.secret_env.iter().map(|n| (n.clone(), SecretRef { from_env: n.clone() })).collect();
        config.stacks.push(StackSpec {
            name: s.name.clone(),
            command: s.command.clone().unwrap_or_default(),
            env: s.env.clone(),
            secret_env,
            workdir: s.workdir.clone(),
            webhook: s.webhook.map(|w| w.to_string()),
            webhook_method: s.webhook.map(|_| s.webhook_method.to_string()),
        });
    }
    let mut jobs: Vec<&JobView> = now.jobs.values().collect();
    jobs.sort_by_key(|j| j.id);
    let mut used_inline = Vec::new();
    let job_names = job_names(&now);
    for j in jobs {
        let name = j.name.clone().unwrap_or_default();
        let stack = now.stacks.values().find(|s| s.id == j.stack).map(|s| s.name.as_str());
        let schedule = now.schedules_by_id.get(&j.schedule);
        let (Some(stack), Some(schedule)) = (stack, schedule) else { continue };
        let after = server_after(j, &job_names);
        // On a manual schedule with upstream jobs: chain-only, written without a schedule.
        let chain_only = is_manual(schedule) && !after.is_empty();
        if is_manual(schedule) && !chain_only {
            eprintln!(
                "note: job {name:?} runs only when run now (a manual schedule, no after): the file format cannot say so, left out"
            );
            continue;
        }
        // A schedule named after its job (or unnamed) goes inline; any other by name.
        let inline = chain_only
            || match schedule.name.as_deref() {
                None => true,
                Some(n) => n == name && now.jobs.values().filter(|o| o.schedule == schedule.id).count() == 1,
            };
        let rule = if chain_only {
            Rule::default()
        } else if inline {
            used_inline.push(schedule.id);
            Rule::from_schedule(schedule)
        } else {
            Rule::default()
        };
        let spec = serde_json::to_value(JobSpec {
            name,
            stack: stack.to_string(),
            schedule: (!inline).then(|| schedule.name.clone().unwrap_or_default()),
            cron: rule.cron,
            timezone: rule.timezone,
            every: rule.every,
            at: rule.at,
            enabled: Some(j.do_run),
            after: (!after.is_empty())
                .then(|| after.into_iter().map(|(job, on)| AfterSpec { job, on }).collect()),
            command: None,
            timeout_s: None,
            overlap: None,
            missed: None,
            retries: None,
            retry_backoff_s: None,
            retry_lost: None,
            jitter_s: None,
            not_before: None,
            not_after: None,
            max_runs: None,
            keep_succeeded: None,
            keep_failed: None,
            grace_s: None,
            max_duration_s: None,
            after_any: None,
        })?;
        // Every job field the server shows that the file format has (the same names), unless null.
        let (Value::Object(mut spec), Value::Object(mut shown)) = (spec, serde_json::to_value(j)?) else {
            bail!("a job and its file entry are JSON objects")
        };
        for field in job_field_names() {
            if let Some(v) = shown.remove(&field).filter(|v| !v.is_null()) {
                spec.insert(field, v);
            }
        }
        config.jobs.push(serde_json::from_value(Value::Object(spec))?);
    }
    let mut schedules: Vec<(&String, &ScheduleView)> = now.schedules.iter().collect();
    schedules.sort_by_key(|(_, s)| s.id);
    for (name, s) in schedules.into_iter().filter(|(_, s)| !used_inline.contains(&s.id)) {
        if is_manual(s) {
            eprintln!("note: schedule {name:?} is a manual one: the file format cannot say so, left out");
            continue;
        }
        let rule = Rule::from_schedule(s);
        config.schedules.push(ScheduleSpec {
            name: name.clone(),
            cron: rule.cron,
            timezone: rule.timezone,
            every: rule.every,
            at: rule.at,
        });
    }
    if json_out {
        super::output::print_json(&config);
    } else {
        super::out!("{}", serde_norway::to_string(&config)?);
    }
    Ok(())
}

/// The server's jobs' names, by id.
fn job_names(now: &Current) -> HashMap<i64, &str> {
    now.jobs.values().filter_map(|j| Some((j.id, j.name.as_deref()?))).collect()
}

/// The v1 job field names a [`JobSpec`] carries.
fn job_field_names() -> Vec<String> {
    let every = JobSpec {
        name: String::new(),
        stack: String::new(),
        schedule: None,
        cron: None,
        timezone: None,
        every: None,
        at: None,
        enabled: None,
        after: None,
        command: Some(Value::Null),
        timeout_s: Some(Value::Null),
        overlap: Some(Value::Null),
        missed: Some(Value::Null),
        retries: Some(Value::Null),
        retry_backoff_s: Some(Value::Null),
        retry_lost: Some(Value::Null),
        jitter_s: Some(Value::Null),
        not_before: Some(Value::Null),
        not_after: Some(Value::Null),
        max_runs: Some(Value::Null),
        keep_succeeded: Some(Value::Null),
        keep_failed: Some(Value::Null),
        grace_s: Some(Value::Null),
        max_duration_s: Some(Value::Null),
        after_any: Some(Value::Null),
    };
    every.fields().keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_line() {
        let err = parse("stacks:\n  - name: a\n    comand: x\n").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        let err = parse("jobs:\n  - name: j\n    stack: a\n  - name: k\n    stack: a\n    cron: '* * * * *'\n    every: 5m\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2: job \"j\": needs a schedule"), "{err}");
        assert!(err.contains("line 4: job \"k\": give one of"), "{err}");
    }

    #[test]
    fn rules_and_fields() {
        let c = parse(
            "jobs:\n  - name: j\n    stack: a\n    every: 1h30m\n    timeout_s: null\n    retries: 2\n",
        )
        .unwrap();
        assert_eq!(c.jobs[0].rule().config().unwrap(), (json!({"period": 5400}), false));
        let fields = c.jobs[0].fields();
        assert_eq!(Value::Object(fields), json!({"timeout_s": null, "retries": 2}));
        assert!(job_field_names().contains(&"keep_failed".to_string()));
        assert!(job_field_names().contains(&"after_any".to_string()));
    }

    #[test]
    fn chains_in_the_file() {
        let c =
            parse("jobs:\n  - name: j\n    stack: a\n    after: [{job: k}, {job: l, on: always}]\n").unwrap();
        assert!(c.jobs[0].chain_only());
        assert_eq!(
            c.jobs[0].after_pairs().unwrap(),
            vec![("k".to_string(), ChainOn::Success), ("l".to_string(), ChainOn::Always)]
        );
        assert_eq!(show_after(&c.jobs[0].after_pairs().unwrap()), "k, l:always");
        let err = parse("jobs:\n  - name: j\n    stack: a\n    after: [{job: j}, {job: k}, {job: k}]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2: job \"j\": a chain cycle: j → j"), "{err}");
        assert!(err.contains("after names \"k\" twice"), "{err}");
        let err = parse("jobs:\n  - name: j\n    stack: a\n    after: []\n").unwrap_err().to_string();
        assert!(err.contains("needs a schedule"), "an empty chain is no chain: {err}");
        let err = parse("jobs:\n  - name: j\n    stack: a\n    after: [{job: k, on: sometimes}]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sometimes"), "{err}");
    }
}
