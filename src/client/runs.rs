//! `cronstack run`, `runs …` and `logs`: starting runs, their history, their logs.

use std::io::Write;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::json;

use super::Exit;
use super::api::Api;
use super::output::{Spinner, duration_ms};
use super::output::{Style, Table, opt, print_json, zoned_time};
use super::{Output, api_err, one_line};
use crate::api::v1::{JobView, RunPage, RunView, ScheduleView};
use crate::domain::{RunStatus, TriggerKind};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The job (id or name).
    pub(super) job: String,
    /// Stream the log until the run ends — through its retries — and exit with the final
    /// attempt's status: its exit code, 124 if it timed out, 143 / 137 if it was killed
    /// (SIGTERM / SIGKILL).
    #[arg(long, short = 'f')]
    pub(super) follow: bool,
    /// Arguments for the command, after `--`, each a separate word: a command using "$@", $1…
    /// gets them as $1… only, one simple command or pipeline gets them appended to its last
    /// command, anything else refuses them (use "$@" where they belong).
    #[arg(last = true)]
    pub(super) args: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum RunsCmd {
    /// A job's runs, newest first (JOB = id or name), with their attempt; times in the
    /// zone of the job's schedule.
    Ls(RunsLs),
    /// One run; a pipeline run with its steps (status, output or error).
    Show {
        /// The run id.
        run: i64,
    },
    /// Kill a queued or running run, on whichever node it goes (SIGTERM to its process group,
    /// SIGKILL after the kill grace).
    Kill {
        /// The run id.
        run: i64,
    },
}

#[derive(Args, Debug)]
pub struct RunsLs {
    job: String,
    /// Page of 10.
    #[arg(long, default_value_t = 1)]
    page: i64,
    /// Only the runs that failed, timed out, were killed or lost.
    #[arg(long, conflicts_with = "outcome")]
    failed: bool,
    /// Only the runs with this outcome.
    #[arg(long, value_parser = ["succeeded", "failed", "timed_out", "killed", "lost", "skipped", "queued", "running"])]
    outcome: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The run id.
    pub(super) run: i64,
    /// Keep streaming until the run ends.
    #[arg(long, short = 'f')]
    pub(super) follow: bool,
}

/// Runs as a table, their times in `tz` (the job's schedule's zone).
pub(super) fn runs_table(runs: &[RunView], style: Style, tz: Option<&str>) -> Table {
    let mut t = Table::new(&[
        "RUN",
        "TRIGGER",
        "ATTEMPT",
        "OUTCOME",
        "SCHEDULED FOR",
        "DURATION",
        "LATENESS",
        "EXIT",
        "ARGS",
    ]);
    for r in runs {
        let exit = match (r.exit_code, r.signal) {
            (Some(c), _) => c.to_string(),
            (None, Some(s)) => format!("signal {s}"),
            _ => "-".into(),
        };
        let args = shell_words::join(&r.args);
        t.row(vec![
            r.id.to_string(),
            r.trigger.to_string(),
            r.attempt.to_string(),
            style.status(r.outcome.as_str()),
            zoned_time(Some(&r.scheduled_for), tz),
            duration_ms(r.duration_ms),
            duration_ms(r.lateness_ms),
            exit,
            one_line(&args, 40),
        ]);
    }
    t
}

/// The outcomes `runs ls --failed` shows: every end but success (and a skipped slot).
const FAILED: &[RunStatus] = &[RunStatus::Failed, RunStatus::TimedOut, RunStatus::Killed, RunStatus::Lost];

pub(super) async fn runs_ls(api: &Api, out: Output, style: Style, ls: RunsLs) -> anyhow::Result<()> {
    let RunsLs { job, page, failed, outcome } = ls;
    let j = api.job(&job).await.map_err(api_err)?;
    let id = j.id;
    let wanted: Vec<RunStatus> = match (&outcome, failed) {
        (Some(o), _) => RunStatus::parse(o).into_iter().collect(),
        (None, true) => FAILED.to_vec(),
        (None, false) => Vec::new(),
    };
    let (runs, count) = if wanted.is_empty() {
        let answer: RunPage = api.get(&format!("/jobs/byid/{id}/runs?page={page}")).await.map_err(api_err)?;
        (answer.runs, answer.count)
    } else {
        // The API pages every run: filtered here, then paged the same way (10 a page).
        let all: Vec<RunView> = api.all(&format!("/jobs/byid/{id}/runs"), "runs").await.map_err(api_err)?;
        let kept: Vec<RunView> = all.into_iter().filter(|r| wanted.contains(&r.outcome)).collect();
        let count = kept.len() as i64;
        let skip = usize::try_from((page.max(1) - 1) * 10).unwrap_or(usize::MAX);
        (kept.into_iter().skip(skip).take(10).collect(), count)
    };
    if out == Output::Json {
        print_json(&runs);
        return Ok(());
    }
    if runs.is_empty() {
        let none = match (page, wanted.is_empty()) {
            (1, true) => "no runs yet",
            (1, false) => "no such runs",
            _ => "no runs on this page",
        };
        outln!("{}", style.dim(none));
        return Ok(());
    }
    let schedule: ScheduleView =
        api.get(&format!("/schedules/byid/{}", j.schedule)).await.map_err(api_err)?;
    runs_table(&runs, style, schedule.timezone().as_deref()).print(style);
    let pages = (count + 9) / 10;
    if pages > 1 {
        outln!("{}", style.dim(&format!("page {page} of {pages} ({count} runs); --page N for more")));
    }
    Ok(())
}

