//! `cronstack monitors …` (heartbeat monitors through the v1 API) and `cronstack ping`, which
//! pings a monitor — or wraps a command: pings start, runs it, pings its result with the tail
//! of its output, and exits with its exit code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::api::{Api, ApiError, ApiResult};
use super::output::{Style, Table, cell, duration_ms, local_time, opt, print_fields, print_json};
use super::{Conn, Exit, Output, api_err, config};
use crate::api::v1::{Deleted, ErrorBody, MonitorView, PingPage};
use crate::domain::ScheduleConfig;
use crate::domain::monitor::{MonitorState, PING_BODY_MAX, PingKind};

#[derive(Subcommand, Debug)]
pub enum MonitorsCmd {
    /// List monitors with their state and last ping.
    Ls,
    /// One monitor and its recent pings (MONITOR = id or name).
    Show { monitor: String },
    /// Create a monitor: it expects a ping on --cron's times or every --every, and goes down
    /// --grace after a missed one. Prints its ping URL.
    Create {
        name: String,
        /// A cron expression (5 fields, 6 with seconds, @daily…) of when the job runs.
        #[arg(long, conflicts_with = "every", required_unless_present = "every")]
        cron: Option<String>,
        /// Time zone of --cron (IANA name).
        #[arg(long, requires = "cron")]
        tz: Option<String>,
        /// The job runs this often (seconds, or 30s, 5m, 1h…).
        #[arg(long, value_name = "DURATION", value_parser = super::parse::seconds)]
        every: Option<i64>,
        /// How long after the expected time before it is down (default 1h).
        #[arg(long, value_name = "DURATION", value_parser = super::parse::seconds)]
        grace: Option<i64>,
    },
    /// Pause a monitor: pings are recorded, its state stays `paused`.
    Pause { monitor: String },
    /// Resume a paused monitor (as `new`, until its next ping).
    Unpause { monitor: String },
    /// Delete a monitor and its pings.
    Rm { monitor: String },
}

