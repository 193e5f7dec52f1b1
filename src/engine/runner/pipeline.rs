//! Runs a pipeline stack (one with `blocks`) step by step: each block's conversion rendered
//! against `{input, state, run}`, its step run, its output the next step's input. Shell command
//! steps run as a one-command run does (environment, arguments, timeout, process group, capped
//! and masked log); HTTP request steps through reqwest (rustls, no redirects). The run records
//! its steps, the log a header per step, each block the state of its last successful step.
//! Called from one place, `Runner::run_once`; one-command stacks never come here.

use std::time::Duration;

use cronstack_exec::{Log, Outcome};
use serde_json::{Map, Value, json};

use super::{ActiveRun, RunResult, Runner};
use crate::blocks::{
    Block, BlockState, BlockType, ExpectStatus, FilterInput, HttpInput, ShellInput, render, typed,
};
use crate::domain::parse_output;
use crate::domain::{EpochMs, EventKind, Run, RunStatus, TriggerKind, iso8601, now_ms};
use crate::engine::Launch;
use crate::events::Event;
use crate::store::{RunFinish, RunStart};

/// A step's output as a run shows it: at most this many bytes of JSON.
const STEP_OUTPUT_CAP: usize = 64 * 1024;
/// An HTTP request step's default timeout.
const HTTP_TIMEOUT_S: u64 = 30;

/// How one step ended.
enum StepEnd {
    Succeeded(Value),
    /// A filter whose test failed: the run succeeds, the rest is skipped.
    Stopped,
    /// The step failed: the run ends with this status.
    Failed {
        status: RunStatus,
        error: String,
        exit_code: Option<i64>,
    },
}

/// The step as `GET /runs/<id>` shows it.
fn step_record(
    index: usize,
    b: &Block,
    status: &str,
    times: Option<(EpochMs, EpochMs)>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("index".into(), json!(index));
    m.insert("block".into(), json!(b.id));
    m.insert("name".into(), json!(b.name));
    m.insert("type".into(), json!(b.kind.name()));
    m.insert("status".into(), json!(status));
    m.insert("started_at".into(), json!(times.map(|t| iso8601(t.0))));
    m.insert("finished_at".into(), json!(times.map(|t| iso8601(t.1))));
    m.insert("output".into(), Value::Null);
    m.insert("error".into(), Value::Null);
    m
}

/// A value for a run's record: as it is, or its JSON text cut to the cap.
fn capped(v: &Value) -> Value {
    let text = v.to_string();
    if text.len() <= STEP_OUTPUT_CAP {
        return v.clone();
    }
    let mut end = STEP_OUTPUT_CAP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Value::String(format!("{}… [{} bytes omitted]", &text[..end], text.len() - end))
}

/// A URL as the log shows it: without credentials, and without its query (which may hold
/// some).
fn loggable_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    if had_query { format!("{shown}?…") } else { shown.to_string() }
}

impl Runner {
    /// Runs the launch's pipeline to its end and records it; `None` when the run was given
    /// up instead (see [`Runner::give_up`]).
    pub(super) async fn run_pipeline(&self, launch: &mut Launch) -> Option<RunResult> {
        let (run, job) = (launch.run.clone(), launch.job.clone());
        // The latest state (the stack in hand may have been loaded before the last run ended).
        let blocks = match self.store.stack_blocks_now(launch.stack.id).await {
            Ok(Some(blocks)) => blocks,
            Ok(None) => launch.stack.blocks.clone().unwrap_or_default(),
            Err(e) => {
                let why = format!("[cronstack] could not read the stack's blocks: {e}");
                return self.finish_without_start(&job, &run, RunStatus::Failed, &why).await;
            }
        };
        // Counted while it waits, as a command's run is: it holds back the node's claims too.
        let waiting = super::Waiting::new(self);
        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.ok(),
            () = self.shutting_down.notified() => None,
        };
        drop(waiting);
        // Not started because the node is stopping: handed back to the cluster at shutdown.
        let permit = permit?;
        let started_at = now_ms();
        match self.starts.record(RunStart { run_id: run.id, job_id: run.job_id, started_at }).await {
            Ok(true) => {}
            Ok(false) => return self.give_up(&run, "another node took the run before it started here"),
            Err(e) => tracing::error!(run = run.id, error = %e, "recording run start"),
        }
        let running = Run { status: RunStatus::Running, started_at: Some(started_at), ..run.clone() };
        self.events.emit(Event::run(EventKind::RunStarted, &job, &running));
        metrics::gauge!("cronstack_runs_running").increment(1.0);
        let deadline = job.timeout_s.map(|s| started_at + s.saturating_mul(1000));