pub(super) async fn run_job(
    api: &Api,
    out: Output,
    job: &str,
    args: &[String],
    follow: bool,
) -> anyhow::Result<()> {
    let j = api.job(job).await.map_err(api_err)?;
    let id = j.id;
    let run = api.run_now(id, args).await.map_err(api_err)?;
    let run_id = run.id;
    if !follow {
        if out == Output::Json {
            print_json(&run);
        } else {
            outln!(
                "started run {run_id} of job {id} ({}); `cronstack logs {run_id} --follow` to watch",
                super::output::opt(j.name.as_deref())
            );
        }
        return Ok(());
    }
    let name = j.name.clone().unwrap_or_else(|| format!("job {id}"));
    let mut finished = follow_log(api, out, run_id, &format!("run {run_id} of {name}")).await?;
    // A failed attempt the job retries: follow the next one, to the last.
    while let Some(next) = next_attempt(api, &j, &finished).await? {
        let (next_id, attempt) = (next.id, next.attempt);
        finished =
            follow_log(api, out, next_id, &format!("run {next_id} of {name} (attempt {attempt})")).await?;
    }
    if out == Output::Json {
        print_json(&finished);
    }
    let code = exit_code(&finished);
    if code == 0 { Ok(()) } else { Err(Exit(code).into()) }
}

/// The retry of a finished run, if the job retries it: the job's run with the next attempt
/// number recorded after it (the engine records it as the attempt ends, before its backoff).
pub(super) async fn next_attempt(api: &Api, job: &JobView, run: &RunView) -> anyhow::Result<Option<RunView>> {
    let attempt = run.attempt;
    let retried = match run.outcome {
        RunStatus::Failed | RunStatus::TimedOut => true,
        RunStatus::Lost => job.retry_lost,
        _ => false,
    };
    if !retried || attempt > job.retries {
        return Ok(None);
    }
    let (job_id, run_id) = (job.id, run.id);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let page: RunPage = api.get(&format!("/jobs/byid/{job_id}/runs")).await.map_err(api_err)?;
        let found = page
            .runs
            .into_iter()
            .find(|r| r.trigger == TriggerKind::Retry && r.attempt == attempt + 1 && r.id > run_id);
        if let Some(next) = found {
            return Ok(Some(next));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(None)
}

/// The process exit code for a finished run, like `timeout(1)` and a shell: 124 for a run
/// that timed out, 128 + the signal for a killed one (143 without one: killed before it
/// started), its exit code otherwise, 1 for a run that never ran or failed otherwise.
pub(super) fn exit_code(run: &RunView) -> u8 {
    match (run.outcome, run.exit_code, run.signal) {
        (RunStatus::TimedOut, _, _) => 124,
        (RunStatus::Killed, _, Some(s)) => (128 + s).clamp(1, 255) as u8,
        (RunStatus::Killed, _, None) => 143,
        (_, Some(c), _) => c.clamp(0, 255) as u8,
        (_, None, Some(s)) => (128 + s).clamp(1, 255) as u8,
        (RunStatus::Succeeded, None, None) => 0,
        _ => 1,
    }
}

pub(super) async fn kill_run(api: &Api, out: Output, run_id: i64) -> anyhow::Result<()> {
    let run: RunView = api.post(&format!("/runs/{run_id}/kill"), &json!({})).await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&run);
    } else {
        outln!("run {run_id}: {}", run.outcome);
    }
    Ok(())
}

pub(super) async fn logs(api: &Api, out: Output, run_id: i64, follow: bool) -> anyhow::Result<()> {
    if !follow {
        let resp = api.stream(&format!("/runs/{run_id}/log")).await.map_err(api_err)?;
        let bytes = resp.bytes().await.map_err(|e| anyhow!("{}", api.transport_error(&e)))?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&bytes)?;
        stdout.flush()?;
        return Ok(());
    }
    let finished = follow_log(api, out, run_id, &format!("run {run_id}")).await?;
    if out == Output::Json {
        print_json(&finished);
    }
    Ok(())
}

