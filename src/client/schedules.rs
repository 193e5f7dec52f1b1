//! `cronstack schedules …`: cron expressions with time zones, periods, one-time timestamps.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::api::Api;
use super::output::{Style, Table, cell, local_time, print_json, zoned_time};
use super::{Output, api_err};
use crate::api::v1::{Created, Deleted, ScheduleRequest, ScheduleView};
use crate::domain::ScheduleConfig;

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
        self.config_over(None)
    }

    /// `(config, once)` replacing `current` (a schedule's config): a new --cron keeps the
    /// current cron's zone unless --tz is given; --tz alone changes only the zone.
    pub(super) fn config_over(&self, current: Option<&ScheduleConfig>) -> anyhow::Result<(Value, bool)> {
        let (current_cron, current_zone) = match current {
            Some(ScheduleConfig::Cron { expr, timezone }) => (Some(expr.as_str()), Some(timezone.as_str())),
            _ => (None, None),
        };
        if self.cron.is_none()
            && let Some(tz) = &self.tz
        {
            let Some(expr) = current_cron else {
                bail!("--tz changes a cron schedule's zone, and this one is not cron: give --cron EXPR too");
            };
            return Ok((json!({ "cron": expr, "timezone": tz }), false));
        }
        if let Some(expr) = &self.cron {
            return Ok(match self.tz.as_deref().or(current_zone) {
                Some(tz) => (json!({ "cron": expr, "timezone": tz }), false),
                None => (json!({ "cron": expr }), false),
            });
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

/// A Kragle schedule config in short: `cron 0 3 * * * (Europe/Paris)`, `every 60s`, `at …`.
pub(super) fn schedule_text(config: &Value) -> String {
    match ScheduleConfig::from_json(config) {
        Ok(ScheduleConfig::Cron { expr, timezone }) => format!("cron {expr} ({timezone})"),
        Ok(ScheduleConfig::Period { seconds }) => format!("every {}", super::parse::human_seconds(seconds)),
        Ok(ScheduleConfig::Timestamp { unix_seconds }) => {
            let t = chrono::DateTime::from_timestamp(unix_seconds, 0)
                .map(|t| crate::domain::iso8601(t.timestamp_millis()));
            format!("at {}", local_time(t.as_deref()))
        }
        Ok(ScheduleConfig::Manual) | Err(_) => cell(config),
    }
}

pub(super) async fn schedules(api: &Api, out: Output, style: Style, cmd: SchedulesCmd) -> anyhow::Result<()> {
    match cmd {
        SchedulesCmd::Ls => {
            let all: Vec<ScheduleView> = api.all("/schedules", "schedules").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&all);
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "RULE", "IN WORDS", "NEXT"]);
            for s in &all {
                let next = zoned_time(s.upcoming.first().map(String::as_str), s.timezone().as_deref());
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
            let id = current.id;
            let mut body = ScheduleRequest { name, ..ScheduleRequest::default() };
            if rule.is_given() {
                let (config, once) = rule.config_over(current.rule().as_ref())?;
                body.config = Some(config);
                body.once = Some(once);
            }
            if body.name.is_none() && body.config.is_none() {
                bail!("nothing to change: give --name, --cron, --tz, --every or --at");
            }
            let updated: ScheduleView = api.put(&format!("/schedules/{id}"), &body).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&updated);
            } else {
                outln!("updated schedule {id}: {}", updated.description);
            }
        }
        SchedulesCmd::Rm { schedule } => {
            let id = api.schedule(&schedule).await.map_err(api_err)?.id;
            let answer: Deleted = api.delete(&format!("/schedules/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("deleted schedule {id}");
            }
        }
        SchedulesCmd::Create { name, rule } => {
            let id = create_schedule(api, name.as_deref(), &rule).await?;
            let created: ScheduleView = api.get(&format!("/schedules/byid/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                outln!("created schedule {id}: {}", created.description);
            }
        }
    }
    Ok(())
}

pub(super) async fn create_schedule(api: &Api, name: Option<&str>, rule: &Rule) -> anyhow::Result<i64> {
    let (config, once) = rule.config()?;
    let body =
        ScheduleRequest { name: name.map(str::to_string), config: Some(config), once: once.then_some(true) };
    Ok(api.post::<Created, _>("/schedules", &body).await.map_err(api_err)?.id)
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