#[derive(Args, Debug)]
pub struct PingArgs {
    /// The monitor's uuid (from its ping_url), or the whole ping URL.
    uuid: String,
    /// Report a failure.
    #[arg(long, conflicts_with_all = ["start", "command"])]
    fail: bool,
    /// Report that the job started (the next result measures its duration).
    #[arg(long, conflicts_with = "command")]
    start: bool,
    /// A command to run, after `--`: pings start, runs it (its output passes through), pings
    /// success or its exit code with its output's last 10 KiB, and exits with its code.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// A monitor by id or, failing that, by name (from the list: there is no byname).
async fn monitor(api: &Api, key: &str) -> ApiResult<MonitorView> {
    if let Ok(id) = key.parse::<i64>() {
        match api.get(&format!("/monitors/byid/{id}")).await {
            Err(e) if e.is_not_found() => {}
            other => return other,
        }
    }
    let all: Vec<MonitorView> = api.all("/monitors", "monitors").await?;
    all.into_iter().find(|m| m.name == key).ok_or_else(|| ApiError::Server {
        status: 404,
        code: Some(6),
        message: format!("no monitor with the id or name {key:?}"),
    })
}

fn state(style: Style, s: MonitorState) -> String {
    let text = s.to_string();
    match text.as_str() {
        "up" => style.green(&text),
        "down" => style.red(&text),
        "late" | "paused" => style.yellow(&text),
        _ => text,
    }
}

/// The schedule as given: the cron expression (and zone), or `every N s`.
fn schedule_text(m: &MonitorView) -> String {
    match ScheduleConfig::from_json(&m.schedule) {
        Ok(ScheduleConfig::Cron { expr, timezone }) => format!("{expr} ({timezone})"),
        Ok(ScheduleConfig::Period { seconds }) => format!("every {seconds} s"),
        _ => cell(&m.schedule),
    }
}

pub(super) async fn monitors(api: &Api, out: Output, style: Style, cmd: MonitorsCmd) -> anyhow::Result<()> {
    match cmd {
        MonitorsCmd::Ls => {
            let all: Vec<MonitorView> = api.all("/monitors", "monitors").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&all);
                return Ok(());
            }
            let mut t =
                Table::new(&["ID", "NAME", "STATE", "SCHEDULE", "GRACE", "LAST PING", "NEXT EXPECTED"]);
            for m in &all {
                t.row(vec![
                    m.id.to_string(),
                    m.name.clone(),
                    state(style, m.state),
                    schedule_text(m),
                    format!("{} s", m.grace_s),
                    local_time(m.last_ping_at.as_deref()),
                    local_time(m.next_expected.as_deref()),
                ]);
            }
            t.print(style);
        }
        MonitorsCmd::Show { monitor: key } => {
            let m = monitor(api, &key).await.map_err(api_err)?;
            let id = m.id;
            let pings: PingPage = api.get(&format!("/monitors/byid/{id}/pings")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&json!({ "monitor": m, "pings": pings.pings }));
                return Ok(());
            }
            print_fields(
                style,
                &[
                    ("id", m.id.to_string()),
                    ("name", m.name.clone()),
                    ("state", state(style, m.state)),
                    ("ping url", format!("{}{}", api.base, m.ping_url)),
                    ("schedule", format!("{} — {}", schedule_text(&m), m.description)),
                    ("grace", format!("{} s", m.grace_s)),
                    (
                        "last ping",
                        format!("{} ({})", local_time(m.last_ping_at.as_deref()), opt(m.last_ping_kind)),
                    ),
                    ("next expected", local_time(m.next_expected.as_deref())),
                    ("down after", local_time(m.down_after.as_deref())),
                ],
            );
            let pings = pings.pings;
            outln!();
            if pings.is_empty() {
                outln!("{}", style.dim("no pings yet"));
                return Ok(());
            }
            let mut t = Table::new(&["PING", "KIND", "EXIT", "DURATION", "AT", "BODY"]);
            for p in &pings {
                let body = p.body.trim_end();
                let last = body.lines().last().unwrap_or("");
                t.row(vec![
                    p.id.to_string(),
                    match p.kind {
                        PingKind::Fail => style.red("fail"),
                        PingKind::Success => style.green("success"),
                        other => other.to_string(),
                    },
                    opt(p.exit_code),
                    duration_ms(p.duration_ms),
                    local_time(Some(&p.created_at)),
                    last.chars().take(60).collect(),
                ]);
            }
            t.print(style);
        }
        MonitorsCmd::Create { name, cron, tz, every, grace } => {
            let schedule = match (cron, every, tz) {
                (Some(expr), _, Some(tz)) => json!({ "cron": expr, "timezone": tz }),
                (Some(expr), _, None) => json!({ "cron": expr }),
                (None, Some(p), _) => json!({ "period": p }),
                (None, None, _) => bail!("give --cron EXPR or --every DURATION"),
            };
            let body = match grace {
                Some(g) => json!({ "name": name, "schedule": schedule, "grace_s": g }),
                None => json!({ "name": name, "schedule": schedule }),
            };
            let m: MonitorView = api.post("/monitors", &body).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&m);
            } else {
                outln!("created monitor {} ({}); ping it at:", m.id, m.name);
                outln!("{}{}", api.base, m.ping_url);
            }
        }
        MonitorsCmd::Pause { monitor: key } => set_paused(api, out, style, &key, true).await?,
        MonitorsCmd::Unpause { monitor: key } => set_paused(api, out, style, &key, false).await?,
        MonitorsCmd::Rm { monitor: key } => {
            let id = monitor(api, &key).await.map_err(api_err)?.id;
            let answer: Deleted = api.delete(&format!("/monitors/byid/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("deleted monitor {}", answer.deleted);
            }
        }
    }
    Ok(())
}

async fn set_paused(api: &Api, out: Output, style: Style, key: &str, paused: bool) -> anyhow::Result<()> {
    let id = monitor(api, key).await.map_err(api_err)?.id;
    let m: MonitorView =
        api.put(&format!("/monitors/byid/{id}"), &json!({ "paused": paused })).await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&m);
    } else {
        outln!("monitor {id} ({}) is {}", m.name, state(style, m.state));
    }
    Ok(())
}

