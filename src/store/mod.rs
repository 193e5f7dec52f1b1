//! Storage: one `Store` over sqlx's `AnyPool`, for SQLite (default) and PostgreSQL.
//!
//! Portable SQL with `$N` placeholders; times are epoch-ms BIGINTs and booleans 0/1 BIGINTs so
//! that the Any driver decodes them the same on both backends. The few statements that differ
//! go through [`Backend`].

mod accounts;
mod actions;
mod cache;
mod chains;
mod cluster;
mod health;
mod idempotency;
mod jobs;
mod monitors;
mod retention;
mod rows;
mod runs;
mod schedules;
mod stacks;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use accounts::{LoginRecord, SessionRecord, TokenDigest, TokenRecord};
pub use cache::{Change, ROWS_CHANNEL, SHARED_TTL, SlotMove};
pub use cluster::{JOBS_CHANNEL, KILL_CHANNEL, NodeRecord};
pub use health::{Incident, JobHealthRow};
pub use idempotency::KeyClaim;
pub use jobs::{ChainedUpdate, JobChanges, NewJob, ScheduledJob, ScheduledJobs};
pub use monitors::{MonitorFields, NewPing, RenderEvent, WatchLock};
pub use retention::{AgeWindow, Aged, Keep, PruneLock};
pub use runs::{Claim, ClaimOutcome, Expired, LOST_MESSAGE, NewRun, RunEnd, RunFinish, RunStart};
pub use stacks::NewStack;
pub use webhooks::{AttemptRecord, ClaimedDelivery, NewDelivery, NewWebhook, Release};

/// How long PostgreSQL lets one of cronstack's sessions sit idle inside a transaction, or wait
/// for a lock, before it ends it (the shortest lease is 2 s).
pub const PG_SESSION_BOUND: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A UNIQUE constraint refused the write: which one, and the database's message.
    #[error("unique constraint violated: {1}")]
    Unique(Unique, String),
    /// The database cannot be reached (connection refused, pool timed out).
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// The disk (or SQLite's page limit) is full: the write was refused and nothing of it
    /// is stored (SQLite `SQLITE_FULL`, PostgreSQL SQLSTATE 53100 `disk_full`).
    #[error("the database is full: {0}")]
    Full(sqlx::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    /// The database URL names no backend we have.
    #[error("{0}")]
    BadUrl(String),
}

/// The UNIQUE constraints a request can run into, each answered in its own way by the service;
/// any other is a bug (`Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    StackName,
    JobName,
    MonitorName,
    Username,
    Email,
    Other,
}

impl Unique {
    /// Each constraint by its PostgreSQL name and by the columns SQLite's message lists
    /// (SQLite reports no constraint name: "UNIQUE constraint failed: jobs.owner, jobs.name").
    const NAMES: [(Unique, &'static str, &'static str); 5] = [
        (Unique::StackName, "stacks_owner_name_key", "stacks.owner, stacks.name"),
        (Unique::JobName, "jobs_owner_name_key", "jobs.owner, jobs.name"),
        (Unique::MonitorName, "monitors_owner_name", "monitors.owner, monitors.name"),
        (Unique::Username, "users_username_key", "users.username"),
        (Unique::Email, "users_email_key", "users.email"),
    ];

    fn of(db: &dyn sqlx::error::DatabaseError) -> Unique {
        let found = match db.constraint() {
            Some(name) => Self::NAMES.iter().find(|(_, pg, _)| *pg == name),
            None => {
                let columns = db.message().strip_prefix("UNIQUE constraint failed: ").unwrap_or_default();
                Self::NAMES.iter().find(|(_, _, sqlite)| *sqlite == columns)
            }
        };
        found.map_or(Unique::Other, |(unique, _, _)| *unique)
    }
}

impl StoreError {
    fn from_sqlx(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Unique(Unique::of(db.as_ref()), db.message().to_string())
            }
            sqlx::Error::Database(db) if is_disk_full(db.as_ref()) => {
                FULL_INCIDENT.refused(&e);
                StoreError::Full(e)
            }
            // A lock held past `lock_timeout` or a transaction ended by
            // `idle_in_transaction_session_timeout` (see `PG_SESSION_BOUND`): momentary.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("55P03" | "25P03")) => {
                StoreError::Unavailable(e)
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e),
            _ => StoreError::Database(e),
        }
    }
}

