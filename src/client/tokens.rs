//! `cronstack tokens …`: the caller's API tokens, over the API (the `admin` scope). `cronstack
//! token create` is the administrator's: it works on the database directly, for any user.

use clap::Subcommand;
use serde_json::{Value, json};

use super::api::Api;
use super::output::{Style, Table, cell, local_time, print_json};
use super::{Output, api_err, id_of};

#[derive(Subcommand, Debug)]
pub enum TokensCmd {
    /// List your tokens (never their secrets).
    Ls,
    /// Issue a token with some of your own scopes; prints its secret, once, as the last line.
    Create {
        /// A name to tell it apart.
        name: Option<String>,
        /// public (read, run, pause), jobs (create/change/delete), admin (tokens, password).
        /// Repeatable; no wider than the token you call with.
        #[arg(long = "scope", required = true, value_parser = ["public", "jobs", "admin"])]
        scopes: Vec<String>,
    },
    /// Revoke a token (TOKEN = id or name).
    Revoke {
        // Not `token`: the global --token's id.
        #[arg(value_name = "TOKEN")]
        key: String,
    },
}

fn scopes_text(t: &Value) -> String {
    t["scopes"].as_array().into_iter().flatten().map(cell).collect::<Vec<_>>().join(",")
}

pub(super) async fn tokens(api: &Api, out: Output, style: Style, cmd: TokensCmd) -> anyhow::Result<()> {
    match cmd {
        TokensCmd::Ls => {
            let answer = api.get("/tokens").await.map_err(api_err)?;
            let tokens = answer["tokens"].as_array().cloned().unwrap_or_default();
            if out == Output::Json {
                print_json(&Value::Array(tokens));
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "SCOPES", "CREATED"]);
            for tok in &tokens {
                t.row(vec![
                    cell(&tok["id"]),
                    cell(&tok["name"]),
                    scopes_text(tok),
                    local_time(&tok["created_at"]),
                ]);
            }
            t.print(style);
        }
        TokensCmd::Create { name, scopes } => {
            let created =
                api.post("/tokens", &json!({ "name": name, "scopes": scopes })).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                outln!("token {} with scopes {} (shown once):", cell(&created["id"]), scopes_text(&created));
                outln!("{}", cell(&created["token"]));
            }
        }
        TokensCmd::Revoke { key: token } => {
            let id = match token.parse::<i64>() {
                Ok(id) => id,
                Err(_) => {
                    let answer = api.get("/tokens").await.map_err(api_err)?;
                    let mut named = answer["tokens"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|t| t["name"] == token.as_str());
                    match (named.next(), named.next()) {
                        (Some(t), None) => id_of(t)?,
                        (Some(_), Some(_)) => {
                            anyhow::bail!("several tokens are named {token:?}: give the id")
                        }
                        (None, _) => anyhow::bail!("no token with the id or name {token:?}"),
                    }
                }
            };
            let answer = api.delete(&format!("/tokens/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("revoked token {id}");
            }
        }
    }
    Ok(())
}
