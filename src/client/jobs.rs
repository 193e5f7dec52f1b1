//! `cronstack jobs …`: a stack on a schedule.

use std::collections::HashMap;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::api::Api;
use super::output::{Style, Table, cell, local_time, print_fields, print_json, schedule_zone, zoned_time};
use super::parse::human_seconds;
use super::runs::runs_table;
use super::schedules::{Rule, create_schedule};
use super::{Output, api_err, id_of};

/// A job's settings, for create and edit.
#[derive(Args, Debug, Default)]
pub struct JobSettings {
    /// Override the stack's command for this job.
    #[arg(long)]
    command: Option<String>,
    /// How long a run may go before it is stopped (SIGTERM, then SIGKILL): seconds, or a
    /// duration such as 90s, 5m, 1h30m (as every duration here).
    #[arg(long, value_name = "DURATION", value_parser = super::parse::seconds)]
    timeout: Option<i64>,
    /// A slot due while the previous run goes: forbid (skip it), allow, replace.
    #[arg(long, value_parser = ["forbid", "allow", "replace", "queue"])]
    overlap: Option<String>,
    /// Slots missed while no node ran: skip, run_once, catch_up.
    #[arg(long, value_parser = ["skip", "run_once", "catch_up"])]
    missed: Option<String>,
    /// Retries of a failed run.
    #[arg(long)]
    retries: Option<i64>,
    /// Before the first retry (doubling after).
    #[arg(long, value_name = "DURATION", value_parser = super::parse::seconds)]
    retry_backoff: Option<i64>,
    /// Each slot fires up to this much late (the same delay on every node).
    #[arg(long, value_name = "DURATION", value_parser = super::parse::seconds)]
    jitter: Option<i64>,
    /// No slot fires before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    not_before: Option<String>,
    /// No slot fires after this time (RFC 3339); then the job disables itself.
    #[arg(long, value_name = "TIME")]
    not_after: Option<String>,
    /// After this many scheduled runs the job disables itself.
    #[arg(long, value_name = "N")]
    max_runs: Option<i64>,
    /// Run after this job's runs (id or name; `:failure` or `:always` for other ends than
    /// success). Repeatable: with several, the job runs once all of them ran (see --after-any).
    /// On edit, the list given replaces the job's.
    #[arg(long, value_name = "JOB[:success|failure|always]")]
    after: Vec<String>,
    /// Run after each qualifying run of any --after job, instead of once all of them ran.
    #[arg(long)]
    after_any: bool,
    /// How late a slot may be (no run started) before the job is late (default 60s).
    #[arg(long, value_name = "DURATION", value_parser = super::parse::seconds)]
    grace: Option<i64>,
    /// How long a run may go before the job is stuck.
    #[arg(long, value_name = "DURATION", value_parser = super::parse::seconds)]
    max_duration: Option<i64>,
}

/// `JOB[:success|failure|always]` → the job (id or name) and when its runs trigger.
pub(super) fn parse_after(s: &str) -> (&str, &str) {
    match s.rsplit_once(':') {
        Some((job, on)) if ["success", "failure", "always"].contains(&on) && !job.is_empty() => (job, on),
        _ => (s, "success"),
    }
}

impl JobSettings {
    /// The `after` entries, their jobs resolved by id or name; `None` when none were given.
    async fn after_entries(&self, api: &Api) -> anyhow::Result<Option<Value>> {
        if self.after.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for a in &self.after {
            let (job, on) = parse_after(a);
            let id = id_of(&api.job(job).await.map_err(api_err)?)?;
            entries.push(json!({"job_id": id, "on": on}));
        }
        Ok(Some(Value::Array(entries)))
    }