/// SQLite's `SQLITE_FULL` (no extended codes) or PostgreSQL's `disk_full`.
fn is_disk_full(db: &dyn sqlx::error::DatabaseError) -> bool {
    const SQLITE_FULL: i32 = 13;
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        let code = db.code().and_then(|c| c.parse::<i32>().ok());
        code.is_some_and(|c| c & 0xff == SQLITE_FULL)
    } else {
        db.code().as_deref() == Some("53100")
    }
}

/// A full database is logged once per incident: when the first write is refused, and when a
/// write succeeds after a quiet minute without refusals (small writes that need no new space
/// succeed in between; they do not end the incident). One per process: a server has one
/// database, and this only decides what is logged.
struct FullIncident {
    active: AtomicBool,
    last_refusal: AtomicI64,
}

static FULL_INCIDENT: FullIncident =
    FullIncident { active: AtomicBool::new(false), last_refusal: AtomicI64::new(0) };

impl FullIncident {
    const QUIET_MS: i64 = 60_000;

    fn refused(&self, e: &sqlx::Error) {
        self.last_refusal.store(crate::domain::now_ms(), Ordering::Relaxed);
        if !self.active.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %e, "the database is full: writes are refused (507) until space is freed");
        }
    }

    fn succeeded(&self) {
        if self.active.load(Ordering::Relaxed)
            && crate::domain::now_ms() - self.last_refusal.load(Ordering::Relaxed) >= Self::QUIET_MS
            && self.active.swap(false, Ordering::Relaxed)
        {
            tracing::warn!("the database accepts writes again");
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Maps sqlx errors into [`StoreError`] with `?`.
trait SqlxResultExt<T> {
    fn db(self) -> StoreResult<T>;

    /// [`db`](Self::db) for the result of a whole write (its last statement or its commit):
    /// a success ends a full-database incident.
    fn wrote(self) -> StoreResult<T>;
}

impl<T> SqlxResultExt<T> for Result<T, sqlx::Error> {
    fn db(self) -> StoreResult<T> {
        self.map_err(StoreError::from_sqlx)
    }

    fn wrote(self) -> StoreResult<T> {
        if self.is_ok() {
            FULL_INCIDENT.succeeded();
        }
        self.db()
    }
}

#[derive(Clone)]
pub struct Store {
    /// Reads (and, on PostgreSQL, writes too).
    read: AnyPool,
    /// On SQLite a single connection: writers queue here in order instead of spinning in
    /// SQLite's busy handler, which sleeps in steps of milliseconds and would add lateness.
    write: AnyPool,
    /// Lease renewals: on PostgreSQL a pool of their own, so that a node whose main pool is
    /// busy (its writes waiting on another node's locks) still proves its lease in time.
    lease: AnyPool,
    backend: Backend,
    url: String,
    cache: Arc<cache::Caches>,
    /// PostgreSQL: the changes to announce to the other nodes (`cache::spawn_announcer`).
    announcer: Option<tokio::sync::mpsc::UnboundedSender<Change>>,
    /// Tags this store's announcements: its own, heard back, are skipped.
    origin: u64,
}

impl Store {
    /// Opens (creating if needed) and migrates the database named by `url`.
    pub async fn open(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://…"
            )));
        };
        let store = match backend {
            Backend::Sqlite => {
                let url = sqlite_url(url);
                create_private(&url);
                // Create the file and switch to WAL on one connection before pooling.
                let read = sqlite_pool(&url, 8, None).await?;
                let write = sqlite_pool(&url, 1, test_max_pages()).await?;
                spawn_checkpointer(read.clone(), write.clone());
                Store {
                    read,
                    lease: write.clone(),
                    write,
                    backend,
                    url: url.to_string(),
                    cache: Arc::new(cache::Caches::for_backend(backend)),
                    announcer: None,
                    origin: 0,
                }
            }
            Backend::Postgres => {
                let pool = pg_pool(url, 16).await?;
                let lease = pg_pool(url, 2).await?;
                let origin = rand::random();
                Store {
                    read: pool.clone(),
                    write: pool.clone(),
                    lease,
                    backend,
                    url: url.to_string(),
                    cache: Arc::new(cache::Caches::for_backend(backend)),
                    announcer: Some(cache::spawn_announcer(pool, origin)),
                    origin,
                }
            }
        };
        store.migrate().await?;
        if backend == Backend::Sqlite {
            store.ensure_incremental_vacuum().await?;
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> StoreResult<()> {
        let result = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.write).await,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.write).await,
        };
        result.map_err(|e| StoreError::Database(e.into()))
    }

    /// The row of a write's `RETURNING`. Never read with `fetch_one`/`fetch_optional`: on
    /// SQLite those stop stepping the statement after the first row, and the error of the
    /// final step — the commit, where a full disk shows — is dropped: the caller got an id
    /// that was never stored.
    async fn write_returning(
        &self,
        q: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> StoreResult<AnyRow> {
        let rows = q.fetch_all(&self.write).await.wrote()?;
        rows.into_iter().next().ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// A write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so a
    /// read-then-write never fails half-way on a lock upgrade.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        self.begin_on(&self.write).await
    }

    /// A write transaction on `pool` (the write pool, or the lease pool), begun as
    /// [`Store::begin_write`] begins one.
    async fn begin_on(&self, pool: &AnyPool) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await.db(),
            Backend::Postgres => pool.begin().await.db(),
        }
    }

    /// After a write has committed: this node's caches forget what it touched and, on
    /// PostgreSQL, the announcer tells the other nodes (`ROWS_CHANNEL`).
    fn changed(&self, change: Change) {
        self.cache.apply(&change);
        if let Some(announcer) = &self.announcer {
            // Closed only once the store is: nothing left to announce then.
            let _ = announcer.send(change);
        }
    }

    /// A change announced on `ROWS_CHANNEL`: another node's is applied, and answered (its
    /// claims concern the scheduler too); this store's own, heard back, was applied on commit.
    pub fn apply_announced(&self, payload: &str) -> Option<Change> {
        match Change::parse(payload) {
            Some((origin, _)) if origin == self.origin => None,
            Some((_, change)) => {
                self.cache.apply(&change);
                Some(change)
            }
            None => {
                tracing::warn!(payload, "unknown row change announced");
                None
            }
        }
    }

    /// A stamp bumped by every committed change this store applies (its own, and other
    /// nodes' as announced); `None` while its caches are not live. What is kept under a stamp
    /// is current while the stamp is (`http::memo`).
    pub fn change_stamp(&self) -> Option<u64> {
        self.cache.change_stamp()
    }

    /// How long a cached read may be served without hearing of a change: PostgreSQL's other
    /// nodes' writes are heard, not seen (`None`: SQLite, this process is the only writer).
    pub fn cache_ttl(&self) -> Option<std::time::Duration> {
        (self.backend == Backend::Postgres).then_some(SHARED_TTL)
    }

    /// Turns the read caches on (empty) or off. On PostgreSQL the change listener turns them
    /// on once it hears the other nodes' changes, and off when it stops hearing them.
    pub fn set_caches_live(&self, live: bool) {
        self.cache.set_live(live);
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await.db()?;
        Ok(())
    }

    pub async fn close(&self) {
        self.lease.close().await;
        self.write.close().await;
        self.read.close().await;
    }

    /// Connection pool figures for the metrics: `(pool, open, idle, max)` per pool.
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, usize, u32)> {
        let figures = |name, p: &AnyPool| (name, p.size(), p.num_idle(), p.options().get_max_connections());
        match self.backend {
            Backend::Sqlite => vec![figures("read", &self.read), figures("write", &self.write)],
            Backend::Postgres => vec![figures("main", &self.read)],
        }
    }
}

