//! `cronstack schedules …`: cron expressions with time zones, periods, one-time timestamps.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::api::Api;
use super::output::{Style, Table, cell, local_time, print_json};
use super::{Output, api_err, id_of};

/// One of a cron expression, a period or a timestamp.
#[derive(Args, Debug, Clone, Default)]
pub struct Rule {
    /// A cron expression (5 fields, 6 with seconds, @daily, @every 90s…).
    #[arg(long, conflicts_with_all = ["every", "at"])]
    cron: Option<String>,
    /// Time zone of --cron (IANA name).
    #[arg(long, requires = "cron")]
    tz: Option<String>,
    /// Every this many seconds.
    #[arg(long, value_name = "SECONDS", conflicts_with = "at")]
    every: Option<i64>,
    /// Once, at this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

impl Rule {
    pub(super) fn is_given(&self) -> bool {
        self.cron.is_some() || self.every.is_some() || self.at.is_some()
    }

    /// `(config, once)` for the API.
    pub(super) fn config(&self) -> anyhow::Result<(Value, bool)> {
        if let Some(expr) = &self.cron {
            let mut c = json!({ "cron": expr });
            if let Some(tz) = &self.tz {
                c["timezone"] = json!(tz);
            }
            return Ok((c, false));
        }
        if let Some(secs) = self.every {
            return Ok((json!({ "period": secs }), false));
        }
        if let Some(at) = &self.at {
            let ts = match at.trim().parse::<i64>() {
                Ok(ts) => ts,
                Err(_) => chrono::DateTime::parse_from_rfc3339(at.trim())
                    .map_err(|_| {
                        anyhow!("--at: give RFC 3339 (2026-12-01T09:00:00Z) or Unix seconds, got {at:?}")
                    })?
                    .timestamp(),
            };
            return Ok((json!({ "timestamp": ts }), true));
        }
        bail!("give one of --cron EXPR, --every SECONDS or --at TIME")
    }
}

#[derive(Subcommand, Debug)]
pub enum SchedulesCmd {
    /// List schedules, with their rule in words.
    Ls,
    /// Create a schedule.
    Create {
        /// A name to refer to it by.
        name: Option<String>,
        #[command(flatten)]
        rule: Rule,
    },
}

pub(super) fn schedule_text(config: &Value) -> String {
    if let Some(expr) = config["cron"].as_str() {
        format!("cron {expr} ({})", config["timezone"].as_str().unwrap_or("UTC"))
    } else if let Some(p) = config["period"].as_i64() {
        format!("every {p}s")
    } else if let Some(ts) = config["timestamp"].as_i64() {
        let t = chrono::DateTime::from_timestamp(ts, 0).map(|t| crate::domain::iso8601(t.timestamp_millis()));
        format!("at {}", local_time(&json!(t)))
    } else {
        cell(config)
    }
}

pub(super) async fn schedules(api: &Api, out: Output, style: Style, cmd: SchedulesCmd) -> anyhow::Result<()> {
    match cmd {
        SchedulesCmd::Ls => {
            let all = api.all("/schedules", "schedules").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&Value::Array(all));
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "RULE", "IN WORDS", "NEXT"]);
            for s in &all {
                let next =
                    s["upcoming"].as_array().and_then(|u| u.first()).map(local_time).unwrap_or("-".into());
                t.row(vec![
                    cell(&s["id"]),
                    cell(&s["name"]),
                    schedule_text(&s["config"]),
                    cell(&s["description"]),
                    next,
                ]);
            }
            t.print(style);
        }
        SchedulesCmd::Create { name, rule } => {
            let id = create_schedule(api, name.as_deref(), &rule).await?;
            let created = api.get(&format!("/schedules/byid/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                outln!("created schedule {id}: {}", cell(&created["description"]));
            }
        }
    }
    Ok(())
}

pub(super) async fn create_schedule(api: &Api, name: Option<&str>, rule: &Rule) -> anyhow::Result<i64> {
    let (config, once) = rule.config()?;
    let mut body = json!({ "config": config });
    if once {
        body["once"] = json!(true);
    }
    if let Some(n) = name {
        body["name"] = json!(n);
    }
    id_of(&api.post("/schedules", &body).await.map_err(api_err)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_become_configs() {
        let r = Rule { cron: Some("0 3 * * *".into()), tz: Some("Europe/Paris".into()), ..Rule::default() };
        assert_eq!(r.config().unwrap(), (json!({"cron": "0 3 * * *", "timezone": "Europe/Paris"}), false));
        let r = Rule { at: Some("2026-12-01T09:00:00Z".into()), ..Rule::default() };
        assert_eq!(r.config().unwrap(), (json!({"timestamp": 1_796_115_600}), true));
        assert!(Rule::default().config().is_err());
    }
}
