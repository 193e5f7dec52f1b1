//! `cronstack schedules …`: cron expressions with time zones, periods, one-time timestamps.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::api::Api;
use super::output::{Style, Table, cell, local_time, print_json, zoned_time};
use super::{Output, api_err, id_of};
use crate::api::v1::ScheduleView;

/// One of a cron expression, a period or a timestamp.
#[derive(Args, Debug, Clone, Default)]
pub struct Rule {
    /// A cron expression (5 fields, 6 with seconds, @daily, @every 90s…).
    #[arg(long, conflicts_with_all = ["every", "at"])]
    cron: Option<String>,
    /// Time zone of --cron (IANA name, e.g. Europe/Berlin). On edit, --cron alone keeps the
    /// zone and --tz alone changes only the zone.
    #[arg(long, conflicts_with_all = ["every", "at"])]
    tz: Option<String>,
    /// This often: seconds, or a duration such as 90s, 5m, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = super::parse::seconds, conflicts_with = "at")]
    every: Option<i64>,
    /// Once, at this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

impl Rule {
    pub(super) fn is_given(&self) -> bool {
        self.cron.is_some() || self.tz.is_some() || self.every.is_some() || self.at.is_some()
    }

    /// `(config, once)` for the API, for a new schedule.
    pub(super) fn config(&self) -> anyhow::Result<(Value, bool)> {
        if self.cron.is_none() && self.tz.is_some() {
            bail!("--tz is the zone of --cron: give --cron EXPR too");
        }
        self.config_over(&Value::Null)
    }

    /// `(config, once)` replacing `current` (a schedule's config): a new --cron keeps the
    /// current cron's zone unless --tz is given; --tz alone changes only the zone.
    pub(super) fn config_over(&self, current: &Value) -> anyhow::Result<(Value, bool)> {
        if self.cron.is_none()
            && let Some(tz) = &self.tz
        {
            let Some(expr) = current["cron"].as_str() else {
                bail!("--tz changes a cron schedule's zone, and this one is not cron: give --cron EXPR too");
            };
            return Ok((json!({ "cron": expr, "timezone": tz }), false));
        }
        if let Some(expr) = &self.cron {
            let mut c = json!({ "cron": expr });
            if let Some(tz) = self.tz.as_deref().or_else(|| current["timezone"].as_str()) {
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
        bail!("give one of --cron EXPR, --every DURATION or --at TIME")
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
    /// Change a schedule no job uses (SCHEDULE = id or name); what is not given stays. A
    /// schedule in use is frozen (its jobs' slots come from it): `jobs edit JOB --cron …`
    /// changes a job's.
    Edit {
        schedule: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        rule: Rule,
    },
    /// Delete a schedule no job uses (SCHEDULE = id or name).
    Rm { schedule: String },
}

pub(super) fn schedule_text(config: &Value) -> String {
    if let Some(expr) = config["cron"].as_str() {
        format!("cron {expr} ({})", config["timezone"].as_str().unwrap_or("UTC"))
    } else if let Some(p) = config["period"].as_i64() {
        format!("every {}", super::parse::human_seconds(p))
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
            let all: Vec<ScheduleView> = api.all_as("/schedules", "schedules").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&serde_json::to_value(&all)?);
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "RULE", "IN WORDS", "NEXT"]);
            for s in &all {
                let zone = s.config.get("timezone").and_then(Value::as_str);
                let next = s.upcoming.first().map_or("-".into(), |t| zoned_time(&json!(t), zone));
                t.row(vec![
                    s.id.to_string(),
                    s.name.clone().unwrap_or_else(|| "-".into()),
                    schedule_text(&s.config),
                    s.description.clone(),
                    next,
                ]);
            }
            t.print(style);
        }
        SchedulesCmd::Edit { schedule, name, rule } => {
            let current = api.schedule(&schedule).await.map_err(api_err)?;
            let id = id_of(&current)?;
            let mut body = json!({});
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            if rule.is_given() {
                let (config, once) = rule.config_over(&current["config"])?;
                body["config"] = config;
                body["once"] = json!(once);
            }
            if body.as_object().is_some_and(|b| b.is_empty()) {
                bail!("nothing to change: give --name, --cron, --tz, --every or --at");
            }
            let updated = api.put(&format!("/schedules/{id}"), &body).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&updated);
            } else {
                let updated: ScheduleView = serde_json::from_value(updated)?;
                outln!("updated schedule {id}: {}", updated.description);
            }
        }
        SchedulesCmd::Rm { schedule } => {
            let id = id_of(&api.schedule(&schedule).await.map_err(api_err)?)?;
            let answer = api.delete(&format!("/schedules/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("deleted schedule {id}");
            }
        }
        SchedulesCmd::Create { name, rule } => {
            let id = create_schedule(api, name.as_deref(), &rule).await?;
            let created: ScheduleView =
                api.get_as(&format!("/schedules/byid/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&serde_json::to_value(&created)?);
            } else {
                outln!("created schedule {id}: {}", created.description);
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