async fn pg_pool(url: &str, max: u32) -> StoreResult<AnyPool> {
    // A short acquire timeout: while the database is away, requests answer 503 quickly
    // instead of hanging.
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(2))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(sqlx::AssertSqlSafe(pg_session_bounds())).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .db()
}

/// A node frozen inside a transaction (or a statement stuck behind its locks) must not hold the
/// other nodes for long: well under the shortest lease, the server ends it. Set on every
/// PostgreSQL connection.
fn pg_session_bounds() -> String {
    format!(
        "SET idle_in_transaction_session_timeout = {ms}; SET lock_timeout = {ms}",
        ms = PG_SESSION_BOUND.as_millis()
    )
}

fn sqlite_url(url: &str) -> String {
    if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") }
}

/// Creates a missing SQLite database file with mode 0600 before SQLite does (with 0644, less
/// the umask): it holds password and token hashes, webhook secrets and the cookie key. SQLite
/// gives its `-wal` and `-shm` files the database file's mode.
fn create_private(url: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let creates = url.split_once('?').is_some_and(|(_, query)| query.split('&').any(|kv| kv == "mode=rwc"));
    let Some(path) = sqlite_file(url).filter(|_| creates) else {
        return; // read-only, or in memory
    };
    // Already there (kept as it is), or not creatable: SQLite reports that when it opens it.
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
}

