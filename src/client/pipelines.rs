//! The client's side of pipelines: `stacks create --block TYPE --conversion JSON`, a stack's
//! blocks in `stacks show`, `cronstack types`, a run's steps in `runs show`.

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use super::api::Api;
use super::output::{Style, Table, cell, duration_ms, print_json};
use super::runs::runs_table;
use super::{Output, api_err, one_line};

/// Kragle's `blocks` from `--block TYPE` and `--conversion JSON`, paired in order.
pub(super) fn blocks_body(types: &[String], conversions: &[String]) -> anyhow::Result<Value> {
    if types.len() != conversions.len() {
        bail!(
            "give one --conversion JSON after each --block TYPE ({} blocks, {} conversions)",
            types.len(),
            conversions.len()
        );
    }
    let mut blocks = Vec::with_capacity(types.len());
    for (i, (kind, conversion)) in types.iter().zip(conversions).enumerate() {
        let conversion: Value = serde_json::from_str(conversion)
            .map_err(|e| anyhow!("--conversion of block {i} ({kind}) is not JSON: {e}"))?;
        blocks.push(json!([kind, conversion]));
    }
    Ok(Value::Array(blocks))
}

/// A stack's blocks, after `stacks show`'s fields.
pub(super) fn print_blocks(s: &Value, style: Style) {
    let blocks = s["blocks"].as_array().cloned().unwrap_or_default();
    if s["command"].is_string() || blocks.is_empty() {
        return;
    }
    outln!();
    let mut t = Table::new(&["BLOCK", "TYPE", "NAME", "CONVERSION", "STATE OUTPUT"]);
    for b in &blocks {
        t.row(vec![
            cell(&b["id"]),
            cell(&b["type"]),
            cell(&b["name"]),
            one_line(&b["conversion"].to_string(), 60),
            one_line(&b["state"]["output"].to_string(), 30),
        ]);
    }
    t.print(style);
}

/// `cronstack types`.
pub(super) async fn types(api: &Api, out: Output, style: Style) -> anyhow::Result<()> {
    let answer = api.get("/types").await.map_err(api_err)?;
    let types = answer["types"].as_array().cloned().unwrap_or_default();
    if out == Output::Json {
        print_json(&Value::Array(types));
        return Ok(());
    }
    let mut t = Table::new(&["TYPE", "INPUT", "DESCRIPTION"]);
    for ty in &types {
        let input = match ty["io"]["input"].as_object() {
            Some(fields) => fields.keys().cloned().collect::<Vec<_>>().join(", "),
            None => cell(&ty["io"]["input"]),
        };
        t.row(vec![cell(&ty["name"]), input, one_line(&cell(&ty["description"]), 70)]);
    }
    t.print(style);
    Ok(())
}

/// `cronstack runs show RUN`: the run, and a pipeline run's steps.
pub(super) async fn show_run(api: &Api, out: Output, style: Style, run: i64) -> anyhow::Result<()> {
    let r = api.get(&format!("/runs/{run}")).await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&r);
        return Ok(());
    }
    let schedule = match api.get(&format!("/jobs/byid/{}", r["job"])).await {
        Ok(job) => api.get(&format!("/schedules/byid/{}", job["schedule"])).await.unwrap_or_default(),
        Err(_) => Value::Null,
    };
    runs_table(std::slice::from_ref(&r), style, super::output::schedule_zone(&schedule)).print(style);
    let Some(steps) = r["steps"].as_array() else { return Ok(()) };
    outln!();
    let mut t = Table::new(&["STEP", "TYPE", "NAME", "STATUS", "DURATION", "OUTPUT / ERROR"]);
    for s in steps {
        let took = match (s["started_at"].as_str(), s["finished_at"].as_str()) {
            (Some(a), Some(b)) => {
                match (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
                    (Ok(a), Ok(b)) => duration_ms(&json!((b - a).num_milliseconds())),
                    _ => "-".into(),
                }
            }
            _ => "-".into(),
        };
        let shown = if s["error"].is_string() { cell(&s["error"]) } else { s["output"].to_string() };
        t.row(vec![
            (s["index"].as_i64().unwrap_or(0) + 1).to_string(),
            cell(&s["type"]),
            cell(&s["name"]),
            style.status(s["status"].as_str().unwrap_or("-")),
            took,
            one_line(&shown, 60),
        ]);
    }
    t.print(style);
    Ok(())
}
