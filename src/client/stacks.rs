//! `cronstack stacks …`: the commands (with environment and working directory) jobs run.

use std::collections::HashMap;

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::api::Api;
use super::output::{Style, Table, local_time, opt, print_fields, print_json};
use super::{Output, api_err, one_line};
use super::{pipelines, schedules::schedule_text};
use crate::api::v1::{Created, Deleted, Listed, StackJob, StackView};
use crate::secrets::Secret;

#[derive(Subcommand, Debug)]
pub enum StacksCmd {
    /// List stacks.
    Ls,
    /// One stack and its jobs (STACK = id or name).
    Show { stack: String },
    /// Create a stack: one command, or a pipeline of blocks.
    Create {
        name: String,
        /// The shell command its jobs run (`sh -c`; see `run --help` for its arguments).
        #[arg(long, required_unless_present = "block", conflicts_with = "block")]
        command: Option<String>,
        /// A pipeline's block type (repeatable, in order; `cronstack types` lists them), each
        /// followed by its --conversion.
        #[arg(long, value_name = "TYPE")]
        block: Vec<String>,
        /// The block's conversion: its input as JSON, where "\u0001/json/pointer\u0002"
        /// stands for a value of the previous step's output (`/input/…`), the block's state
        /// (`/state/…`) or the run (`/run/…`).
        #[arg(long, value_name = "JSON", requires = "block")]
        conversion: Vec<String>,
        /// List it read-only to every user of the server (and without credentials).
        #[arg(long)]
        public: bool,
        /// An environment variable, KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// A secret environment variable (repeatable): sealed at rest, never shown again,
        /// masked as *** in run logs. KEY alone takes the value from this command's own
        /// environment variable KEY, keeping it off the command line.
        #[arg(long = "secret-env", value_name = "KEY=VALUE", value_parser = parse_secret_env)]
        secret_env: Vec<(String, Secret)>,
        /// Working directory of its jobs.
        #[arg(long)]
        workdir: Option<String>,
    },
    /// Delete a stack no job uses (STACK = id or name): refused while jobs use it.
    Rm { stack: String },
    /// Change a stack (STACK = id or name); what is not given stays.
    Edit {
        stack: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        command: Option<String>,
        /// Set an environment variable, KEY=VALUE (repeatable; the others stay).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// Remove an environment variable (repeatable).
        #[arg(long = "unset-env", value_name = "KEY")]
        unset_env: Vec<String>,
        /// Set a secret environment variable, KEY=VALUE or KEY (from this command's
        /// environment), repeatable; the other secret variables stay.
        #[arg(long = "secret-env", value_name = "KEY=VALUE", value_parser = parse_secret_env)]
        secret_env: Vec<(String, Secret)>,
        /// Remove a secret environment variable (repeatable).
        #[arg(long = "unset-secret-env", value_name = "KEY")]
        unset_secret_env: Vec<String>,
        #[arg(long, conflicts_with = "no_workdir")]
        workdir: Option<String>,
        /// Run in the server's working directory.
        #[arg(long)]
        no_workdir: bool,
    },
}

pub(super) fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `KEY=VALUE`, or `KEY` alone: the value of this process's environment variable KEY. The
/// value is never repeated in a message.
pub(super) fn parse_secret_env(s: &str) -> Result<(String, Secret), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), Secret::new(v))),
        Some(_) => {
            Err("expected KEY=VALUE, or KEY to take the value from the environment variable KEY".into())
        }
        None => match std::env::var(s) {
            Ok(v) => Ok((s.to_string(), Secret::new(v))),
            Err(_) => Err(format!("no environment variable {s} to take its value from (or give {s}=VALUE)")),
        },
    }
}

/// A `secret_env` request object: values set, `null`s remove.
pub(super) fn secret_changes(set: Vec<(String, Secret)>, unset: Vec<String>) -> Value {
    let mut map = Map::new();
    for k in unset {
        map.insert(k, Value::Null);
    }
    for (k, v) in set {
        map.insert(k, json!(v.expose()));
    }
    Value::Object(map)
}

/// A list of names as `A B C`, or `-`.
pub(super) fn names_or_dash(names: &[String]) -> String {
    if names.is_empty() { "-".into() } else { names.join(" ") }
}

