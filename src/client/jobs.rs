//! `cronstack jobs …`: a stack on a schedule.

use std::collections::HashMap;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::api::{Api, ApiResult};
use super::output::{Style, Table, local_time, opt, print_fields, print_json, zoned_time};
use super::parse::human_seconds;
use super::runs::runs_table;
use super::schedules::{Rule, create_schedule};
use super::{Output, api_err};
use crate::api::v1::{
    BackfillView, Created, Deleted, JobDeleted, JobView, Listed, RunPage, RunView, ScheduleRequest,
    ScheduleView, StackJob, StackView,
};
use crate::domain::{ChainAfter, ChainOn};

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
            let job_id = api.job(job).await.map_err(api_err)?.id;
            entries.push(ChainAfter { job_id, on: ChainOn::parse(on).unwrap_or(ChainOn::Success) });
        }
        Ok(Some(json!(entries)))
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

pub(super) fn job_state(job: &JobView) -> &'static str {
    if job.do_del {
        "deleting"
    } else if job.do_run {
        "enabled"
    } else {
        "paused"
    }
}

/// A job's window: `from … to …`, `-` for none.
pub(super) fn window_text(job: &JobView) -> String {
    match (&job.not_before, &job.not_after) {
        (None, None) => "-".into(),
        (start, end) => format!(
            "from {} to {}",
            start.as_deref().unwrap_or("any time"),
            end.as_deref().unwrap_or("any time")
        ),
    }
}

/// A job's `after` entries as `name (#id) on success, …`, then whether all or any; `-`.
pub(super) async fn after_text(api: &Api, job: &JobView) -> String {
    if job.after.is_empty() {
        return "-".into();
    }
    let mut parts = Vec::new();
    for e in &job.after {
        let name = match api.get::<JobView>(&format!("/jobs/byid/{}", e.job_id)).await {
            Ok(upstream) => opt(upstream.name),
            Err(_) => "(gone)".into(),
        };
        parts.push(format!("{name} (#{}) on {}", e.job_id, e.on));
    }
    let mode = if job.after_any { "each run of any" } else { "once all ran" };
    format!("{} — {mode}", parts.join(", "))
}

/// `jobs show -o json`: the job, its schedule and its recent runs.
#[derive(Serialize)]
struct JobDetail {
    #[serde(flatten)]
    job: JobView,
    schedule_object: ScheduleView,
    recent_runs: Vec<RunView>,
}

