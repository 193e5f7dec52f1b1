//! Kragle's `/authenticate` (session cookie) and cronstack's token management.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::IntoResponse;
use axum_extra::extract::cookie::SignedCookieJar;
use serde::Deserialize;

use super::{Body, KResult, id_param, not_null};
use crate::api::doc::{Deleted, KragleOk, LoginAnswer};
use crate::api::v1::{NewTokenView, NodeList, NodeView, TokenList, TokenView, WhoamiView};
use crate::domain::{Scope, iso8601};
use crate::http::AppState;
use crate::http::auth::{clear_session_cookie, session_cookie};
use crate::http::extract::JsonBody;
use crate::service::Caller;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    username: Option<String>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    email: Option<String>,
    password: String,
}

/// `{"code": 0, "user_id": N}` and a signed `auth_tkt` cookie. Attempts are rate limited per
/// login name (argon2 is slow on purpose; guessing must be slower still).
#[utoipa::path(post, path = "/authenticate", summary = "Password login: answers {code: 0, user_id} and sets the signed auth_tkt cookie", request_body = Credentials, responses((status = 200, body = LoginAnswer)))]
pub async fn authenticate(
    State(s): State<AppState>,
    JsonBody(creds, _): Body<Credentials>,
) -> KResult<impl IntoResponse> {
    let (user, session) =
        s.service.sign_in(creds.username.as_deref(), creds.email.as_deref(), &creds.password).await?;
    let jar = SignedCookieJar::new(s.cookie_key.clone()).add(session_cookie(session));
    Ok((jar, Json(LoginAnswer { code: 0, user_id: user.id })))
}

#[utoipa::path(post, path = "/logout", summary = "Clear the auth_tkt cookie", responses((status = 200, body = KragleOk)))]
pub async fn logout(State(s): State<AppState>) -> impl IntoResponse {
    let jar = SignedCookieJar::new(s.cookie_key.clone()).add(clear_session_cookie());
    (jar, Json(KragleOk { code: 0 }))
}

#[utoipa::path(get, path = "/whoami", summary = "The caller: user id, name and scopes", responses((status = 200, body = WhoamiView)))]
pub async fn whoami(Extension(caller): Extension<Caller>) -> Json<WhoamiView> {
    Json(WhoamiView {
        user_id: caller.user_id,
        username: caller.username.to_string(),
        scopes: caller.scopes.to_vec(),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    /// `null` (or absent): no name.
    name: Option<String>,
    scopes: Vec<Scope>,
}

/// Issues a narrower (or equal) token; its secret is shown here only.
#[utoipa::path(post, path = "/tokens", summary = "Issue a token with equal or narrower scopes; the secret is shown once", request_body = TokenInput, responses((status = 200, body = NewTokenView)))]
pub async fn create_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<TokenInput>,
) -> KResult<Json<NewTokenView>> {
    let (token, secret) = s.service.issue_token(&caller, input.name.as_deref(), &input.scopes).await?;
    Ok(Json(NewTokenView {
        id: token.id,
        name: token.name,
        scopes: token.scopes,
        token: secret,
        created_at: iso8601(token.created_at),
    }))
}

#[utoipa::path(get, path = "/tokens", summary = "The caller's API tokens (admin scope)", responses((status = 200, body = TokenList)))]
pub async fn list_tokens(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> KResult<Json<TokenList>> {
    let tokens: Vec<TokenView> = s.service.list_tokens(&caller).await?.iter().map(TokenView::from).collect();
    Ok(Json(TokenList { count: tokens.len(), tokens }))
}

#[utoipa::path(delete, path = "/tokens/{id}", summary = "Revoke a token", responses((status = 200, body = Deleted)))]
pub async fn revoke_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> KResult<Json<Deleted>> {
    let id = id_param(&id, "token")?;
    s.service.revoke_token(&caller, id).await?;
    Ok(Json(Deleted { deleted: id }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    password: String,
    /// Required when the user already has a password.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "not_null")]
    current_password: Option<String>,
}

/// `PUT /password`: sets the caller's password (admin scope; the current one when set). The
/// user's other sessions end; a session caller gets a fresh cookie.
#[utoipa::path(put, path = "/password", summary = "Set the caller's password (admin scope; current_password required when one is set); ends every session cookie issued before it (a cookie caller gets a fresh one)", request_body = PasswordInput, responses((status = 200, body = LoginAnswer)))]
pub async fn change_password(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input, _): Body<PasswordInput>,
) -> KResult<impl IntoResponse> {
    let renewed =
        s.service.change_password(&caller, input.current_password.as_deref(), &input.password).await?;
    let mut jar = SignedCookieJar::new(s.cookie_key.clone());
    if let Some(session) = renewed {
        jar = jar.add(session_cookie(session));
    }
    Ok((jar, Json(LoginAnswer { code: 0, user_id: caller.user_id })))
}

/// The cluster's nodes seen in the last hour (see `Service::nodes`).
#[utoipa::path(get, path = "/nodes", summary = "The cluster's nodes seen in the last hour; running_runs counts the caller's runs", responses((status = 200, body = NodeList)))]
pub async fn nodes(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> KResult<Json<NodeList>> {
    let (nodes, this_node) = s.service.nodes(&caller).await?;
    let nodes: Vec<NodeView> = nodes
        .into_iter()
        .map(|n| NodeView {
            this_node: n.id == this_node,
            id: n.id,
            address: n.address,
            started_at: iso8601(n.started_at),
            last_seen: iso8601(n.last_seen),
            running_runs: n.running_runs,
        })
        .collect();
    Ok(Json(NodeList { count: nodes.len(), nodes }))
}
