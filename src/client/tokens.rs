//! `cronstack tokens …`: the caller's API tokens, over the API (the `admin` scope). `cronstack
//! token create` is the administrator's: it works on the database directly, for any user.

use clap::Subcommand;
use serde_json::json;

use super::api::Api;
use super::output::{Style, Table, local_time, print_json};
use super::{Output, api_err};
use crate::api::v1::{Deleted, NewTokenView, TokenList};
use crate::domain::Scope;

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

fn scopes_text(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

pub(super) async fn tokens(api: &Api, out: Output, style: Style, cmd: TokensCmd) -> anyhow::Result<()> {
    match cmd {
        TokensCmd::Ls => {
            let tokens = api.get::<TokenList>("/tokens").await.map_err(api_err)?.tokens;
            if out == Output::Json {
                print_json(&tokens);
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "SCOPES", "CREATED"]);
            for tok in &tokens {
                t.row(vec![
                    tok.id.to_string(),
                    tok.name.clone(),
                    scopes_text(&tok.scopes),
                    local_time(Some(&tok.created_at)),
                ]);
            }
            t.print(style);
        }
        TokensCmd::Create { name, scopes } => {
            let created: NewTokenView =
                api.post("/tokens", &json!({ "name": name, "scopes": scopes })).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                outln!("token {} with scopes {} (shown once):", created.id, scopes_text(&created.scopes));
                outln!("{}", created.token);
            }
        }
        TokensCmd::Revoke { key: token } => {
            let id = match token.parse::<i64>() {
                Ok(id) => id,
                Err(_) => {
                    let answer = api.get::<TokenList>("/tokens").await.map_err(api_err)?;
                    let mut named = answer.tokens.iter().filter(|t| t.name == token);
                    match (named.next(), named.next()) {
                        (Some(t), None) => t.id,
                        (Some(_), Some(_)) => {
                            anyhow::bail!("several tokens are named {token:?}: give the id")
                        }
                        (None, _) => anyhow::bail!("no token with the id or name {token:?}"),
                    }
                }
            };
            let answer: Deleted = api.delete(&format!("/tokens/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("revoked token {id}");
            }
        }
    }
    Ok(())
}
