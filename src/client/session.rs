//! `cronstack login` and the token prompt.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, anyhow, bail};
use clap::Args;

use super::api::Api;
use super::{Conn, config};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The server, e.g. http://127.0.0.1:7878. The API token is --token (`cronstack user
    /// add` or `token create` printed it); without it, read from stdin (prompted for on a
    /// terminal).
    // Not `url`: that is the global --url's id, which a positional of that name would take.
    #[arg(value_name = "URL")]
    server: String,
}

pub(super) async fn login(args: LoginArgs, conn: &Conn) -> anyhow::Result<()> {
    let url = config::normalize_url(&args.server)?;
    let token = match conn.token.clone() {
        Some(t) => t,
        None => read_token(&url)?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("no token given");
    }
    let api = Api::new(&url, &token);
    let me = api.me().await.map_err(|e| anyhow!("{e}"))?;
    let path = config::save(&config::Config { url: url.clone(), token })?;
    let scopes: Vec<&str> = me.scopes.iter().map(|s| s.as_str()).collect();
    outln!(
        "logged in to {url} as {} (scopes: {}); saved to {}",
        me.username,
        scopes.join(", "),
        path.display()
    );
    Ok(())
}

/// Reads a token from stdin; on a terminal, prompts without echoing it.
pub(super) fn read_token(url: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        eprint!("API token for {url}: ");
        let _ = std::io::stderr().flush();
        let _ =
            std::process::Command::new("stty").arg("-echo").stdin(std::process::Stdio::inherit()).status();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if tty {
        let _ = std::process::Command::new("stty").arg("echo").stdin(std::process::Stdio::inherit()).status();
        eprintln!();
    }
    read.context("reading the token from stdin")?;
    Ok(line)
}

pub(super) fn logout() -> anyhow::Result<()> {
    let path = config::path()?;
    if config::remove()? {
        outln!("forgot the server and token in {}", path.display());
    } else {
        outln!("not logged in ({} does not exist)", path.display());
    }
    Ok(())
}
