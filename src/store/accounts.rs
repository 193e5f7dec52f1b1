//! Users, API tokens and server settings.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::cache::Change;
use super::{SqlxResultExt, Store, StoreResult, get_i64, get_opt_string, get_string};
use crate::domain::{ApiToken, EpochMs, Scope, User, UserId};

/// A token's SHA-256, the only form of it kept. The token cache is keyed by its 32 bytes (a
/// hit makes no hex text); the column holds its lowercase hex ([`TokenDigest::to_hex`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// What a token hash resolves to.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub token_id: i64,
    pub user_id: UserId,
    /// Shared, not copied, by each request's caller.
    pub username: std::sync::Arc<str>,
    pub scopes: std::sync::Arc<[Scope]>,
    /// What the token's requests count against (`token:<id>`).
    pub rate_key: std::sync::Arc<str>,
}

/// What a session cookie's user id resolves to: read on every request a cookie makes.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user_id: UserId,
    /// Shared, not copied, by each request's caller.
    pub username: std::sync::Arc<str>,
    /// Bumped by every password change: a cookie of an older epoch is refused.
    pub session_epoch: i64,
}

/// A user found by login name, with what signing in needs.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user: User,
    pub password_hash: Option<String>,
    pub session_epoch: i64,
}

fn parse_scopes(s: &str) -> Vec<Scope> {
    s.split(',').filter_map(Scope::parse).collect()
}

fn join_scopes(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

impl Store {
    pub async fn insert_user(
        &self,
        username: &str,
        email: Option<&str>,
        password_hash: Option<&str>,
        now: EpochMs,
    ) -> StoreResult<UserId> {
        let q = sqlx::query(
            "INSERT INTO users (username, email, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(email)
        .bind(password_hash)
        .bind(now);
        let row = self.write_returning(q).await?;
        get_i64(&row, "id")
    }

    /// A user's password hash, if they have a password.
    pub async fn password_hash(&self, user: UserId) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(&self.read)
            .await
            .db()?;
        Ok(row.map(|r| get_opt_string(&r, "password_hash")).transpose()?.flatten())
    }

    /// Sets a user's password and starts a new session epoch (every session cookie issued
    /// before is void from now on, on every node); returns the new epoch.
    pub async fn set_password_hash(&self, user: UserId, hash: &str) -> StoreResult<i64> {
        let q = sqlx::query(
            "UPDATE users SET password_hash = $2, session_epoch = session_epoch + 1 WHERE id = $1 RETURNING session_epoch",
        )
        .bind(user)
        .bind(hash);
        let row = self.write_returning(q).await;
        self.changed(Change::User(user));
        get_i64(&row?, "session_epoch")
    }

    /// The user named by username or email, with their password hash and session epoch.
    pub async fn user_for_login(&self, login: &str) -> StoreResult<Option<LoginRecord>> {
        let row = sqlx::query(
            "SELECT id, username, email, password_hash, session_epoch, created_at FROM users WHERE username = $1 OR email = $1 ORDER BY (username = $1) DESC LIMIT 1",
        )
        .bind(login)
        .fetch_optional(&self.read)
        .await
        .db()?;
        row.map(|r| {
            Ok(LoginRecord {
                user: user_from_row(&r)?,
                password_hash: get_opt_string(&r, "password_hash")?,
                session_epoch: get_i64(&r, "session_epoch")?,
            })
        })
        .transpose()
    }

    /// The user behind a session cookie, through the cache (a password change invalidates it).
    pub async fn session_user(&self, id: UserId) -> StoreResult<Option<SessionRecord>> {
        if let Some(hit) = self.cache.sessions.get(&id) {
            return Ok(Some(hit));
        }
        let load = self.one("id, username, session_epoch", "users WHERE id = $1", id, session_from_row);
        self.cache.sessions.get_or_load(id, load).await
    }

    pub async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT id, username, email, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .db()?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    pub async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT id, username, email, created_at FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.read)
            .await
            .db()?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    pub async fn insert_token(
        &self,
        user: UserId,
        name: &str,
        token_hash: &str,
        scopes: &[Scope],
        now: EpochMs,
    ) -> StoreResult<i64> {
        let q = sqlx::query(
            "INSERT INTO api_tokens (user_id, name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user)
        .bind(name)
        .bind(token_hash)
        .bind(join_scopes(scopes))
        .bind(now);
        let row = self.write_returning(q).await?;
        get_i64(&row, "id")
    }

    pub async fn token_by_digest(&self, digest: &TokenDigest) -> StoreResult<Option<TokenRecord>> {
        // Built only on a miss: a hit makes no hex text.
        let load = async {
            let from_where = "api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1";
            self.one("t.id, t.user_id, t.scopes, u.username", from_where, digest.to_hex(), token_from_row)
                .await
        };
        self.cache.tokens.get_or_load(*digest, load).await
    }

    pub async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<ApiToken>> {
        let rows =
            sqlx::query("SELECT id, name, scopes, created_at FROM api_tokens WHERE user_id = $1 ORDER BY id")
                .bind(user)
                .fetch_all(&self.read)
                .await
                .db()?;
        rows.iter()
            .map(|r| {
                Ok(ApiToken {
                    id: get_i64(r, "id")?,
                    name: get_string(r, "name")?,
                    scopes: parse_scopes(&get_string(r, "scopes")?),
                    created_at: get_i64(r, "created_at")?,
                })
            })
            .collect()
    }

    pub async fn delete_token(&self, user: UserId, id: i64) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user)
            .execute(&self.write)
            .await
            .wrote()?;
        self.changed(Change::Token(id));
        Ok(done.rows_affected() > 0)
    }

    /// The setting `key`, storing `init` first when it is not set yet (first writer wins, so
    /// every node of a cluster ends up with the same value).
    pub async fn setting_or_init(&self, key: &str, init: &str) -> StoreResult<String> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(init)
            .execute(&self.write)
            .await
            .wrote()?;
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.write)
            .await
            .db()?;
        row.try_get::<String, _>("value").db()
    }
}

fn user_from_row(r: &sqlx::any::AnyRow) -> StoreResult<User> {
    Ok(User {
        id: get_i64(r, "id")?,
        username: get_string(r, "username")?,
        email: get_opt_string(r, "email")?,
        created_at: get_i64(r, "created_at")?,
    })
}

fn session_from_row(r: &AnyRow) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        user_id: get_i64(r, "id")?,
        username: get_string(r, "username")?.into(),
        session_epoch: get_i64(r, "session_epoch")?,
    })
}

fn token_from_row(r: &AnyRow) -> StoreResult<TokenRecord> {
    let token_id = get_i64(r, "id")?;
    Ok(TokenRecord {
        token_id,
        rate_key: format!("token:{token_id}").into(),
        user_id: get_i64(r, "user_id")?,
        username: get_string(r, "username")?.into(),
        scopes: parse_scopes(&get_string(r, "scopes")?).into(),
    })
}