pub(super) async fn stacks(api: &Api, out: Output, style: Style, cmd: StacksCmd) -> anyhow::Result<()> {
    match cmd {
        StacksCmd::Ls => {
            let stacks: Vec<Listed> = api.all("/blockstacks", "stacks").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&stacks);
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "JOBS", "COMMAND"]);
            for s in &stacks {
                let (jobs, command) = match s {
                    Listed::Own(s) => (s.jobs.len(), s.command.as_deref()),
                    Listed::Public(_) => (0, None),
                };
                t.row(vec![
                    s.id().to_string(),
                    s.name().to_string(),
                    jobs.to_string(),
                    one_line(&opt(command), 60),
                ]);
            }
            t.print(style);
        }
        StacksCmd::Show { stack } => {
            let listed = api.stack(&stack).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&listed);
                return Ok(());
            }
            // Someone else's public stack shows no more than its public view: the rest is `-`.
            let (own, blocks) = match &listed {
                Listed::Own(s) => (Some(&**s), &s.blocks),
                Listed::Public(p) => (None, &p.blocks),
            };
            let env: Vec<String> =
                own.into_iter().flat_map(|s| &s.env).map(|(k, v)| format!("{k}={v}")).collect();
            let command = own.and_then(|s| s.command.as_deref());
            print_fields(
                style,
                &[
                    ("id", listed.id().to_string()),
                    ("name", listed.name().to_string()),
                    ("uid", opt(own.map(|s| &s.uid))),
                    ("command", opt(command)),
                    ("env", if env.is_empty() { "-".into() } else { env.join(" ") }),
                    ("secret env", names_or_dash(own.map_or(&[], |s| &s.secret_env))),
                    ("workdir", opt(own.and_then(|s| s.workdir.as_deref()))),
                    ("created", local_time(own.map(|s| s.created_at.as_str()))),
                    ("updated", local_time(own.map(|s| s.updated_at.as_str()))),
                ],
            );
            pipelines::print_blocks(command, blocks, style);
            let jobs: &[StackJob] = own.map_or(&[], |s| &s.jobs);
            outln!();
            if jobs.is_empty() {
                outln!("{}", style.dim("no jobs"));
            } else {
                let mut t = Table::new(&["JOB", "NAME", "STATE", "SCHEDULE"]);
                for j in jobs {
                    let state = if j.do_run { "enabled" } else { "paused" };
                    t.row(vec![
                        j.id.to_string(),
                        opt(j.name.as_deref()),
                        style.status(state),
                        schedule_text(&j.schedule),
                    ]);
                }
                t.print(style);
            }
        }
        StacksCmd::Rm { stack } => {
            let current = api.stack(&stack).await.map_err(api_err)?;
            let id = current.id();
            let answer: Deleted = api.delete(&format!("/blockstacks/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("deleted stack {id} ({})", current.name());
            }
        }
        StacksCmd::Create { name, command, block, conversion, public, env, secret_env, workdir } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            match command {
                Some(c) => body.insert("command".into(), json!(c)),
                None => body.insert("blocks".into(), pipelines::blocks_body(&block, &conversion)?),
            };
            if public {
                body.insert("public".into(), json!(true));
            }
            if !env.is_empty() {
                body.insert("env".into(), json!(env.into_iter().collect::<HashMap<_, _>>()));
            }
            if !secret_env.is_empty() {
                body.insert("secret_env".into(), secret_changes(secret_env, Vec::new()));
            }
            if let Some(w) = workdir {
                body.insert("workdir".into(), json!(w));
            }
            let id = api.post::<Created, _>("/blockstacks", &body).await.map_err(api_err)?.id;
            if out == Output::Json {
                print_json(&api.get::<Listed>(&format!("/blockstacks/byid/{id}")).await.map_err(api_err)?);
            } else {
                outln!("created stack {id} ({name})");
            }
        }
        StacksCmd::Edit {
            stack,
            name,
            command,
            env,
            unset_env,
            secret_env,
            unset_secret_env,
            workdir,
            no_workdir,
        } => {
            let current = api.stack(&stack).await.map_err(api_err)?;
            let id = current.id();
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if let Some(c) = command {
                body.insert("command".into(), json!(c));
            }
            if !env.is_empty() || !unset_env.is_empty() {
                let mut map = match &current {
                    Listed::Own(s) => s.env.clone(),
                    Listed::Public(_) => Default::default(),
                };
                for k in &unset_env {
                    map.remove(k);
                }
                map.extend(env);
                body.insert("env".into(), json!(map));
            }
            if !secret_env.is_empty() || !unset_secret_env.is_empty() {
                body.insert("secret_env".into(), secret_changes(secret_env, unset_secret_env));
            }
            if let Some(w) = workdir {
                body.insert("workdir".into(), json!(w));
            } else if no_workdir {
                body.insert("workdir".into(), Value::Null);
            }
            if body.is_empty() {
                bail!(
                    "nothing to change: give --name, --command, --env, --unset-env, --secret-env, --unset-secret-env, --workdir or --no-workdir"
                );
            }
            let updated: StackView<i64> =
                api.put(&format!("/blockstacks/{id}"), &body).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&updated);
            } else {
                outln!("updated stack {id} ({})", updated.name);
            }
        }
    }
    Ok(())
}