/// The file of a `sqlite:` URL; `None` for a database in memory (or another backend).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    (!path.is_empty() && !path.starts_with(':')).then(|| path.into())
}

/// Tests only (undocumented): `CRONSTACK_SQLITE_MAX_PAGES` caps the database's size in pages
/// (`PRAGMA max_page_count` on the write connection), to fill it without filling a disk.
fn test_max_pages() -> Option<u64> {
    std::env::var("CRONSTACK_SQLITE_MAX_PAGES").ok()?.parse().ok()
}

/// How long an SQLite connection waits for a lock before it answers busy.
const BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 10000";

async fn sqlite_pool(url: &str, max: u32, max_pages: Option<u64>) -> StoreResult<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                use sqlx::Executor;
                // WAL: readers never block the writer. NORMAL: a commit survives a crash of
                // the process (not of the OS), at a fraction of FULL's fsync cost.
                for pragma in [
                    // Before anything else touches a new file: it can only be set before the
                    // first table (an older database is converted once, see `retention`).
                    "PRAGMA auto_vacuum = INCREMENTAL",
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                    BUSY_TIMEOUT,
                    // The WAL is cut back to this after it starts over (see `spawn_checkpointer`).
                    "PRAGMA journal_size_limit = 16777216",
                    "PRAGMA foreign_keys = ON",
                    // Checkpoints run in `spawn_checkpointer`, off the write connection.
                    "PRAGMA wal_autocheckpoint = 0",
                ] {
                    conn.execute(pragma).await?;
                }
                if let Some(pages) = max_pages {
                    conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {pages}"))).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .db()
}

/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold, on the one
/// write connection, fsyncs included: every write queued behind it waits (bench/run saw a
/// 40-byte status update take 1 s under disk load, and the next slot's claim start 1 s late).
/// Checkpoints run here instead, every second on a read connection: in WAL mode a passive
/// checkpoint proceeds alongside the writer. When the process ends, SQLite's own checkpoint
/// on closing the last connection takes over.
///
/// A passive checkpoint never makes the WAL start over while writes keep coming (it starts
/// over only when a write finds every frame copied back, and under a steady write load one
/// always came in meanwhile): the file would grow without end (131 MB in 10 minutes of 500
/// runs a second, bench/retention.py). Once it holds more than [`WAL_RESTART_FRAMES`], a
/// restarting checkpoint runs on the write connection (queued like any write, so never
/// against our own writer): it copies the few frames the passive ones left, and the next
/// write starts the WAL over, which `journal_size_limit` then cuts back to that size. It
/// waits for readers for at most [`WAL_RESTART_WAIT_MS`] (else it is tried again a second
/// later).
fn spawn_checkpointer(pool: AnyPool, write: AnyPool) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if pool.is_closed() {
                return;
            }
            match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&pool).await {
                // (busy, frames in the WAL, frames copied back)
                Ok(row) if row.try_get::<i64, _>(1).unwrap_or(0) > WAL_RESTART_FRAMES => {
                    if let Err(e) = restart_wal(&write).await {
                        tracing::debug!(error = %e, "WAL restart");
                    }
                }
                Ok(_) => {}
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => tracing::debug!(error = %e, "WAL checkpoint"),
            }
        }
    });
}