        let mut input = match launch.stdin.take() {
            // A hook's request document (or exec's).
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            None if run.trigger == TriggerKind::RunNow => json!({ "args": run.args }),
            None => json!({}),
        };
        let run_doc = json!({
            "id": run.id,
            "job_id": run.job_id,
            "scheduled_for": iso8601(run.scheduled_for),
            "args": run.args,
            "trigger": run.trigger.as_str(),
        });
        // One log for all steps, capped as a one-command run's is: followers see it live
        // while a Shell command step runs, and receive exactly what is stored.
        let log = Log::new(self.settings.log_cap);
        let mut steps = Vec::with_capacity(blocks.len());
        let mut states = Vec::new();
        let (mut status, mut exit_code, mut failure) = (RunStatus::Succeeded, Some(0), None);
        let mut ended = false;
        for (index, block) in blocks.iter().enumerate() {
            if ended {
                steps.push(Value::Object(step_record(index, block, "skipped", None)));
                continue;
            }
            let label = block.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            log.push(
                format!("[cronstack] step {}/{}: {}{label}\n", index + 1, blocks.len(), block.kind.name())
                    .as_bytes(),
            );
            let step_start = now_ms();
            let end = if self.cancelled.lock().unwrap().remove(&run.id) {
                StepEnd::Failed {
                    status: RunStatus::Killed,
                    error: "killed on request".into(),
                    exit_code: None,
                }
            } else if !self.holds(run.id) {
                StepEnd::Failed {
                    status: RunStatus::Lost,
                    error: "another node took the run".into(),
                    exit_code: None,
                }
            } else if deadline.is_some_and(|d| d <= step_start) {
                StepEnd::Failed {
                    status: RunStatus::TimedOut,
                    error: "the job's timeout passed".into(),
                    exit_code: None,
                }
            } else {
                let doc = json!({ "input": input, "state": block.state, "run": run_doc });
                match render(&block.conversion, &doc) {
                    Err(e) => StepEnd::Failed { status: RunStatus::Failed, error: e, exit_code: None },
                    Ok(converted) => {
                        let end = self.step(launch, block.kind, &converted, &input, deadline, &log).await;
                        if let StepEnd::Succeeded(output) = &end {
                            states.push((block.id, BlockState { input: converted, output: output.clone() }));
                        }
                        end
                    }
                }
            };
            let mut record = step_record(index, block, "succeeded", Some((step_start, now_ms())));
            match end {
                StepEnd::Succeeded(output) => {
                    record.insert("output".into(), capped(&output));
                    input = output;
                }
                StepEnd::Stopped => {
                    record.insert("status".into(), json!("stopped"));
                    log.push(b"[cronstack] the filter's test failed: the pipeline stops here\n");
                    input = Value::Null;
                    ended = true;
                }
                StepEnd::Failed { status: s, error, exit_code: code } => {
                    record.insert("status".into(), json!("failed"));
                    log.push(format!("[cronstack] step {} failed: {error}\n", index + 1).as_bytes());
                    record.insert("error".into(), json!(error));
                    failure = Some(format!("step {} ({}) failed: {error}", index + 1, block.kind.name()));
                    (status, exit_code) = (s, code);
                    ended = true;
                }
            }
            steps.push(Value::Object(record));
        }
        // A kill that came during the last step (not a Shell command one) found nothing left
        // to stop.
        self.cancelled.lock().unwrap().remove(&run.id);
        drop(permit);
        metrics::gauge!("cronstack_runs_running").decrement(1.0);
        if let Err(e) = self.store.set_run_steps(run.id, &Value::Array(steps)).await {
            tracing::error!(run = run.id, error = %e, "recording the run's steps");
        }
        if let Err(e) = self.store.set_block_states(launch.stack.id, &states).await {
            tracing::error!(run = run.id, error = %e, "recording the blocks' state");
        }
        log.close();
        let finished_at = now_ms();
        metrics::histogram!("cronstack_run_duration_seconds")
            .record((finished_at - started_at).max(0) as f64 / 1000.0);
        let finish = RunFinish {
            status,
            finished_at,
            exit_code,
            signal: None,
            log: log.snapshot(),
            log_truncated: log.is_truncated(),
        };
        let written = self.store_finish(&job, &run, finish).await?;
        let succeeded = written.status == RunStatus::Succeeded;
        Some(RunResult {
            run_id: run.id,
            status: written.status,
            exit_code: written.exit_code,
            // The hook's answer: the last step's output (null when a filter stopped it).
            stdout: succeeded.then(|| input.to_string()),
            log: failure.unwrap_or(written.log),
        })
    }

    /// One step, given its converted input and the previous step's output.
    async fn step(
        &self,
        launch: &Launch,
        kind: BlockType,
        converted: &Value,
        previous: &Value,
        deadline: Option<EpochMs>,
        log: &Log,
    ) -> StepEnd {
        let unfit = |(field, e): (String, String)| StepEnd::Failed {
            status: RunStatus::Failed,
            error: format!("the converted input does not fit the block's type: {field}: {e}"),
            exit_code: None,
        };
        let remaining = deadline.map(|d| Duration::from_millis((d - now_ms()).max(1) as u64));
        match kind {
            BlockType::Transform => StepEnd::Succeeded(converted.clone()),
            BlockType::Filter => match typed::<FilterInput>(converted) {
                Ok(f) if f.passes() => StepEnd::Succeeded(previous.clone()),
                Ok(_) => StepEnd::Stopped,
                Err(e) => unfit(e),
            },
            BlockType::Shell => match typed::<ShellInput>(converted) {
                Ok(input) => self.shell_step(launch, input, previous, remaining, log).await,
                Err(e) => unfit(e),
            },
            BlockType::Http => match typed::<HttpInput>(converted) {
                Ok(input) => match input.check() {
                    Ok(()) => self.http_step(input, remaining, log).await,
                    Err(e) => unfit(e),
                },
                Err(e) => unfit(e),
            },
        }
    }

    async fn shell_step(
        &self,
        launch: &Launch,
        input: ShellInput,
        previous: &Value,
        timeout: Option<Duration>,
        log: &Log,
    ) -> StepEnd {
        let failed = |error: String| StepEnd::Failed { status: RunStatus::Failed, error, exit_code: None };
        if input.command.trim().is_empty() || input.command.contains('\0') {
            return failed("the command is empty or contains NUL".into());
        }
        let stdin = serde_json::to_vec(input.stdin.as_ref().unwrap_or(previous)).expect("JSON serializes");
        let mut command = match self.command(launch, Some(stdin)) {
            Ok(command) => command,
            Err(e) => return failed(e),
        };
        command.script = input.command;
        command.capture_stdout = true;
        command.timeout = timeout;
        let running = match cronstack_exec::spawn(command) {
            Ok(running) => running,
            Err(e) => return failed(format!("could not start the command: {e}")),
        };
        let run_id = launch.run.id;
        self.active.lock().unwrap().insert(
            run_id,
            ActiveRun { job_id: launch.job.id, log: log.clone(), killer: running.killer(), fenced: false },
        );
        let step_log = running.log();
        let forward = async {
            // The step's output into the pipeline's log as it is written (its head; its marker
            // and tail once it ends).
            let mut pos = 0;
            loop {
                let closed = step_log.is_closed();
                let (bytes, next) = step_log.read_from(pos);
                if !bytes.is_empty() {
                    log.push(&bytes);
                    pos = next;
                } else if closed {
                    return;
                } else {
                    step_log.changed(pos).await;
                }
            }
        };
        let (f, ()) = tokio::join!(running.wait(), forward);
        let fenced = self.active.lock().unwrap().remove(&run_id).is_some_and(|a| a.fenced);
        if !f.log.is_empty() && !f.log.ends_with('\n') {
            log.push(b"\n");
        }
        let exit_code = f.exit_code.map(i64::from);
        match f.outcome {
            _ if fenced => StepEnd::Failed {
                status: RunStatus::Lost,
                error: "killed: this node lost its lease (frozen, or cut off from the database)".into(),
                exit_code,
            },
            Outcome::Succeeded => StepEnd::Succeeded(parse_output(f.stdout.as_deref().unwrap_or(""))),
            Outcome::Failed => StepEnd::Failed {
                status: RunStatus::Failed,
                error: match (f.exit_code, f.signal) {
                    (Some(code), _) => format!("the command exited with code {code}"),
                    (None, Some(sig)) => format!("the command was ended by signal {sig}"),
                    _ => "the command failed".into(),
                },
                exit_code,
            },
            Outcome::TimedOut => StepEnd::Failed {
                status: RunStatus::TimedOut,
                error: "the command timed out (the job's timeout)".into(),
                exit_code,
            },
            Outcome::Killed => {
                StepEnd::Failed { status: RunStatus::Killed, error: "killed on request".into(), exit_code }
            }
        }
    }

    async fn http_step(&self, input: HttpInput, remaining: Option<Duration>, log: &Log) -> StepEnd {
        let failed = |error: String| StepEnd::Failed { status: RunStatus::Failed, error, exit_code: None };
        let mut timeout = Duration::from_secs(input.timeout_s.unwrap_or(HTTP_TIMEOUT_S));
        let timed_by_job = remaining.is_some_and(|r| r < timeout);
        if let Some(r) = remaining {
            timeout = timeout.min(r);
        }
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
        {
            Ok(client) => client,
            Err(e) => return failed(format!("could not build an HTTP client: {e}")),
        };
        let Ok(url) = reqwest::Url::parse(&input.url) else {
            return failed(format!("{:?} is not a URL", input.url));
        };
        let method_name = input.method.as_deref().unwrap_or("GET");
        let method = reqwest::Method::from_bytes(method_name.as_bytes()).expect("checked method");
        log.push(format!("> {method_name} {}\n", loggable_url(&url)).as_bytes());
        let mut request = client.request(method, url);
        for (name, value) in input.headers.iter().flatten() {
            request = request.header(name, value);
        }
        request = match input.body {
            Some(Value::String(text)) => request.body(text),
            Some(body) => request.json(&body),
            None => request,
        };
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() && timed_by_job => {
                return StepEnd::Failed {
                    status: RunStatus::TimedOut,
                    error: "the request timed out (the job's timeout)".into(),
                    exit_code: None,
                };
            }
            Err(e) => return failed(format!("the request failed: {}", e.without_url())),
        };
        let status = response.status();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(seen)) => {
                    seen.push_str(", ");
                    seen.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_string(), Value::String(value));
                }
            }
        }
        let is_json = headers
            .get("content-type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
        let cap = self.settings.log_cap;
        let mut body = Vec::new();
        let mut omitted = 0usize;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = cap.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    omitted += chunk.len().saturating_sub(room);
                }
                Ok(None) => break,
                Err(e) => return failed(format!("reading the response failed: {}", e.without_url())),
            }
        }
        log.push(
            format!(
                "< {} {}, {} bytes{}\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                body.len() + omitted,
                if omitted > 0 { format!(" ({omitted} past the cap not kept)") } else { String::new() }
            )
            .as_bytes(),
        );
        let text = String::from_utf8_lossy(&body).into_owned();
        let body = match is_json && omitted == 0 {
            true => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            false => Value::String(text),
        };
        if !ExpectStatus::allows(input.expect_status.as_ref(), status.as_u16()) {
            let expected = match &input.expect_status {
                None => "2xx".to_string(),
                Some(ExpectStatus::One(s)) => s.to_string(),
                Some(ExpectStatus::Any(list)) => format!("{list:?}"),
            };
            return failed(format!("the response's status is {}, expected {expected}", status.as_u16()));
        }
        StepEnd::Succeeded(json!({ "status": status.as_u16(), "headers": headers, "body": body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_urls_hold_no_credentials_nor_query() {
        let url = reqwest::Url::parse("https://user:pw@example.com:8443/a/b?token=x#f").unwrap();
        assert_eq!(loggable_url(&url), "https://example.com:8443/a/b?…");
        let url = reqwest::Url::parse("http://example.com/x").unwrap();
        assert_eq!(loggable_url(&url), "http://example.com/x");
    }
}