/// Streams a run's log until the run ends (a spinner on stderr meanwhile); returns the
/// finished run. With `--output json` the log goes to stderr, keeping stdout for the JSON.
pub(super) async fn follow_log(api: &Api, out: Output, run_id: i64, label: &str) -> anyhow::Result<RunView> {
    let first: RunView = api.get(&format!("/runs/{run_id}")).await.map_err(api_err)?;
    let spinner = Spinner::start(&format!("{label}: {}", first.outcome));
    let mut resp = api.stream(&format!("/runs/{run_id}/log?follow=1")).await.map_err(api_err)?;
    let mut sink: Box<dyn Write> =
        if out == Output::Json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    // The state is polled until the run is seen running (a few requests at most, so that a
    // long run does not spend the token's hourly budget).
    let mut state = first.outcome;
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            chunk = resp.chunk() => match chunk {
                Ok(Some(bytes)) => spinner.output(&mut *sink, &bytes)?,
                Ok(None) => break,
                Err(e) => {
                    spinner.finish("");
                    return Err(anyhow!("{}", api.transport_error(&e)));
                }
            },
            _ = poll.tick(), if state == RunStatus::Queued => {
                if let Ok(r) = api.get::<RunView>(&format!("/runs/{run_id}")).await {
                    state = r.outcome;
                    spinner.set_message(&format!("{label}: {state}"));
                }
            }
        }
    }
    // The log closes as the process ends; the final record follows a moment later.
    let mut run: RunView = api.get(&format!("/runs/{run_id}")).await.map_err(api_err)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while matches!(run.outcome, RunStatus::Queued | RunStatus::Running)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        run = api.get(&format!("/runs/{run_id}")).await.map_err(api_err)?;
    }
    let outcome = run.outcome;
    let mark = if outcome == RunStatus::Succeeded { "✓" } else { "✗" };
    let mut parts = vec![format!("{mark} {label} {outcome}")];
    if let Some(c) = run.exit_code {
        parts.push(format!("exit {c}"));
    }
    if let Some(s) = run.signal {
        parts.push(format!("signal {s}"));
    }
    if run.duration_ms.is_some() {
        parts.push(duration_ms(run.duration_ms));
    }
    spinner.finish(&parts.join(" · "));
    Ok(run)
}

pub(super) async fn runs(api: &Api, out: Output, style: Style, cmd: RunsCmd) -> anyhow::Result<()> {
    match cmd {
        RunsCmd::Ls(ls) => runs_ls(api, out, style, ls).await,
        RunsCmd::Kill { run } => kill_run(api, out, run).await,
        RunsCmd::Show { run } => show_run(api, out, style, run).await,
    }
}

/// `cronstack runs show RUN`: the run, and a pipeline run's steps.
async fn show_run(api: &Api, out: Output, style: Style, run: i64) -> anyhow::Result<()> {
    let r: RunView = api.get(&format!("/runs/{run}")).await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&r);
        return Ok(());
    }
    let zone = match api.get::<JobView>(&format!("/jobs/byid/{}", r.job)).await {
        Ok(job) => api.get::<ScheduleView>(&format!("/schedules/byid/{}", job.schedule)).await.ok(),
        Err(_) => None,
    }
    .and_then(|s| s.timezone());
    runs_table(std::slice::from_ref(&r), style, zone.as_deref()).print(style);
    let Some(steps) = r.step_views() else { return Ok(()) };
    outln!();
    let mut t = Table::new(&["STEP", "TYPE", "NAME", "STATUS", "DURATION", "OUTPUT / ERROR"]);
    for s in &steps {
        let took = match (s.started_at.as_deref(), s.finished_at.as_deref()) {
            (Some(a), Some(b)) => {
                match (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
                    (Ok(a), Ok(b)) => duration_ms(Some((b - a).num_milliseconds())),
                    _ => "-".into(),
                }
            }
            _ => "-".into(),
        };
        let shown = s.error.clone().unwrap_or_else(|| s.output.to_string());
        t.row(vec![
            (s.index + 1).to_string(),
            s.kind.clone(),
            opt(s.name.as_deref()),
            style.status(&s.status),
            took,
            one_line(&shown, 60),
        ]);
    }
    t.print(style);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: RunStatus, exit_code: Option<i64>, signal: Option<i64>) -> RunView {
        RunView {
            id: 1,
            job: 1,
            trigger: TriggerKind::RunNow,
            attempt: 1,
            scheduled_for: "2026-01-01T00:00:00Z".into(),
            jitter_ms: 0,
            started_at: None,
            finished_at: None,
            lateness_ms: None,
            duration_ms: None,
            outcome,
            exit_code,
            signal,
            args: Vec::new(),
            node: None,
            log_truncated: false,
            upstream_runs: None,
            steps: None,
        }
    }

    #[test]
    fn exit_codes_follow_the_run() {
        use RunStatus::*;
        assert_eq!(exit_code(&run(Succeeded, Some(0), None)), 0);
        assert_eq!(exit_code(&run(Failed, Some(3), None)), 3);
        assert_eq!(exit_code(&run(Killed, None, Some(9))), 137);
        assert_eq!(exit_code(&run(Killed, None, Some(15))), 143);
        assert_eq!(exit_code(&run(Killed, None, None)), 143);
        assert_eq!(exit_code(&run(TimedOut, Some(0), Some(15))), 124);
        assert_eq!(exit_code(&run(Skipped, None, None)), 1);
    }
}