/// The ping URL (without a kind): the argument if it is one, else the server's `/ping/<uuid>`.
fn ping_url(conn: &Conn, uuid: &str) -> anyhow::Result<String> {
    if uuid.starts_with("http://") || uuid.starts_with("https://") {
        return Ok(uuid.trim_end_matches('/').to_string());
    }
    let base = match &conn.url {
        Some(u) => config::normalize_url(u)?,
        None => match config::load()? {
            Some(c) => c.url,
            None => {
                bail!("no server: give the whole ping URL, run `cronstack login URL`, or set CRONSTACK_URL")
            }
        },
    };
    Ok(format!("{}/ping/{}", base.trim_end_matches('/'), super::api::segment(uuid)))
}

/// One ping; an answer other than 2xx is an error naming it.
async fn send_ping(http: &reqwest::Client, url: &str, body: Vec<u8>) -> anyhow::Result<()> {
    let resp = http.post(url).body(body).send().await.map_err(|e| anyhow!("pinging {url}: {e}"))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .ok()
        .and_then(|e| e.msg.as_ref().and_then(Value::as_str).map(str::to_string))
        .unwrap_or(text);
    bail!("pinging {url}: HTTP {status}: {}", message.trim())
}

pub async fn ping(args: PingArgs, conn: &Conn) -> anyhow::Result<()> {
    let url = ping_url(conn, &args.uuid)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("cronstack-ping/", env!("CARGO_PKG_VERSION")))
        .build()?;
    if args.command.is_empty() {
        let url = match (args.fail, args.start) {
            (true, _) => format!("{url}/fail"),
            (_, true) => format!("{url}/start"),
            _ => url,
        };
        return send_ping(&http, &url, Vec::new()).await;
    }
    // A ping that does not go through never stops the command: it is said on stderr.
    if let Err(e) = send_ping(&http, &format!("{url}/start"), Vec::new()).await {
        eprintln!("cronstack ping: {e:#}");
    }
    let (code, tail) = run_wrapped(&args.command).await?;
    if let Err(e) = send_ping(&http, &format!("{url}/{code}"), tail).await {
        eprintln!("cronstack ping: {e:#}");
    }
    if code == 0 { Ok(()) } else { Err(Exit(code).into()) }
}

/// Runs the command with its output passed through, keeping the last [`PING_BODY_MAX`] bytes
/// of both streams (in the order read); answers its exit code (128 + N for a signal N, 127
/// when it cannot start) and that tail.
async fn run_wrapped(command: &[String]) -> anyhow::Result<(u8, Vec<u8>)> {
    use std::os::unix::process::ExitStatusExt;
    let tail = Arc::new(Mutex::new(Vec::new()));
    let mut child = match tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let message = format!("cronstack ping: cannot run {:?}: {e}\n", command[0]);
            eprint!("{message}");
            return Ok((127, message.into_bytes()));
        }
    };
    let out = tokio::spawn(pass(child.stdout.take(), tokio::io::stdout(), tail.clone()));
    let err = tokio::spawn(pass(child.stderr.take(), tokio::io::stderr(), tail.clone()));
    let status = child.wait().await?;
    let _ = out.await;
    let _ = err.await;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        _ => 1,
    };
    let tail = std::mem::take(&mut *tail.lock().unwrap());
    Ok((code, tail))
}

/// Copies a child's stream to ours, keeping its tail.
async fn pass(
    from: Option<impl AsyncRead + Unpin>,
    mut to: impl AsyncWrite + Unpin,
    tail: Arc<Mutex<Vec<u8>>>,
) {
    let Some(mut from) = from else { return };
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let _ = to.write_all(&buf[..n]).await;
        let _ = to.flush().await;
        let mut kept = tail.lock().unwrap();
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > PING_BODY_MAX {
            let extra = kept.len() - PING_BODY_MAX;
            kept.drain(..extra);
        }
    }
}
