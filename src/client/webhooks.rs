//! `cronstack webhooks …`: outbound event subscriptions (webhooks, Slack, Discord, Teams) and
//! their deliveries.

use clap::Subcommand;
use serde_json::{Map, json};

use super::api::Api;
use super::output::{Style, Table, local_time, opt, print_json};
use super::{Output, api_err, one_line};
use crate::api::v1::{Deleted, DeliveryPage, NewWebhookView, WebhookView};

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
async fn webhook(api: &Api, key: &str) -> anyhow::Result<WebhookView> {
    if let Ok(id) = key.parse::<i64>() {
        match api.get(&format!("/webhooks/byid/{id}")).await {
            Err(e) if e.is_not_found() => {}
            other => return other.map_err(api_err),
        }
    }
    let all: Vec<WebhookView> = api.all("/webhooks", "webhooks").await.map_err(api_err)?;
    let mut named = all.into_iter().filter(|w| w.name.as_deref() == Some(key));
    match (named.next(), named.next()) {
        (Some(w), None) => Ok(w),
        (Some(_), Some(_)) => anyhow::bail!("several subscriptions are named {key:?}: give the id"),
        (None, _) => anyhow::bail!("no webhook subscription with the id or name {key:?}"),
    }
}

fn scope_text(w: &WebhookView) -> String {
    match (w.stack_id, w.job_id, w.monitor_id) {
        (_, Some(j), _) => format!("job #{j}"),
        (Some(s), _, _) => format!("stack #{s}"),
        (_, _, Some(m)) => format!("monitor #{m}"),
        _ => "all".into(),
    }
}

pub(super) async fn webhooks(api: &Api, out: Output, style: Style, cmd: WebhooksCmd) -> anyhow::Result<()> {
    match cmd {
        WebhooksCmd::Ls => {
            let all: Vec<WebhookView> = api.all("/webhooks", "webhooks").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&all);
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "KIND", "OF", "EVENTS", "URL"]);
            for w in &all {
                let events: Vec<&str> = w.events.iter().map(|e| e.as_str()).collect();
                t.row(vec![
                    w.id.to_string(),
                    w.name.clone().unwrap_or_else(|| "-".into()),
                    w.kind.to_string(),
                    scope_text(w),
                    events.join(","),
                    one_line(&w.url, 60),
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
                body.insert("stack_id".into(), json!(api.stack(&s).await.map_err(api_err)?.id()));
            }
            if let Some(j) = job {
                body.insert("job_id".into(), json!(api.job(&j).await.map_err(api_err)?.id));
            }
            if let Some(m) = monitor {
                body.insert("monitor_id".into(), json!(m));
            }
            let created: NewWebhookView = api.post("/webhooks", &body).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                outln!("created webhook subscription {}; its signing secret (shown once):", created.id);
                outln!("{}", created.secret);
            }
        }
        WebhooksCmd::Rm { webhook: key } => {
            let id = webhook(api, &key).await?.id;
            let answer: Deleted = api.delete(&format!("/webhooks/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("deleted webhook subscription {id}");
            }
        }
        WebhooksCmd::Deliveries { webhook: key, page } => {
            let id = webhook(api, &key).await?.id;
            let answer: DeliveryPage =
                api.get(&format!("/webhooks/byid/{id}/deliveries?page={page}")).await.map_err(api_err)?;
            let deliveries = answer.deliveries;
            if out == Output::Json {
                print_json(&deliveries);
                return Ok(());
            }
            if deliveries.is_empty() {
                outln!("{}", style.dim("no deliveries"));
                return Ok(());
            }
            let mut t = Table::new(&["ID", "EVENT", "STATUS", "ATTEMPTS", "HTTP", "CREATED", "ERROR"]);
            for d in &deliveries {
                t.row(vec![
                    d.id.to_string(),
                    d.event.to_string(),
                    style.status(d.status.as_str()),
                    d.attempts.to_string(),
                    opt(d.last_status_code),
                    local_time(Some(&d.created_at)),
                    one_line(d.last_error.as_deref().unwrap_or("-"), 50),
                ]);
            }
            t.print(style);
            let count = answer.count;
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
