//! Users, passwords, API tokens and who is calling.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

use super::{Entity, Service, ServiceError, ServiceResult, on_unique, validate_name};
use crate::domain::{ApiToken, Scope, User, UserId, now_ms};
use crate::store::{NodeRecord, TokenDigest, Unique};

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Token(i64),
    /// The Kragle `auth_tkt` session cookie: the user themself, every scope.
    Session,
}

/// An authenticated caller (cloned for each request's handler: the strings are shared).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: UserId,
    pub username: std::sync::Arc<str>,
    pub scopes: std::sync::Arc<[Scope]>,
    pub credential: CredentialKind,
    /// What rate limits count against: the token, or the user for session cookies.
    pub rate_key: std::sync::Arc<str>,
}

impl Caller {
    /// Scopes are cumulative: `admin` ⊇ `jobs` ⊇ `public` (an admin token could mint any
    /// token anyway, and changing jobs without reading them makes no sense).
    pub fn require(&self, scope: Scope) -> ServiceResult<()> {
        if self.scopes.iter().any(|held| held.rank() >= scope.rank()) {
            Ok(())
        } else {
            Err(ServiceError::MissingScope(scope))
        }
    }
}

/// A session cookie's claim: the user, and the session epoch it was issued in (a password
/// change starts a new epoch and so ends every session issued before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub user_id: UserId,
    pub epoch: i64,
}

/// Tokens are `cst_` + 64 hex chars (32 random bytes); only their SHA-256 is stored.
fn new_token() -> (String, String) {
    let plain = format!("cst_{}", hex::encode(rand::random::<[u8; 32]>()));
    let hash = hash_token(&plain);
    (plain, hash)
}

/// Hashed on every request that carries a token; looked up as bytes (hex only on a miss).
fn token_digest(plain: &str) -> TokenDigest {
    TokenDigest(Sha256::digest(plain.as_bytes()).into())
}

/// The token's hash as stored.
fn hash_token(plain: &str) -> String {
    token_digest(plain).to_hex()
}

fn hash_password(password: &str) -> ServiceResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("hashing password: {e}")))
}

/// Whether `password` matches the argon2 `hash` (on a blocking thread: argon2 is slow on
/// purpose).
async fn verify_password(password: &str, hash: String) -> ServiceResult<bool> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok()
    })
    .await
    .map_err(|e| ServiceError::Internal(e.into()))
}

impl Service {
    /// Creates a user and their first token (every scope); returns the token once.
    pub async fn create_user(
        &self,
        username: &str,
        email: Option<&str>,
        password: Option<&str>,
    ) -> ServiceResult<(User, String)> {
        validate_name("username", username)?;
        if username.contains('@') {
            return Err(ServiceError::invalid(
                "username",
                "must not contain '@' (that is how emails are told apart)",
            ));
        }
        if let Some(email) = email
            && (!email.contains('@') || email.chars().any(char::is_whitespace))
        {
            return Err(ServiceError::invalid("email", "is not an email address"));
        }
        let hash = match password {
            Some("") => {
                return Err(ServiceError::invalid("password", "must not be empty"));
            }
            Some(p) => Some(hash_password(p)?),
            None => None,
        };
        let id = on_unique(
            self.store.insert_user(username, email, hash.as_deref(), now_ms()).await,
            &[Unique::Username, Unique::Email],
            ServiceError::Conflict("a user with that username or email already exists".into()),
        )?;
        let user = self.store.user(id).await?.ok_or(ServiceError::NotFound(Entity::User))?;
        let (_, token) = self.create_token(id, "default", Scope::ALL).await?;
        Ok((user, token))
    }

    pub async fn user(&self, id: UserId) -> ServiceResult<User> {
        self.store.user(id).await?.ok_or(ServiceError::NotFound(Entity::User))
    }

    pub async fn user_by_name(&self, username: &str) -> ServiceResult<User> {
        self.store.user_by_name(username).await?.ok_or(ServiceError::NotFound(Entity::User))
    }

