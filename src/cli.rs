//! The `cronstack` command: the server and the administrative commands.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::client::outln;
use crate::domain::Scope;
use crate::engine::{Engine, EngineHandle, EngineSettings, Retention};
use crate::service::{MAX_KEEP, Service, ServiceSettings};
use crate::store::{Keep, Store};

#[derive(Parser, Debug)]
#[command(name = "cronstack", version, about = "A self-hosted job scheduler: cron as a service")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: API, scheduler and executor.
    Serve(Box<ServeArgs>),
    /// Manage users (works on the database directly, server running or not).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens (works on the database directly).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Client commands: talk to a server through its API.
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

#[derive(Args, Debug, Clone)]
struct DbArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    #[arg(long, env = "CRONSTACK_DATABASE_URL", default_value = "sqlite://cronstack.db")]
    database_url: String,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address to listen on.
    #[arg(long, env = "CRONSTACK_LISTEN", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// API requests per token per hour.
    #[arg(long, env = "CRONSTACK_RATE_LIMIT", default_value_t = 3600)]
    rate_limit: u32,
    /// Runs beyond this many at once wait, in order.
    #[arg(long, env = "CRONSTACK_MAX_CONCURRENT_RUNS", default_value_t = 256)]
    max_concurrent_runs: usize,
    /// Per-run log cap in bytes (the head and the tail are kept).
    #[arg(long, env = "CRONSTACK_LOG_CAP", default_value_t = 1024 * 1024)]
    log_cap: usize,
    /// Seconds between SIGTERM and SIGKILL when a run is stopped.
    #[arg(long, env = "CRONSTACK_KILL_GRACE", default_value_t = 5)]
    kill_grace_s: u64,
    /// Seconds running runs may take to finish on shutdown before they are killed.
    #[arg(long, env = "CRONSTACK_SHUTDOWN_GRACE", default_value_t = 10)]
    shutdown_grace_s: u64,
    /// `run_once` missed-run policy: the newest missed slot runs if at most this old (s).
    #[arg(long, env = "CRONSTACK_RUN_ONCE_DEADLINE", default_value_t = 3600)]
    run_once_deadline_s: u64,
    /// `catch_up` missed-run policy: at most this many missed slots run.
    #[arg(long, env = "CRONSTACK_CATCH_UP_MAX", default_value_t = 100)]
    catch_up_max: usize,
    /// Seconds a node holds its runs without renewing before they count as lost.
    #[arg(long, env = "CRONSTACK_LEASE", default_value_t = 60)]
    lease_s: u64,
    /// Milliseconds ahead of its slot a run is claimed and its process spawned and held;
    /// raise it when thousands of runs share one instant.
    #[arg(long, env = "CRONSTACK_LOOKAHEAD_MS", default_value_t = 200)]
    lookahead_ms: u64,
    /// Spawn scheduled runs' processes only at their slot instead of ahead of it.
    #[arg(long, env = "CRONSTACK_NO_PRESPAWN")]
    no_prespawn: bool,
    /// Log format.
    #[arg(long, env = "CRONSTACK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Calls of one stack's hook per hour (inbound webhooks).
    #[arg(long, env = "CRONSTACK_HOOK_RATE_LIMIT", default_value_t = 3600)]
    hook_rate_limit: u32,
    /// Pings of one heartbeat monitor per hour (`/ping/<uuid>`).
    #[arg(long, env = "CRONSTACK_PING_RATE_LIMIT", default_value_t = 3600)]
    ping_rate_limit: u32,
    /// A hook's or exec's command is stopped after this many seconds.
    #[arg(long, env = "CRONSTACK_HOOK_TIMEOUT", default_value_t = 60)]
    hook_timeout_s: u64,
    /// Outbound webhook request timeout in seconds.
    #[arg(long, env = "CRONSTACK_WEBHOOK_TIMEOUT", default_value_t = 10)]
    webhook_timeout_s: u64,
    /// Outbound webhook deliveries in flight at once on this node.
    #[arg(long, env = "CRONSTACK_WEBHOOK_CONCURRENCY", default_value_t = 16)]
    webhook_concurrency: usize,
    /// Attempts before an outbound webhook delivery is marked failed.
    #[arg(long, env = "CRONSTACK_WEBHOOK_MAX_ATTEMPTS", default_value_t = 12)]
    webhook_max_attempts: i64,
    /// First retry delay of a failed delivery in ms (doubling each time, capped at an hour).
    #[arg(long, env = "CRONSTACK_WEBHOOK_RETRY_BASE_MS", default_value_t = 5000)]
    webhook_retry_base_ms: u64,
    /// Seconds a client may take to send a request's head, and then its body (slow clients
    /// are cut off: 408 for a body, a closed connection for a head).
    #[arg(long, env = "CRONSTACK_CLIENT_TIMEOUT", default_value_t = 30)]
    client_timeout_s: u64,
    /// Run jobs as this user (name or uid) instead of the service's own; needs root. The
    /// children get its uid and primary gid, no supplementary groups, its HOME/USER/LOGNAME.
    #[arg(long, env = "CRONSTACK_RUN_AS", value_name = "USER")]
    run_as: Option<String>,
    /// Pass this variable of the server's environment on to jobs (repeatable, or
    /// `CRONSTACK_PASS_ENV=A,B`). Jobs otherwise get a clean environment: a fixed PATH (the
    /// server's with `--pass-env PATH`), HOME, USER, LOGNAME, SHELL=/bin/sh, LANG, LC_ALL and
    /// TZ if set, the stack's env, the CRONSTACK_* run variables.
    #[arg(long = "pass-env", env = "CRONSTACK_PASS_ENV", value_name = "NAME", value_delimiter = ',')]
    pass_env: Vec<String>,
    /// Finished runs (and their logs), v3 actions, webhook deliveries and monitors' pings are
    /// deleted this many days after they ended; 0: no age limit.
    #[arg(long, env = "CRONSTACK_KEEP_RUNS_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=36_500))]
    keep_runs_days: u64,
    /// Succeeded runs kept per job whose `keep_succeeded` is null (the newest).
    #[arg(long, env = "CRONSTACK_KEEP_SUCCEEDED", default_value_t = 100, value_parser = clap::value_parser!(i64).range(0..=MAX_KEEP))]
    keep_succeeded: i64,
    /// Other finished runs (failed, timed out, killed, lost, skipped) kept per job whose
    /// `keep_failed` is null (the newest).
    #[arg(long, env = "CRONSTACK_KEEP_FAILED", default_value_t = 100, value_parser = clap::value_parser!(i64).range(0..=MAX_KEEP))]
    keep_failed: i64,
    /// The dashboard's address as people reach it (`https://cron.example.com`): chat and
    /// email notifications link to the run (or monitor) there.
    #[arg(long, env = "CRONSTACK_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Milliseconds between two looks of the job health watcher (tests make it short).
    #[arg(long, hide = true, default_value_t = 5_000)]
    watch_interval_ms: u64,
    /// Export per-job series on /metrics (health, last success, last failure): 7 per job; and
    /// per-monitor ones (state, last ping): 6 per monitor.
    #[arg(long, env = "CRONSTACK_METRICS_PER_JOB", default_value_t = true, action = clap::ArgAction::Set)]
    metrics_per_job: bool,
    /// Milliseconds between two pruning passes at most (tests make it short).
    #[arg(long, hide = true, default_value_t = 30_000)]
    prune_interval_ms: u64,
    /// A pruning pass starts as soon as this many runs were created since the previous one;
    /// 0: only every `--prune-interval-ms` (with a long interval: no pruning, for tests and
    /// benchmarks).
    #[arg(long, hide = true, default_value_t = crate::engine::PRUNE_BATCH as u64 / 2)]
    prune_after_runs: u64,
    /// The key that seals stacks' secret env values: a file of 64 hex digits (`openssl rand
    /// -hex 32`). SQLite: by default the file beside the database (`cronstack.db` →
    /// `cronstack.key`), created with mode 0600 on first start. PostgreSQL: required, the same
    /// file on every node.
    #[arg(long, env = "CRONSTACK_SECRET_KEY_FILE", value_name = "PATH")]
    secret_key_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    smtp: crate::webhooks::smtp::SmtpArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user; prints their first API token (every scope) as the last line.
    Add {
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// For `POST /api/v1/authenticate` and the dashboard; without one, tokens only.
        #[arg(long, env = "CRONSTACK_PASSWORD")]
        password: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Issue a token for USER; prints it as the last line.
    Create {
        user: String,
        /// public (read, run, pause), jobs (create/change/delete), admin (tokens). Repeatable.
        #[arg(long = "scope", value_parser = parse_scope, required = true)]
        scopes: Vec<Scope>,
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s).ok_or_else(|| format!("unknown scope {s:?}: use one of {}", Scope::choices()))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // posix_spawn blocks its worker until the child has exec'd: more workers than cores keep
    // spawns flowing while the machine is busy (measured in crates/exec/examples/spawn_rate).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(cores * 4).enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // A followed run's own exit code: already reported, passed on as it is.
        Err(e) if e.downcast_ref::<crate::client::Exit>().is_some() => {
            ExitCode::from(e.downcast_ref::<crate::client::Exit>().map_or(1, |x| x.0))
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Client(cmd) => crate::client::run(cmd).await,
        Command::User(UserCommand::Add { username, email, password, db }) => {
            let service = offline_service(&db).await?;
            let (user, token) = service
                .create_user(&username, email.as_deref(), password.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            outln!("created user {} (id {}); their API token (shown once):", user.username, user.id);
            outln!("{token}");
            Ok(())
        }
        Command::Token(TokenCommand::Create { user, scopes, name, db }) => {
            let service = offline_service(&db).await?;
            let user = service.user_by_name(&user).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let (token, secret) =
                service.create_token(user.id, &name, &scopes).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
            outln!("token {} for {} with scopes {} (shown once):", token.id, user.username, scopes.join(","));
            outln!("{secret}");
            Ok(())
        }
    }
}

/// A service for administrative commands: the database, no scheduler.
async fn offline_service(db: &DbArgs) -> anyhow::Result<Service> {
    let store = Store::open(&db.database_url).await?;
    Ok(Service::new(store, EngineHandle::inert(), ServiceSettings::default()))
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            300.0,
        ])?
        .install_recorder()?;
    crate::http::describe_metrics();
    let public_url = args.public_url.as_deref().map(|u| u.trim_end_matches('/').to_string());
    // Checked before anything starts: bad SMTP settings are a startup error, not failed mail.
    let mailer = crate::webhooks::smtp::Mailer::from_args(
        &args.smtp,
        Duration::from_secs(args.webhook_timeout_s.max(1) * 3),
    )?;
    if let Some(m) = &mailer {
        tracing::info!(server = m.server(), "email channels send through SMTP");
    }
    let store = Store::open(&args.db.database_url).await?;
    crate::http::spawn_metrics_upkeep(store.clone(), metrics.clone());
    let mut settings = EngineSettings {
        max_concurrent_runs: args.max_concurrent_runs,
        log_cap: args.log_cap,
        kill_grace: Duration::from_secs(args.kill_grace_s),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_s),
        run_once_deadline: Duration::from_secs(args.run_once_deadline_s),
        catch_up_max: args.catch_up_max.max(1),
        lease: Duration::from_secs(args.lease_s.max(2)),
        lookahead: Duration::from_millis(args.lookahead_ms.clamp(10, 10_000)),
        prespawn: !args.no_prespawn,
        run_as: match &args.run_as {
            Some(user) => Some(
                cronstack_exec::RunAs::lookup(user).map_err(|e| anyhow::anyhow!("--run-as {user}: {e}"))?,
            ),
            None => None,
        },
        job_env: job_env(&args.pass_env)?,
        retention: Retention {
            max_age: (args.keep_runs_days > 0).then(|| Duration::from_secs(args.keep_runs_days * 24 * 3600)),
            keep: Keep { succeeded: args.keep_succeeded, failed: args.keep_failed },
            interval: Duration::from_millis(args.prune_interval_ms.max(10)),
            after_runs: args.prune_after_runs,
        },
        watch_interval: Duration::from_millis(args.watch_interval_ms.max(10)),
        public_url: public_url.clone(),
        ..EngineSettings::default()
    };
    let secret_key = secret_key(&args, &store).await?;
    settings.secret_key = Some(secret_key.clone());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?.to_string();
    let (events, events_rx) = crate::events::channel();
    let engine = Engine::start(store.clone(), settings, address, events).await?;
    let webhook_settings = crate::webhooks::WebhookSettings {
        timeout: Duration::from_secs(args.webhook_timeout_s.max(1)),
        concurrency: args.webhook_concurrency.max(1),
        max_attempts: args.webhook_max_attempts.max(1),
        retry_base: Duration::from_millis(args.webhook_retry_base_ms.max(1)),
        public_url: public_url.clone(),
        mailer: mailer.clone(),
        ..crate::webhooks::WebhookSettings::default()
    };
    let webhooks = crate::webhooks::Webhooks::start(
        store.clone(),
        webhook_settings,
        engine.handle().node_id(),
        events_rx,
    )
    .await?;
    let service = Service::new(
        store.clone(),
        engine.handle(),
        ServiceSettings {
            rate_limit_per_hour: args.rate_limit,
            hook_rate_limit_per_hour: args.hook_rate_limit,
            ping_rate_limit_per_hour: args.ping_rate_limit,
            hook_timeout_s: args.hook_timeout_s.max(1),
            backfill_max: args.catch_up_max.max(1),
            secret_key: Some(secret_key),
            metrics_per_job: args.metrics_per_job,
            public_url,
            email: mailer.is_some(),
        },
    );
    let state = crate::http::AppState::new(service, Some(metrics)).await?;
    tracing::info!("cronstack listening on http://{}", listener.local_addr()?);
    let app = crate::http::app(state);
    let client_timeout = Duration::from_secs(args.client_timeout_s.max(1));
    let drain = Duration::from_secs(args.shutdown_grace_s);
    crate::http::serve(listener, app, client_timeout, drain, shutdown_signal()).await?;
    tracing::info!("shutting down: no new runs; waiting for running ones");
    engine.shutdown().await;
    // After the engine: the events of the runs it let finish still become deliveries.
    webhooks.shutdown().await;
    store.close().await;
    Ok(())
}

/// The key for secret env values (see `crate::secrets::server_key`), checked against what the
/// database holds.
async fn secret_key(args: &ServeArgs, store: &Store) -> anyhow::Result<crate::secrets::SecretKey> {
    let sample = store.any_sealed_secret().await?;
    let url = &args.db.database_url;
    let sqlite_file = crate::store::sqlite_file(url);
    let postgres = store.backend() == crate::store::Backend::Postgres;
    let (key, path) = crate::secrets::server_key(
        args.secret_key_file.as_deref(),
        sqlite_file.as_deref(),
        postgres,
        sample.as_ref(),
    )?;
    match path {
        Some(path) => tracing::info!(path = %path.display(), "secret key"),
        None => tracing::info!("secret key: in memory, as the database"),
    }
    Ok(key)
}

/// What jobs start with; `--pass-env` names (empty ones, as from `CRONSTACK_PASS_ENV=` or
/// `A,,B`, are nothing).
fn job_env(pass: &[String]) -> anyhow::Result<cronstack_exec::JobEnv> {
    let pass: Vec<String> = pass.iter().filter(|name| !name.is_empty()).cloned().collect();
    cronstack_exec::JobEnv::new(&pass).map_err(|e| anyhow::anyhow!("--pass-env: {e}"))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
