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
use super::output::{Style, Table, cell, duration_ms, local_time, print_fields, print_json};
use super::{Conn, Exit, Output, api_err, config};
use crate::api::v1::{MonitorView, PingPage};
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
        match api.get_as(&format!("/monitors/byid/{id}")).await {
            Err(e) if e.is_not_found() => {}
            other => return other,
        }
    }
    let all: Vec<MonitorView> = api.all_as("/monitors", "monitors").await?;
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
    let s = &m.schedule;
    let field = |name: &str| s.get(name).cloned().unwrap_or(Value::Null);
    match (field("cron").as_str(), field("period").as_i64()) {
        (Some(expr), _) => format!("{expr} ({})", field("timezone").as_str().unwrap_or("UTC")),
        (None, Some(p)) => format!("every {p} s"),
        _ => cell(s),
    }
}

pub(super) async fn monitors(api: &Api, out: Output, style: Style, cmd: MonitorsCmd) -> anyhow::Result<()> {
    let one = |v: Value| {
        if out == Output::Json {
            print_json(&v);
        }
        v
    };
    match cmd {
        MonitorsCmd::Ls => {
            let all: Vec<MonitorView> = api.all_as("/monitors", "monitors").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&serde_json::to_value(&all)?);
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
                    local_time(&json!(m.last_ping_at)),
                    local_time(&json!(m.next_expected)),
                ]);
            }
            t.print(style);
        }
        MonitorsCmd::Show { monitor: key } => {
            let m = monitor(api, &key).await.map_err(api_err)?;
            let id = m.id;
            let pings: PingPage = api.get_as(&format!("/monitors/byid/{id}/pings")).await.map_err(api_err)?;
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
                        format!(
                            "{} ({})",
                            local_time(&json!(m.last_ping_at)),
                            cell(&json!(m.last_ping_kind))
                        ),
                    ),
                    ("next expected", local_time(&json!(m.next_expected))),
                    ("down after", local_time(&json!(m.down_after))),
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
                    cell(&json!(p.exit_code)),
                    duration_ms(&json!(p.duration_ms)),
                    local_time(&json!(p.created_at)),
                    last.chars().take(60).collect(),
                ]);
            }
            t.print(style);
        }
        MonitorsCmd::Create { name, cron, tz, every, grace } => {
            let schedule = match (cron, every) {
                (Some(expr), _) => {
                    let mut s = json!({ "cron": expr });
                    if let Some(tz) = tz {
                        s["timezone"] = json!(tz);
                    }
                    s
                }
                (None, Some(p)) => json!({ "period": p }),
                (None, None) => bail!("give --cron EXPR or --every DURATION"),
            };
            let mut body = json!({ "name": name, "schedule": schedule });
            if let Some(g) = grace {
                body["grace_s"] = json!(g);
            }
            let m: MonitorView =
                serde_json::from_value(one(api.post("/monitors", &body).await.map_err(api_err)?))?;
            if out != Output::Json {
                outln!("created monitor {} ({}); ping it at:", m.id, m.name);
                outln!("{}{}", api.base, m.ping_url);
            }
        }
        MonitorsCmd::Pause { monitor: key } => set_paused(api, out, style, &key, true).await?,
        MonitorsCmd::Unpause { monitor: key } => set_paused(api, out, style, &key, false).await?,
        MonitorsCmd::Rm { monitor: key } => {
            let id = monitor(api, &key).await.map_err(api_err)?.id;
            let answer = one(api.delete(&format!("/monitors/byid/{id}")).await.map_err(api_err)?);
            if out != Output::Json {
                outln!("deleted monitor {}", cell(&answer["deleted"]));
            }
        }
    }
    Ok(())
}

async fn set_paused(api: &Api, out: Output, style: Style, key: &str, paused: bool) -> anyhow::Result<()> {
    let id = monitor(api, key).await.map_err(api_err)?.id;
    let m = api.put(&format!("/monitors/byid/{id}"), &json!({ "paused": paused })).await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&m);
    } else {
        let m: MonitorView = serde_json::from_value(m)?;
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
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["msg"].as_str().map(str::to_string))
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