    fn apply(&self, body: &mut Map<String, Value>) {
        if let Some(c) = &self.command {
            body.insert("command".into(), json!(c));
        }
        if let Some(t) = self.timeout {
            body.insert("timeout_s".into(), json!(t));
        }
        if let Some(o) = &self.overlap {
            body.insert("overlap".into(), json!(o));
        }
        if let Some(m) = &self.missed {
            body.insert("missed".into(), json!(m));
        }
        if let Some(r) = self.retries {
            body.insert("retries".into(), json!(r));
        }
        if let Some(b) = self.retry_backoff {
            body.insert("retry_backoff_s".into(), json!(b));
        }
        if let Some(g) = self.grace {
            body.insert("grace_s".into(), json!(g));
        }
        if let Some(d) = self.max_duration {
            body.insert("max_duration_s".into(), json!(d));
        }
        if let Some(j) = self.jitter {
            body.insert("jitter_s".into(), json!(j));
        }
        if let Some(t) = &self.not_before {
            body.insert("not_before".into(), json!(t));
        }
        if let Some(t) = &self.not_after {
            body.insert("not_after".into(), json!(t));
        }
        if let Some(n) = self.max_runs {
            body.insert("max_runs".into(), json!(n));
        }
        if self.after_any {
            body.insert("after_any".into(), json!(true));
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum JobsCmd {
    /// List jobs.
    Ls {
        /// Only this stack's jobs (id or name).
        #[arg(long)]
        stack: Option<String>,
    },
    /// One job: settings, schedule in words, next fire times, recent runs (JOB = id or name).
    Show { job: String },
    /// Create a job (enabled unless --paused). With --cron/--every/--at instead of
    /// --schedule, a schedule named after the job is created for it; with --after and no
    /// schedule, it runs only after those jobs (or when run now).
    Create {
        name: String,
        /// The stack it runs (id or name).
        #[arg(long)]
        stack: String,
        /// An existing schedule (id or name).
        #[arg(long, conflicts_with_all = ["cron", "tz", "every", "at"])]
        schedule: Option<String>,
        #[command(flatten)]
        rule: Rule,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        #[command(flatten)]
        settings: JobSettings,
    },
    /// Change a job (JOB = id or name); what is not given stays. --cron keeps the schedule's
    /// zone unless --tz is given, and --tz alone changes only the zone. A schedule only this
    /// job uses is replaced (under its name), leaving no unused one behind.
    Edit {
        job: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        stack: Option<String>,
        #[arg(long, conflicts_with_all = ["cron", "tz", "every", "at"])]
        schedule: Option<String>,
        #[command(flatten)]
        rule: Rule,
        /// Use the stack's command again.
        #[arg(long, conflicts_with = "command")]
        no_command: bool,
        /// Remove the timeout.
        #[arg(long, conflicts_with = "timeout")]
        no_timeout: bool,
        /// Remove the window (--not-before and --not-after).
        #[arg(long, conflicts_with_all = ["not_before", "not_after"])]
        no_window: bool,
        /// Remove the run limit.
        #[arg(long, conflicts_with = "max_runs")]
        no_max_runs: bool,
        /// Run after no other job any more.
        #[arg(long, conflicts_with_all = ["after", "after_any"])]
        no_after: bool,
        /// Run once all --after jobs ran (undoes --after-any).
        #[arg(long, conflicts_with = "after_any")]
        after_all: bool,
        #[command(flatten)]
        settings: JobSettings,
    },
    /// Stop firing a job on its schedule.
    Pause { job: String },
    /// Fire a job on its schedule again.
    Unpause { job: String },
    /// Delete a job: an enabled one at its next slot instead of running (as in Kragle), unless
    /// --now. It takes its own schedule (unnamed or named after it) with it when it goes, now
    /// or at that slot, if no other job uses the schedule then.
    Rm {
        job: String,
        /// Delete it at once, enabled or queued for deletion.
        #[arg(long)]
        now: bool,
        /// Cancel the job's queued deletion instead: it stays, as it was.
        #[arg(long, conflicts_with = "now")]
        cancel: bool,
    },
    /// Run every slot of the job's schedule between --from and --to (RFC 3339, both included)
    /// that never ran, oldest first.
    Backfill {
        job: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// One after another instead of all at once.
        #[arg(long)]
        queue: bool,
    },
}

/// Where a job's health sorts in `jobs ls`: what needs attention first.
pub(super) fn health_rank(health: &str) -> u8 {
    match health {
        "stuck" => 0,
        "failing" => 1,
        "late" => 2,
        "ok" => 3,
        _ => 4,
    }
}

pub(super) fn job_state(job: &Value) -> &'static str {
    if job["do_del"].as_bool() == Some(true) {
        "deleting"
    } else if job["do_run"].as_bool() == Some(true) {
        "enabled"
    } else {
        "paused"
    }
}

/// A Kragle schedule config in short: `cron 0 3 * * * (Europe/Paris)`, `every 60s`, `at …`.
/// A job's window: `from … to …`, `-` for none.
pub(super) fn window_text(job: &Value) -> String {
    match (job["not_before"].as_str(), job["not_after"].as_str()) {
        (None, None) => "-".into(),
        (start, end) => format!("from {} to {}", start.unwrap_or("any time"), end.unwrap_or("any time")),
    }
}

/// A job's `after` entries as `name (#id) on success, …`, then whether all or any; `-`.
pub(super) async fn after_text(api: &Api, job: &Value) -> String {
    let entries = job["after"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        return "-".into();
    }
    let mut parts = Vec::new();
    for e in &entries {
        let name = match api.get(&format!("/jobs/byid/{}", e["job_id"])).await {
            Ok(upstream) => cell(&upstream["name"]),
            Err(_) => "(gone)".into(),
        };
        parts.push(format!("{name} (#{}) on {}", cell(&e["job_id"]), cell(&e["on"])));
    }
    let mode = if job["after_any"].as_bool() == Some(true) { "each run of any" } else { "once all ran" };
    format!("{} — {mode}", parts.join(", "))
}

pub(super) async fn jobs(api: &Api, out: Output, style: Style, cmd: JobsCmd) -> anyhow::Result<()> {
    match cmd {
        JobsCmd::Ls { stack } => {
            let mut all = api.all("/jobs", "jobs").await.map_err(api_err)?;
            if let Some(s) = stack {
                let id = id_of(&api.stack(&s).await.map_err(api_err)?)?;
                all.retain(|j| j["stack"].as_i64() == Some(id));
            }
            if out == Output::Json {
                print_json(&Value::Array(all));
                return Ok(());
            }
            let stacks: HashMap<i64, String> = api
                .all("/blockstacks", "stacks")
                .await
                .map_err(api_err)?
                .iter()
                .filter_map(|s| Some((s["id"].as_i64()?, cell(&s["name"]))))
                .collect();
            let schedules: HashMap<i64, Value> = api
                .all("/schedules", "schedules")
                .await
                .map_err(api_err)?
                .into_iter()
                .filter_map(|s| Some((s["id"].as_i64()?, s)))
                .collect();
            let mut t = Table::new(&["ID", "NAME", "STACK", "STATE", "HEALTH", "NEXT RUN", "SCHEDULE"]);
            // The ones needing attention first: stuck, failing, late, then ok, then paused.
            all.sort_by_key(|j| (health_rank(j["health"].as_str().unwrap_or("")), j["id"].as_i64()));
            for j in &all {
                let stack = j["stack"]
                    .as_i64()
                    .and_then(|id| stacks.get(&id).cloned())
                    .unwrap_or_else(|| cell(&j["stack"]));
                let schedule = j["schedule"].as_i64().and_then(|id| schedules.get(&id));
                t.row(vec![
                    cell(&j["id"]),
                    cell(&j["name"]),
                    stack,
                    style.status(job_state(j)),
                    style.status(j["health"].as_str().unwrap_or("-")),
                    zoned_time(&j["next_run"], schedule.and_then(schedule_zone)),
                    schedule.map_or_else(|| cell(&j["schedule"]), |s| cell(&s["description"])),
                ]);
            }
            t.print(style);
        }
        JobsCmd::Show { job } => {
            let j = api.job(&job).await.map_err(api_err)?;
            let id = id_of(&j)?;
            let schedule = api.get(&format!("/schedules/byid/{}", j["schedule"])).await.map_err(api_err)?;
            let runs = api.get(&format!("/jobs/byid/{id}/runs")).await.map_err(api_err)?;
            if out == Output::Json {
                let mut j = j;
                j["schedule_object"] = schedule;
                j["recent_runs"] = runs["runs"].clone();
                print_json(&j);
                return Ok(());
            }
            let stack = api.get(&format!("/blockstacks/byid/{}", j["stack"])).await.map_err(api_err)?;
            let tz = schedule_zone(&schedule);
            let command = match j["command"].as_str() {
                Some(c) => c.to_string(),
                None => format!("{} {}", cell(&stack["command"]), style.dim("(the stack's)")),
            };
            let upcoming: Vec<String> =
                schedule["upcoming"].as_array().into_iter().flatten().map(|t| zoned_time(t, tz)).collect();
            print_fields(
                style,
                &[
                    ("id", cell(&j["id"])),
                    ("name", cell(&j["name"])),
                    ("state", style.status(job_state(&j))),
                    ("health", style.status(j["health"].as_str().unwrap_or("-"))),
                    (
                        "last run",
                        match j["last_run"].as_object() {
                            Some(r) => format!(
                                "#{} {} {}",
                                cell(&r["id"]),
                                style.status(r["outcome"].as_str().unwrap_or("-")),
                                zoned_time(&r["finished_at"], tz)
                            ),
                            None => "-".into(),
                        },
                    ),
                    ("stack", format!("{} (#{})", cell(&stack["name"]), cell(&j["stack"]))),
                    ("command", command),
                    ("schedule", format!("{} (#{})", cell(&schedule["description"]), cell(&j["schedule"]))),
                    ("next run", zoned_time(&j["next_run"], tz)),
                    ("next fires", if upcoming.is_empty() { "-".into() } else { upcoming.join(", ") }),
                    ("timeout", j["timeout_s"].as_i64().map_or("-".into(), human_seconds)),
                    ("overlap", cell(&j["overlap"])),
                    ("missed", cell(&j["missed"])),
                    (
                        "retries",
                        format!(
                            "{} (backoff {})",
                            cell(&j["retries"]),
                            j["retry_backoff_s"].as_i64().map_or("-".into(), human_seconds)
                        ),
                    ),
                    ("jitter", format!("{}s", cell(&j["jitter_s"]))),
                    ("window", window_text(&j)),
                    (
                        "max runs",
                        match j["max_runs"].as_i64() {
                            Some(max) => format!("{max} ({} fired)", cell(&j["runs_fired"])),
                            None => "-".into(),
                        },
                    ),
                    ("after", after_text(api, &j).await),
                    ("uid", cell(&j["uid"])),
                    ("created", local_time(&j["created_at"])),
                    ("updated", local_time(&j["updated_at"])),
                ],
            );
            let runs = runs["runs"].as_array().cloned().unwrap_or_default();
            outln!();
            if runs.is_empty() {
                outln!("{}", style.dim("no runs yet"));
            } else {
                outln!("{}", style.bold("recent runs"));
                runs_table(&runs, style, tz).print(style);
            }
        }
        JobsCmd::Create { name, stack, schedule, rule, paused, settings } => {
            let stack_id = id_of(&api.stack(&stack).await.map_err(api_err)?)?;
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("stack_id".into(), json!(stack_id));
            body.insert("enabled".into(), json!(!paused));
            settings.apply(&mut body);
            let chained = match settings.after_entries(api).await? {
                Some(after) => {
                    body.insert("after".into(), after);
                    true
                }
                None => false,
            };
            // Everything is looked up before the job's own schedule is created, and that
            // schedule is deleted again if the job is refused: a failed create leaves nothing.
            let created_schedule = match (&schedule, rule.is_given()) {
                (Some(s), _) => {
                    body.insert(
                        "schedule_id".into(),
                        json!(id_of(&api.schedule(s).await.map_err(api_err)?)?),
                    );
                    None
                }
                (None, true) => Some(create_schedule(api, Some(&name), &rule).await?),
                // Runs only after its upstream jobs: the server puts it on the manual schedule.
                (None, false) if chained => None,
                (None, false) => bail!(
                    "give --schedule NAME|ID, or --cron EXPR, --every DURATION or --at TIME (or --after JOB for a job that runs only after others)"
                ),
            };
            if let Some(s) = created_schedule {
                body.insert("schedule_id".into(), json!(s));
            }
            let answer = api.post("/jobs", &Value::Object(body)).await;
            let id = id_of(&undo_schedule_on_error(api, answer, created_schedule).await?)?;
            let created = api.get(&format!("/jobs/byid/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                let schedule =
                    api.get(&format!("/schedules/byid/{}", created["schedule"])).await.unwrap_or_default();
                outln!(
                    "created job {id} ({name}), {}; next run {}",
                    style.status(job_state(&created)),
                    zoned_time(&created["next_run"], schedule_zone(&schedule))
                );
            }
        }
        JobsCmd::Edit {
            job,
            name,
            stack,
            schedule,
            rule,
            no_command,
            no_timeout,
            no_window,
            no_max_runs,
            no_after,
            after_all,
            settings,
        } => {
            let current = api.job(&job).await.map_err(api_err)?;
            let id = id_of(&current)?;
            let mut body = Map::new();
            if let Some(n) = &name {
                body.insert("name".into(), json!(n));
            }
            if let Some(s) = stack {
                body.insert("stack_id".into(), json!(id_of(&api.stack(&s).await.map_err(api_err)?)?));
            }
            if let Some(s) = schedule {
                body.insert("schedule_id".into(), json!(id_of(&api.schedule(&s).await.map_err(api_err)?)?));
            }
            if no_command {
                body.insert("command".into(), Value::Null);
            }
            if no_timeout {
                body.insert("timeout_s".into(), Value::Null);
            }
            if no_window {
                body.insert("not_before".into(), Value::Null);
                body.insert("not_after".into(), Value::Null);
            }
            if no_max_runs {
                body.insert("max_runs".into(), Value::Null);
            }
            if no_after {
                body.insert("after".into(), json!([]));
                body.insert("after_any".into(), json!(false));
            }
            if after_all {
                body.insert("after_any".into(), json!(false));
            }
            settings.apply(&mut body);
            if let Some(after) = settings.after_entries(api).await? {
                body.insert("after".into(), after);
            }
            // A new rule: a new schedule, created last (nothing else can fail after it but the
            // update, which deletes it again if refused).
            let mut replaced = None;
            let mut created_schedule = None;
            if rule.is_given() {
                let old = current["schedule"].as_i64().unwrap_or(-1);
                let old_schedule = api.get(&format!("/schedules/byid/{old}")).await.map_err(api_err)?;
                let (config, once) = rule.config_over(&old_schedule["config"])?;
                let users = api.all("/jobs", "jobs").await.map_err(api_err)?;
                let only_this = users.iter().filter(|j| j["schedule"].as_i64() == Some(old)).count() == 1;
                // The job's own schedule keeps its name; a shared one stays as it is, and the
                // job gets one named after it.
                let label = if only_this && !(name.is_some() && old_schedule["name"] == current["name"]) {
                    old_schedule["name"].as_str().map(str::to_string)
                } else {
                    name.clone().or_else(|| current["name"].as_str().map(str::to_string))
                };
                let mut sbody = json!({ "config": config, "once": once });
                if let Some(l) = label {
                    sbody["name"] = json!(l);
                }
                let new = id_of(&api.post("/schedules", &sbody).await.map_err(api_err)?)?;
                body.insert("schedule_id".into(), json!(new));
                created_schedule = Some(new);
                replaced = only_this.then_some(old);
            }
            if body.is_empty() {
                bail!("nothing to change: see `cronstack jobs edit --help`");
            }
            let answer = api.put(&format!("/jobs/{id}"), &Value::Object(body)).await;
            let updated = undo_schedule_on_error(api, answer, created_schedule).await?;
            if let Some(old) = replaced {
                api.delete(&format!("/schedules/{old}")).await.map_err(|e| {
                    anyhow::anyhow!("job {id} updated, but its old schedule {old} stays: {e}")
                })?;
            }
            if out == Output::Json {
                print_json(&updated);
            } else {
                outln!("updated job {id} ({})", cell(&updated["name"]));
            }
        }
        JobsCmd::Pause { job } => set_enabled(api, out, style, &job, false).await?,
        JobsCmd::Unpause { job } => set_enabled(api, out, style, &job, true).await?,
        JobsCmd::Backfill { job, from, to, queue } => {
            let id = id_of(&api.job(&job).await.map_err(api_err)?)?;
            let overlap = if queue { "queue" } else { "allow" };
            let body = json!({"from": from, "to": to, "overlap": overlap});
            let answer = api.post(&format!("/jobs/byid/{id}/backfill"), &body).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("backfilling {} slot(s) of job {id}", cell(&answer["count"]));
                for run in answer["runs"].as_array().into_iter().flatten() {
                    outln!("  run {} for {}", cell(&run["id"]), cell(&run["scheduled_for"]));
                }
            }
        }
        JobsCmd::Rm { job, now, cancel } => {
            let current = api.job(&job).await.map_err(api_err)?;
            let id = id_of(&current)?;
            let name = cell(&current["name"]);
            if cancel {
                let updated =
                    api.put(&format!("/jobs/{id}"), &json!({ "do_del": false })).await.map_err(api_err)?;
                if out == Output::Json {
                    print_json(&updated);
                } else {
                    outln!("job {id} ({name}) stays: {}", style.status(job_state(&updated)));
                }
                return Ok(());
            }
            // The server deletes the schedule with the job (now or at its slot), if no other
            // job uses it then; which schedule is the job's own is the CLI's to say.
            let own = has_own_schedule(api, &current).await?;
            let query = match (now, own) {
                (true, true) => "?now=1&schedule=1",
                (true, false) => "?now=1",
                (false, true) => "?schedule=1",
                (false, false) => "",
            };
            let answer = api.delete(&format!("/jobs/{id}{query}")).await.map_err(api_err)?;
            let queued = answer.get("queued_for_deletion").is_some();
            if out == Output::Json {
                print_json(&answer);
            } else if queued {
                let with = match answer["with_schedule"].as_i64() {
                    Some(s) => format!(", its schedule {s} with it"),
                    None => String::new(),
                };
                outln!(
                    "job {id} ({name}) is enabled: it is deleted at its next slot instead of running{with} (--now deletes it at once, --cancel keeps it)"
                );
            } else if let Some(s) = answer["deleted_schedule"].as_i64() {
                outln!("deleted job {id} ({name}) and its schedule {s}");
            } else {
                outln!("deleted job {id} ({name})");
            }
        }
    }
    Ok(())
}

/// The answer of a job create or update; when refused, the schedule made for it is deleted
/// again, so that a failed command leaves nothing behind.
async fn undo_schedule_on_error(
    api: &Api,
    answer: super::api::ApiResult<Value>,
    created_schedule: Option<i64>,
) -> anyhow::Result<Value> {
    match (answer, created_schedule) {
        (Ok(v), _) => Ok(v),
        (Err(e), Some(s)) => {
            let _ = api.delete(&format!("/schedules/{s}")).await;
            Err(api_err(e))
        }
        (Err(e), None) => Err(api_err(e)),
    }
}

/// Whether the job's schedule is its own: unnamed or named after the job (as `jobs create
/// --cron` makes it). Whether another job uses it is the server's to check, when the job goes.
async fn has_own_schedule(api: &Api, job: &Value) -> anyhow::Result<bool> {
    let Some(sid) = job["schedule"].as_i64() else { return Ok(false) };
    let schedule = match api.get(&format!("/schedules/byid/{sid}")).await {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(api_err(e)),
    };
    Ok(schedule["name"].is_null() || schedule["name"] == job["name"])
}

pub(super) async fn set_enabled(
    api: &Api,
    out: Output,
    style: Style,
    job: &str,
    enabled: bool,
) -> anyhow::Result<()> {
    let current = api.job(job).await.map_err(api_err)?;
    let id = id_of(&current)?;
    let updated = api.put(&format!("/jobs/{id}"), &json!({ "enabled": enabled })).await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&updated);
    } else {
        outln!("job {id} ({}) is {}", cell(&updated["name"]), style.status(job_state(&updated)));
    }
    Ok(())
}
