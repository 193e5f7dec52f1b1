//! `cronstack webhooks …`: outbound event subscriptions (webhooks, Slack, Discord, Teams) and
//! their deliveries.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::api::Api;
use super::output::{Style, Table, cell, local_time, print_json};
use super::{Output, api_err, id_of, one_line};

#[derive(Subcommand, Debug)]
pub enum WebhooksCmd {
    /// List your subscriptions (never their secrets).
    Ls,
    /// Subscribe URL to events; prints the signing secret (of a `webhook` kind), once.
    Create {
        /// Where deliveries are POSTed. (Not `url`: the global --url's id.)
        #[arg(value_name = "URL")]
        target: String,
        /// An event (repeatable): run.succeeded, run.failed, job.fail, monitor.down … (the
        /// server's refusal lists them all).
        #[arg(long = "event", value_name = "EVENT", required = true)]
        events: Vec<String>,
        /// How deliveries are shaped: webhook (signed event JSON), slack, discord, teams.
        #[arg(long, value_parser = ["webhook", "slack", "discord", "teams"])]
        kind: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Only this stack's events (id or name).
        #[arg(long, conflicts_with = "monitor")]
        stack: Option<String>,
        /// Only this job's events (id or name).
        #[arg(long, conflicts_with = "monitor")]
        job: Option<String>,
        /// Only this monitor's events (its id).
        #[arg(long, value_name = "ID")]
        monitor: Option<i64>,
        /// The signing secret (default: a random one, printed).
        #[arg(long)]
        secret: Option<String>,
    },
    /// Delete a subscription and its deliveries (WEBHOOK = id or name).
    Rm { webhook: String },
    /// A subscription's deliveries, newest first (WEBHOOK = id or name).
    Deliveries {
        webhook: String,
        /// Page of 10.
        #[arg(long, default_value_t = 1)]
        page: i64,
    },
}

/// A subscription by id or, failing that, by name.
async fn webhook(api: &Api, key: &str) -> anyhow::Result<Value> {
    if let Ok(id) = key.parse::<i64>() {
        match api.get(&format!("/webhooks/byid/{id}")).await {
            Err(e) if e.is_not_found() => {}
            other => return other.map_err(api_err),
        }
    }
    let all = api.all("/webhooks", "webhooks").await.map_err(api_err)?;
    let mut named = all.into_iter().filter(|w| w["name"].as_str() == Some(key));
    match (named.next(), named.next()) {
        (Some(w), None) => Ok(w),
        (Some(_), Some(_)) => anyhow::bail!("several subscriptions are named {key:?}: give the id"),
        (None, _) => anyhow::bail!("no webhook subscription with the id or name {key:?}"),
    }
}

fn scope_text(w: &Value) -> String {
    match (w["stack_id"].as_i64(), w["job_id"].as_i64(), w["monitor_id"].as_i64()) {
        (_, Some(j), _) => format!("job #{j}"),
        (Some(s), _, _) => format!("stack #{s}"),
        (_, _, Some(m)) => format!("monitor #{m}"),
        _ => "all".into(),
    }
}

pub(super) async fn webhooks(api: &Api, out: Output, style: Style, cmd: WebhooksCmd) -> anyhow::Result<()> {
    match cmd {
        WebhooksCmd::Ls => {
            let all = api.all("/webhooks", "webhooks").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&Value::Array(all));
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "KIND", "OF", "EVENTS", "URL"]);
            for w in &all {
                let events: Vec<String> = w["events"].as_array().into_iter().flatten().map(cell).collect();
                t.row(vec![
                    cell(&w["id"]),
                    cell(&w["name"]),
                    cell(&w["kind"]),
                    scope_text(w),
                    events.join(","),
                    one_line(&cell(&w["url"]), 60),
                ]);
            }
            t.print(style);
        }
        WebhooksCmd::Create { target, events, kind, name, stack, job, monitor, secret } => {
            let mut body = Map::new();
            body.insert("url".into(), json!(target));
            body.insert("events".into(), json!(events));
            for (key, value) in [("kind", kind), ("name", name), ("secret", secret)] {
                if let Some(v) = value {
                    body.insert(key.into(), json!(v));
                }
            }
            if let Some(s) = stack {
                body.insert("stack_id".into(), json!(id_of(&api.stack(&s).await.map_err(api_err)?)?));
            }
            if let Some(j) = job {
                body.insert("job_id".into(), json!(id_of(&api.job(&j).await.map_err(api_err)?)?));
            }
            if let Some(m) = monitor {
                body.insert("monitor_id".into(), json!(m));
            }
            let created = api.post("/webhooks", &Value::Object(body)).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                outln!(
                    "created webhook subscription {}; its signing secret (shown once):",
                    cell(&created["id"])
                );
                outln!("{}", cell(&created["secret"]));
            }
        }
        WebhooksCmd::Rm { webhook: key } => {
            let id = id_of(&webhook(api, &key).await?)?;
            let answer = api.delete(&format!("/webhooks/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("deleted webhook subscription {id}");
            }
        }
        WebhooksCmd::Deliveries { webhook: key, page } => {
            let id = id_of(&webhook(api, &key).await?)?;
            let answer =
                api.get(&format!("/webhooks/byid/{id}/deliveries?page={page}")).await.map_err(api_err)?;
            let deliveries = answer["deliveries"].as_array().cloned().unwrap_or_default();
            if out == Output::Json {
                print_json(&Value::Array(deliveries));
                return Ok(());
            }
            if deliveries.is_empty() {
                outln!("{}", style.dim("no deliveries"));
                return Ok(());
            }
            let mut t = Table::new(&["ID", "EVENT", "STATUS", "ATTEMPTS", "HTTP", "CREATED", "ERROR"]);
            for d in &deliveries {
                t.row(vec![
                    cell(&d["id"]),
                    cell(&d["event"]),
                    style.status(d["status"].as_str().unwrap_or("-")),
                    cell(&d["attempts"]),
                    cell(&d["last_status_code"]),
                    local_time(&d["created_at"]),
                    one_line(&cell(&d["last_error"]), 50),
                ]);
            }
            t.print(style);
            let count = answer["count"].as_i64().unwrap_or(0);
            if count > 10 {
                outln!(
                    "{}",
                    style.dim(&format!("page {page} of {} ({count}); --page N for more", (count + 9) / 10))
                );
            }
        }
    }
    Ok(())
}