/// Frames (pages) the WAL may hold before a restarting checkpoint: 16 MiB of 4 KiB pages.
const WAL_RESTART_FRAMES: i64 = 4096;
/// How long a restarting checkpoint waits for readers of older frames.
const WAL_RESTART_WAIT_MS: u64 = 50;

/// A `RESTART` checkpoint on the write connection, with a short busy timeout.
async fn restart_wal(write: &AnyPool) -> sqlx::Result<()> {
    let mut conn = write.acquire().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {WAL_RESTART_WAIT_MS}")))
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("PRAGMA wal_checkpoint(RESTART)").fetch_all(&mut *conn).await;
    let restored = sqlx::query(BUSY_TIMEOUT).execute(&mut *conn).await;
    if restored.is_err() {
        // Never left in the pool with the short timeout.
        conn.close_on_drop();
    }
    restored?;
    done.map(|_| ())
}

// Row decoding helpers: the Any driver knows bigint and text; these name the intent.

fn get_i64(row: &AnyRow, col: &str) -> StoreResult<i64> {
    row.try_get::<i64, _>(col).db()
}

fn get_opt_i64(row: &AnyRow, col: &str) -> StoreResult<Option<i64>> {
    row.try_get::<Option<i64>, _>(col).db()
}

fn get_bool(row: &AnyRow, col: &str) -> StoreResult<bool> {
    Ok(get_i64(row, col)? != 0)
}

fn get_string(row: &AnyRow, col: &str) -> StoreResult<String> {
    row.try_get::<String, _>(col).db()
}

fn get_opt_string(row: &AnyRow, col: &str) -> StoreResult<Option<String>> {
    row.try_get::<Option<String>, _>(col).db()
}

fn get_enum<T>(row: &AnyRow, col: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let s = get_string(row, col)?;
    parse(&s).ok_or_else(|| StoreError::Corrupt(format!("{col} = {s:?}")))
}

fn get_json<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> StoreResult<T> {
    let s = get_string(row, col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// A nullable JSON column: `None` for NULL.
fn get_opt_json<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> StoreResult<Option<T>> {
    get_opt_string(row, col)?
        .map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}"))))
        .transpose()
}

/// Decodes a row into `T`.
type FromRow<T> = fn(&AnyRow) -> StoreResult<T>;

/// Rows addressed by a uid as well as an id.
trait HasUid {
    fn id(&self) -> i64;
    fn uid(&self) -> &str;
}

impl HasUid for crate::domain::Job {
    fn id(&self) -> i64 {
        self.id
    }
    fn uid(&self) -> &str {
        &self.uid
    }
}

impl HasUid for crate::domain::Stack {
    fn id(&self) -> i64 {
        self.id
    }
    fn uid(&self) -> &str {
        &self.uid
    }
}

/// A page of rows and the total count, for the dialects' list envelopes.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page { items: Vec::new(), total: 0 }
    }
}

/// A listing: `SELECT <columns> FROM <from_where> ORDER BY <order>`, where `from_where` filters
/// on one bigint parameter `$1`. All three are constants of ours, never user input.
struct Listing {
    columns: &'static str,
    from_where: &'static str,
    order: &'static str,
}

