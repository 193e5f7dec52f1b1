//! `cronstack users …`: your own account, over the API. `cronstack user add` is the
//! administrator's: it works on the database directly.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;

use super::api::Api;
use super::output::print_json;
use super::{Output, api_err};
use crate::api::v1::SessionView;

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Set your password (for `POST /api/v1/authenticate` and the dashboard); needs a token
    /// with the admin scope. On a terminal it asks for the current password (empty when you
    /// have none) and the new one twice; otherwise it reads two lines from standard input:
    /// the current password (an empty line when none), then the new one.
    Passwd,
}

pub(super) async fn users(api: &Api, out: Output, cmd: UsersCmd) -> anyhow::Result<()> {
    match cmd {
        UsersCmd::Passwd => {
            let (current, new) = read_passwords()?;
            let body = if current.is_empty() {
                json!({ "password": new })
            } else {
                json!({ "password": new, "current_password": current })
            };
            let answer: SessionView = api.put("/password", &body).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                let me = api.me().await.map_err(api_err)?;
                outln!("password changed for {}", me.username);
            }
        }
    }
    Ok(())
}

/// `(current, new)`: prompted for without echo on a terminal, else two lines of stdin.
fn read_passwords() -> anyhow::Result<(String, String)> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut lines = stdin.lock().lines();
        let mut next = |what: &str| -> anyhow::Result<String> {
            Ok(lines.next().with_context(|| format!("standard input ended before the {what}"))??)
        };
        let current = next("current password (an empty line when you have none)")?;
        let new = next("new password")?;
        return Ok((current, new));
    }
    let current = prompt("current password (empty if none): ")?;
    let new = prompt("new password: ")?;
    if prompt("new password again: ")? != new {
        bail!("the two new passwords differ; nothing changed");
    }
    Ok((current, new))
}

fn prompt(label: &str) -> anyhow::Result<String> {
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let echo = |on: &str| {
        let _ = std::process::Command::new("stty").arg(on).stdin(std::process::Stdio::inherit()).status();
    };
    echo("-echo");
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    echo("echo");
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
