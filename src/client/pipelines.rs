//! The client's side of pipelines: `stacks create --block TYPE --conversion JSON`, a stack's
//! blocks in `stacks show`, `cronstack types` (a run's steps in `runs show` are in `runs`).

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use super::api::Api;
use super::output::{Style, Table, cell, opt, print_json};
use super::{Output, api_err, one_line};
use crate::api::v1::{BlockTypeView, BlockView};

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

/// A stack's blocks, after `stacks show`'s fields (a one-command stack's `command` aside).
pub(super) fn print_blocks(command: Option<&str>, blocks: &[BlockView], style: Style) {
    if command.is_some() || blocks.is_empty() {
        return;
    }
    outln!();
    let mut t = Table::new(&["BLOCK", "TYPE", "NAME", "CONVERSION", "STATE OUTPUT"]);
    for b in blocks {
        let text = |v: Option<&Value>| v.map_or_else(|| "null".to_string(), Value::to_string);
        t.row(vec![
            b.id.to_string(),
            b.kind.clone(),
            opt(b.name.as_deref()),
            one_line(&text(b.conversion.as_ref()), 60),
            one_line(&text(b.state.as_ref().map(|s| &s.output)), 30),
        ]);
    }
    t.print(style);
}

/// `cronstack types`.
pub(super) async fn types(api: &Api, out: Output, style: Style) -> anyhow::Result<()> {
    let types: Vec<BlockTypeView> = api.all("/types", "types").await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&types);
        return Ok(());
    }
    let mut t = Table::new(&["TYPE", "INPUT", "DESCRIPTION"]);
    for ty in &types {
        let input = match ty.io.input.as_object() {
            Some(fields) => fields.keys().cloned().collect::<Vec<_>>().join(", "),
            None => cell(&ty.io.input),
        };
        t.row(vec![ty.name.clone(), input, one_line(&ty.description, 70)]);
    }
    t.print(style);
    Ok(())
}