impl Store {
    /// The row of `SELECT <columns> FROM <from_where>` for the value of its `$1`, if any
    /// (`from_where` a constant of ours, as for listings).
    async fn one<'k, T, K>(
        &self,
        columns: &str,
        from_where: &str,
        key: K,
        from_row: FromRow<T>,
    ) -> StoreResult<Option<T>>
    where
        K: 'k + sqlx::Encode<'k, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
    {
        let sql = format!("SELECT {columns} FROM {from_where}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key).fetch_optional(&self.read).await.db()?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// The owner's row of `table` named `name` (names are unique per owner).
    async fn one_by_name<T>(
        &self,
        columns: &str,
        table: &str,
        owner: crate::domain::UserId,
        name: &str,
        from_row: FromRow<T>,
    ) -> StoreResult<Option<T>> {
        let sql = format!("SELECT {columns} FROM {table} WHERE owner = $1 AND name = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(name)
            .fetch_optional(&self.read)
            .await
            .db()?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// A row by its uid, through the cached uid → id mapping and `by_id` (cached) when the
    /// mapping is known; `query` is the uncached read by uid.
    async fn one_by_uid<T, Fut>(
        &self,
        uids: &cache::ReadCache<String, i64>,
        uid: &str,
        by_id: impl FnOnce(i64) -> Fut,
        (columns, from_where, from_row): (&str, &str, FromRow<T>),
    ) -> StoreResult<Option<T>>
    where
        T: HasUid,
        Fut: Future<Output = StoreResult<Option<T>>>,
    {
        if let Some(id) = uids.get(uid)
            && let Some(row) = by_id(id).await?
            && row.uid() == uid
        {
            return Ok(Some(row));
        }
        let row = self.one(columns, from_where, uid, from_row).await?;
        if let Some(r) = &row {
            uids.remember(uid.to_string(), r.id());
        }
        Ok(row)
    }

    /// One page of a listing for the value of its `$1`, and the count of all its rows.
    async fn page<T>(
        &self,
        listing: Listing,
        key: i64,
        window: (i64, i64),
        from_row: FromRow<T>,
    ) -> StoreResult<Page<T>> {
        let count = format!("SELECT COUNT(*) AS n FROM {}", listing.from_where);
        self.page_with_total(listing, &count, key, window, from_row).await
    }

    /// One page of a listing, its count read by `count` (a constant of ours answering `n` for
    /// the same `$1`; no row counts as 0), where a kept count is cheaper than `COUNT(*)`.
    ///
    /// One statement reads both, so the count and the rows come from one snapshot: with two,
    /// a delete between them (history pruning) answered a count of 3 beside 8 rows.
    async fn page_with_total<T>(
        &self,
        listing: Listing,
        count: &str,
        key: i64,
        (limit, offset): (i64, i64),
        from_row: FromRow<T>,
    ) -> StoreResult<Page<T>> {
        let Listing { columns, from_where, order } = listing;
        // The count's one row, joined to the page's rows (none past the end: then the page
        // columns are NULL, and `listed_` tells that row from a real one).
        let sql = format!(
            "SELECT total_.n AS total_, page_.* FROM (SELECT ({count}) AS n) total_ \
             LEFT JOIN (SELECT CAST(1 AS BIGINT) AS listed_, {columns} FROM {from_where} ORDER BY {order} LIMIT $2 OFFSET $3) page_ \
             ON 1 = 1 ORDER BY {order}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await
            .db()?;
        let total = match rows.first() {
            Some(row) => get_opt_i64(row, "total_")?.unwrap_or(0),
            None => 0,
        };
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            if get_opt_i64(row, "listed_")?.is_some() {
                items.push(from_row(row)?);
            }
        }
        Ok(Page { items, total })
    }
}

/// Limit/offset for a 1-based page number; `None` when the page lies beyond any possible row.
pub fn page_window(page: i64, per_page: i64) -> Option<(i64, i64)> {
    let offset = page.checked_sub(1)?.checked_mul(per_page)?;
    Some((per_page, offset))
}

/// What the store's own tests share: a scratch SQLite store and its query plans.
#[cfg(test)]
pub(crate) mod testing {
    use sqlx::Row;

    /// A fresh, migrated SQLite store in a directory removed when the guard drops.
    pub async fn scratch_sqlite() -> (tempfile::TempDir, super::Store) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            super::Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        (dir, store)
    }

    /// The `detail` lines of SQLite's plan for `explain` (an `EXPLAIN QUERY PLAN …` query, bound).
    pub async fn plan(
        store: &super::Store,
        explain: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Vec<String> {
        explain.fetch_all(&store.read).await.unwrap().iter().map(|r| r.try_get("detail").unwrap()).collect()
    }
}