pub(super) async fn jobs(api: &Api, out: Output, style: Style, cmd: JobsCmd) -> anyhow::Result<()> {
    match cmd {
        JobsCmd::Ls { stack } => {
            let mut all: Vec<JobView> = api.all("/jobs", "jobs").await.map_err(api_err)?;
            if let Some(s) = stack {
                let id = api.stack(&s).await.map_err(api_err)?.id();
                all.retain(|j| j.stack == id);
            }
            if out == Output::Json {
                print_json(&all);
                return Ok(());
            }
            let stacks: HashMap<i64, String> = api
                .all::<Listed>("/blockstacks", "stacks")
                .await
                .map_err(api_err)?
                .iter()
                .map(|s| (s.id(), s.name().to_string()))
                .collect();
            let schedules: HashMap<i64, ScheduleView> = api
                .all::<ScheduleView>("/schedules", "schedules")
                .await
                .map_err(api_err)?
                .into_iter()
                .map(|s| (s.id, s))
                .collect();
            let mut t = Table::new(&["ID", "NAME", "STACK", "STATE", "HEALTH", "NEXT RUN", "SCHEDULE"]);
            // The ones needing attention first: stuck, failing, late, then ok, then paused.
            all.sort_by_key(|j| (health_rank(j.health.as_str()), j.id));
            for j in &all {
                let stack = stacks.get(&j.stack).cloned().unwrap_or_else(|| j.stack.to_string());
                let schedule = schedules.get(&j.schedule);
                t.row(vec![
                    j.id.to_string(),
                    opt(j.name.as_deref()),
                    stack,
                    style.status(job_state(j)),
                    style.status(j.health.as_str()),
                    zoned_time(j.next_run.as_deref(), schedule.and_then(ScheduleView::timezone).as_deref()),
                    schedule.map_or_else(|| j.schedule.to_string(), |s| s.description.clone()),
                ]);
            }
            t.print(style);
        }
        JobsCmd::Show { job } => {
            let j = api.job(&job).await.map_err(api_err)?;
            let id = j.id;
            let schedule: ScheduleView =
                api.get(&format!("/schedules/byid/{}", j.schedule)).await.map_err(api_err)?;
            let runs: RunPage = api.get(&format!("/jobs/byid/{id}/runs")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&JobDetail { job: j, schedule_object: schedule, recent_runs: runs.runs });
                return Ok(());
            }
            let stack: StackView<StackJob> =
                api.get(&format!("/blockstacks/byid/{}", j.stack)).await.map_err(api_err)?;
            let tz = schedule.timezone();
            let tz = tz.as_deref();
            let command = match &j.command {
                Some(c) => c.clone(),
                None => format!("{} {}", opt(stack.command.as_deref()), style.dim("(the stack's)")),
            };
            let upcoming: Vec<String> = schedule.upcoming.iter().map(|t| zoned_time(Some(t), tz)).collect();
            print_fields(
                style,
                &[
                    ("id", j.id.to_string()),
                    ("name", opt(j.name.as_deref())),
                    ("state", style.status(job_state(&j))),
                    ("health", style.status(j.health.as_str())),
                    (
                        "last run",
                        match &j.last_run {
                            Some(r) => format!(
                                "#{} {} {}",
                                r.id,
                                style.status(r.outcome.as_str()),
                                zoned_time(Some(&r.finished_at), tz)
                            ),
                            None => "-".into(),
                        },
                    ),
                    ("stack", format!("{} (#{})", stack.name, j.stack)),
                    ("command", command),
                    ("schedule", format!("{} (#{})", schedule.description, j.schedule)),
                    ("next run", zoned_time(j.next_run.as_deref(), tz)),
                    ("next fires", if upcoming.is_empty() { "-".into() } else { upcoming.join(", ") }),
                    ("timeout", j.timeout_s.map_or("-".into(), human_seconds)),
                    ("overlap", j.overlap.to_string()),
                    ("missed", j.missed.to_string()),
                    ("retries", format!("{} (backoff {})", j.retries, human_seconds(j.retry_backoff_s))),
                    ("jitter", format!("{}s", j.jitter_s)),
                    ("window", window_text(&j)),
                    (
                        "max runs",
                        match j.max_runs {
                            Some(max) => format!("{max} ({} fired)", j.runs_fired),
                            None => "-".into(),
                        },
                    ),
                    ("after", after_text(api, &j).await),
                    ("uid", j.uid.clone()),
                    ("created", local_time(Some(&j.created_at))),
                    ("updated", local_time(Some(&j.updated_at))),
                ],
            );
            outln!();
            if runs.runs.is_empty() {
                outln!("{}", style.dim("no runs yet"));
            } else {
                outln!("{}", style.bold("recent runs"));
                runs_table(&runs.runs, style, tz).print(style);
            }
        }
        JobsCmd::Create { name, stack, schedule, rule, paused, settings } => {
            let stack_id = api.stack(&stack).await.map_err(api_err)?.id();
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
                    body.insert("schedule_id".into(), json!(api.schedule(s).await.map_err(api_err)?.id));
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
            let answer = api.post::<Created, _>("/jobs", &body).await;
            let id = undo_schedule_on_error(api, answer, created_schedule).await?.id;
            let created: JobView = api.get(&format!("/jobs/byid/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                let schedule =
                    api.get::<ScheduleView>(&format!("/schedules/byid/{}", created.schedule)).await.ok();
                outln!(
                    "created job {id} ({name}), {}; next run {}",
                    style.status(job_state(&created)),
                    zoned_time(created.next_run.as_deref(), schedule.and_then(|s| s.timezone()).as_deref())
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
            let id = current.id;
            let mut body = Map::new();
            if let Some(n) = &name {
                body.insert("name".into(), json!(n));
            }
            if let Some(s) = stack {
                body.insert("stack_id".into(), json!(api.stack(&s).await.map_err(api_err)?.id()));
            }
            if let Some(s) = schedule {
                body.insert("schedule_id".into(), json!(api.schedule(&s).await.map_err(api_err)?.id));
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
                let old = current.schedule;
                let old_schedule: ScheduleView =
                    api.get(&format!("/schedules/byid/{old}")).await.map_err(api_err)?;
                let (config, once) = rule.config_over(old_schedule.rule().as_ref())?;
                let users: Vec<JobView> = api.all("/jobs", "jobs").await.map_err(api_err)?;
                let only_this = users.iter().filter(|j| j.schedule == old).count() == 1;
                // The job's own schedule keeps its name; a shared one stays as it is, and the
                // job gets one named after it.
                let label = if only_this && !(name.is_some() && old_schedule.name == current.name) {
                    old_schedule.name.clone()
                } else {
                    name.clone().or_else(|| current.name.clone())
                };
                let sbody = ScheduleRequest { name: label, config: Some(config), once: Some(once) };
                let new = api.post::<Created, _>("/schedules", &sbody).await.map_err(api_err)?.id;
                body.insert("schedule_id".into(), json!(new));
                created_schedule = Some(new);
                replaced = only_this.then_some(old);
            }
            if body.is_empty() {
                bail!("nothing to change: see `cronstack jobs edit --help`");
            }
            let answer = api.put::<JobView, _>(&format!("/jobs/{id}"), &body).await;
            let updated = undo_schedule_on_error(api, answer, created_schedule).await?;
            if let Some(old) = replaced {
                api.delete::<Deleted>(&format!("/schedules/{old}")).await.map_err(|e| {
                    anyhow::anyhow!("job {id} updated, but its old schedule {old} stays: {e}")
                })?;
            }
            if out == Output::Json {
                print_json(&updated);
            } else {
                outln!("updated job {id} ({})", opt(updated.name.as_deref()));
            }
        }
        JobsCmd::Pause { job } => set_enabled(api, out, style, &job, false).await?,
        JobsCmd::Unpause { job } => set_enabled(api, out, style, &job, true).await?,
        JobsCmd::Backfill { job, from, to, queue } => {
            let id = api.job(&job).await.map_err(api_err)?.id;
            let overlap = if queue { "queue" } else { "allow" };
            let body = json!({"from": from, "to": to, "overlap": overlap});
            let answer: BackfillView =
                api.post(&format!("/jobs/byid/{id}/backfill"), &body).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("backfilling {} slot(s) of job {id}", answer.count);
                for run in &answer.runs {
                    outln!("  run {} for {}", run.id, run.scheduled_for);
                }
            }
        }
        JobsCmd::Rm { job, now, cancel } => {
            let current = api.job(&job).await.map_err(api_err)?;
            let id = current.id;
            let name = opt(current.name.as_deref());
            if cancel {
                let updated: JobView =
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
            let answer: JobDeleted = api.delete(&format!("/jobs/{id}{query}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else if answer.queued_for_deletion.is_some() {
                let with = match answer.with_schedule {
                    Some(s) => format!(", its schedule {s} with it"),
                    None => String::new(),
                };
                outln!(
                    "job {id} ({name}) is enabled: it is deleted at its next slot instead of running{with} (--now deletes it at once, --cancel keeps it)"
                );
            } else if let Some(s) = answer.deleted_schedule {
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
async fn undo_schedule_on_error<T>(
    api: &Api,
    answer: ApiResult<T>,
    created_schedule: Option<i64>,
) -> anyhow::Result<T> {
    match (answer, created_schedule) {
        (Ok(v), _) => Ok(v),
        (Err(e), Some(s)) => {
            let _ = api.delete::<Deleted>(&format!("/schedules/{s}")).await;
            Err(api_err(e))
        }
        (Err(e), None) => Err(api_err(e)),
    }
}

/// Whether the job's schedule is its own: unnamed or named after the job (as `jobs create
/// --cron` makes it). Whether another job uses it is the server's to check, when the job goes.
async fn has_own_schedule(api: &Api, job: &JobView) -> anyhow::Result<bool> {
    let schedule: ScheduleView = match api.get(&format!("/schedules/byid/{}", job.schedule)).await {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(api_err(e)),
    };
    Ok(schedule.name.is_none() || schedule.name == job.name)
}

pub(super) async fn set_enabled(
    api: &Api,
    out: Output,
    style: Style,
    job: &str,
    enabled: bool,
) -> anyhow::Result<()> {
    let id = api.job(job).await.map_err(api_err)?.id;
    let updated: JobView =
        api.put(&format!("/jobs/{id}"), &json!({ "enabled": enabled })).await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&updated);
    } else {
        outln!("job {id} ({}) is {}", opt(updated.name.as_deref()), style.status(job_state(&updated)));
    }
    Ok(())
}