    /// Issues a token; the plain text is returned here and never again.
    pub async fn create_token(
        &self,
        user: UserId,
        name: &str,
        scopes: &[Scope],
    ) -> ServiceResult<(ApiToken, String)> {
        if scopes.is_empty() {
            return Err(ServiceError::invalid(
                "scopes",
                format!("give at least one of {}", Scope::choices()),
            ));
        }
        if name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(ServiceError::invalid("name", "must be at most 200 printable characters"));
        }
        let mut scopes = scopes.to_vec();
        scopes.sort_by_key(|s| s.as_str());
        scopes.dedup();
        let (plain, hash) = new_token();
        let now = now_ms();
        let id = self.store.insert_token(user, name, &hash, &scopes, now).await?;
        Ok((ApiToken { id, name: name.to_string(), scopes, created_at: now }, plain))
    }

    /// A token for the caller, minted by the caller's own token or session: that needs the
    /// `admin` scope, and gives no scope the caller lacks (narrower or equal only).
    pub async fn issue_token(
        &self,
        caller: &Caller,
        name: Option<&str>,
        scopes: &[Scope],
    ) -> ServiceResult<(ApiToken, String)> {
        caller.require(Scope::Admin)?;
        if let Some(&wider) = scopes.iter().find(|s| !caller.scopes.contains(s)) {
            return Err(ServiceError::MissingScope(wider));
        }
        self.create_token(caller.user_id, name.unwrap_or(""), scopes).await
    }

    /// The cluster's nodes seen in the last hour, for any caller, with the caller's own runs
    /// on each (the `admin` scope is every user's own, not the cluster's); and this node's id.
    pub async fn nodes(&self, caller: &Caller) -> ServiceResult<(Vec<NodeRecord>, String)> {
        let since = now_ms() - 3_600_000;
        let nodes = self.store.nodes(since, caller.user_id).await?;
        Ok((nodes, self.engine.node_id().to_string()))
    }

    pub async fn list_tokens(&self, caller: &Caller) -> ServiceResult<Vec<ApiToken>> {
        caller.require(Scope::Admin)?;
        Ok(self.store.list_tokens(caller.user_id).await?)
    }

    pub async fn revoke_token(&self, caller: &Caller, id: i64) -> ServiceResult<()> {
        caller.require(Scope::Admin)?;
        if self.store.delete_token(caller.user_id, id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(Entity::Token))
        }
    }

    /// The caller a bearer token stands for; the lookup is by hash, so no secret is compared.
    pub async fn caller_for_token(&self, token: &str) -> ServiceResult<Caller> {
        if !token.starts_with("cst_") || token.len() != 68 {
            return Err(ServiceError::Unauthenticated);
        }
        let record =
            self.store.token_by_digest(&token_digest(token)).await?.ok_or(ServiceError::Unauthenticated)?;
        Ok(Caller {
            user_id: record.user_id,
            username: record.username,
            scopes: record.scopes,
            credential: CredentialKind::Token(record.token_id),
            rate_key: record.rate_key,
        })
    }

    /// The caller behind a signed, unexpired session cookie: refused once the user's password
    /// changed after it was issued (the user's epoch moved on). Cached: read on every request.
    pub async fn caller_for_session(&self, session: Session) -> ServiceResult<Caller> {
        let user = self.store.session_user(session.user_id).await?.ok_or(ServiceError::Unauthenticated)?;
        if user.session_epoch != session.epoch {
            return Err(ServiceError::Unauthenticated);
        }
        Ok(Caller {
            user_id: user.user_id,
            username: user.username,
            scopes: Scope::ALL.into(),
            credential: CredentialKind::Session,
            rate_key: format!("user:{}", user.user_id).into(),
        })
    }

    /// Checks a username-or-email and password (argon2, deliberately slow: the endpoint is
    /// rate limited).
    /// Kragle's sign-in: by username, else by email (username wins when both are given);
    /// attempts are rate limited per login name (argon2 is slow on purpose; guessing must be
    /// slower still).
    pub async fn sign_in(
        &self,
        username: Option<&str>,
        email: Option<&str>,
        password: &str,
    ) -> ServiceResult<(User, Session)> {
        let login = username
            .or(email)
            .ok_or_else(|| ServiceError::invalid("username", "give a username or an email"))?;
        self.hit(&self.limits().requests, &format!("login:{}", login.to_lowercase())).await?;
        self.login(login, password).await
    }

    /// The user and a session in their current epoch, when `password` is theirs.
    pub async fn login(&self, login: &str, password: &str) -> ServiceResult<(User, Session)> {
        let found = self.store.user_for_login(login).await?.ok_or(ServiceError::BadLogin)?;
        let hash = found.password_hash.ok_or(ServiceError::BadLogin)?;
        if !verify_password(password, hash).await? {
            return Err(ServiceError::BadLogin);
        }
        let session = Session { user_id: found.user.id, epoch: found.session_epoch };
        Ok((found.user, session))
    }

    /// Sets the caller's password (for `/authenticate` and the dashboard). A user who has one
    /// gives it as `current`: a token alone (even an admin one) does not replace it.
    /// Every session issued before ends (a stolen cookie dies with the password it was got
    /// with); a caller who changed it through a session gets a new one (`Some`), so the
    /// dashboard stays signed in. Tokens are not touched: they are revoked one by one.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: Option<&str>,
        new: &str,
    ) -> ServiceResult<Option<Session>> {
        caller.require(Scope::Admin)?;
        if new.is_empty() {
            return Err(ServiceError::invalid("password", "must not be empty"));
        }
        if new.chars().count() > 1024 {
            return Err(ServiceError::invalid("password", "must be at most 1024 characters"));
        }
        if let Some(hash) = self.store.password_hash(caller.user_id).await? {
            let current = current.ok_or_else(|| {
                ServiceError::invalid("current_password", "is required: you already have a password")
            })?;
            if !verify_password(current, hash).await? {
                return Err(ServiceError::invalid("current_password", "is not your current password"));
            }
        }
        let hash = hash_password(new)?;
        let epoch = self.store.set_password_hash(caller.user_id, &hash).await?;
        Ok((caller.credential == CredentialKind::Session)
            .then_some(Session { user_id: caller.user_id, epoch }))
    }

    /// The key that signs session cookies, shared by every node through the database.
    pub async fn cookie_key(&self) -> ServiceResult<Vec<u8>> {
        let fresh = hex::encode(rand::random::<[u8; 64]>());
        let stored = self.store.setting_or_init("cookie_key", &fresh).await?;
        hex::decode(stored).map_err(|e| ServiceError::Internal(e.into()))
    }
}

#[cfg(test)]
mod tests {
    /// Stored hashes were written as lowercase hex SHA-256: the same text must come out.
    #[test]
    fn token_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            super::hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
