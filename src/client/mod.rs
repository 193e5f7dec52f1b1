//! The client side of the `cronstack` binary: `login`, `stacks`, `schedules`, `jobs`, `run`,
//! `runs`, `logs` against a server's v1 API, and `next` (offline). Tables for people,
//! `--output json` for scripts, one readable line for every error.

/// `print!` and `println!` for command output: quiet on a closed stdout (see
/// [`output::write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::client::output::write_stdout(format_args!($($arg)*)) };
}
macro_rules! outln {
    () => { $crate::client::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::client::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use {out, outln};

mod api;
mod apply;
mod config;
mod crontab;
mod jobs;
mod monitors;
mod next;
pub(crate) mod output;
mod parse;
mod pipelines;
mod runs;
mod schedules;
mod session;
mod stacks;
mod tokens;
mod users;
mod webhooks;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};

use api::Api;
use output::Style;

/// Ends the process with this exit code and no further message (the run's own code).
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Aligned tables and sentences for people.
    #[default]
    Table,
    /// JSON on stdout, for scripts.
    Json,
}

/// Which server, as whom, and how to print: global options, given before or after the
/// subcommand (`cronstack -o json jobs ls` = `cronstack jobs ls -o json`).
#[derive(Args, Debug, Clone, Default)]
pub struct Conn {
    /// Server URL (default: the one `cronstack login` stored).
    #[arg(long, env = "CRONSTACK_URL", global = true)]
    pub(crate) url: Option<String>,
    /// API token (default: the one `cronstack login` stored).
    #[arg(long, env = "CRONSTACK_TOKEN", global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub(crate) output: Output,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Store a server URL and API token for the other client commands (file mode 0600).
    Login(session::LoginArgs),
    /// Forget the stored server URL and token.
    Logout,
    /// Stacks: the command (with environment and working directory) that jobs run.
    #[command(subcommand)]
    Stacks(Box<stacks::StacksCmd>),
    /// Schedules: cron expressions with time zones, periods, one-time timestamps.
    #[command(subcommand)]
    Schedules(Box<schedules::SchedulesCmd>),
    /// Jobs: a stack on a schedule.
    #[command(subcommand)]
    Jobs(Box<jobs::JobsCmd>),
    /// Run a job now; with --follow, stream its log and exit with its exit code.
    Run(runs::RunArgs),
    /// The block types a stack's blocks may name (`stacks create --block TYPE`).
    Types,
    /// A job's run history.
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// A run's log; with --follow, live until the run ends.
    Logs(runs::LogsArgs),
    /// Heartbeat monitors: watch cron jobs that run elsewhere through their pings.
    #[command(subcommand)]
    Monitors(Box<monitors::MonitorsCmd>),
    /// Ping a heartbeat monitor (no token needed), or wrap a command: `cronstack ping UUID --
    /// backup.sh` pings start, runs it, pings its result with its output's tail, and exits
    /// with its exit code.
    Ping(Box<monitors::PingArgs>),
    /// The next fire times of a cron expression (offline: checks an expression).
    ///
    /// Daylight saving time, as Vixie cron: an expression whose second, minute or hour field
    /// starts with `*` keeps its real-time cadence through a repeated or skipped hour
    /// (`*/30 2 * * *` fires four times on a fall-back night, none on a spring-forward one);
    /// any other is fixed times: a skipped local time fires once right after the gap, a
    /// repeated one once (`0,30 2 * * *` fires twice that night). A step without `*` is fixed
    /// times too: `1/2` in the hour field means 1-23/2. An expression that can never fire
    /// (`0 0 31 2 *`) is refused, saying why.
    ///
    /// Quartz's day forms (`L`, `L-3`, `LW`, `15W`, `5L`, `FRI#3`) and Jenkins' `H` are
    /// understood; `H` picks its values from a job's uid, given with --hash-key.
    Next(next::NextArgs),
    /// Turn a crontab into stacks, schedules and jobs (one of each per entry).
    ///
    /// `VAR=value` lines become the environment of the entries after them, `CRON_TZ=` / `TZ=`
    /// their time zone; `%` in a command starts its standard input as cron does; MAILTO is
    /// ignored and @reboot is not supported (both reported). Every line is checked first: a
    /// bad one, or a name already taken, imports nothing.
    ImportCrontab(ImportCrontabArgs),
    /// Make the server match a file of stacks, schedules and jobs (YAML or JSON), by name.
    ///
    /// Prints the plan (`+` create, `~` change `old → new`, `-` delete), then applies it.
    /// Fields left out stay as they are; `--prune` deletes the jobs (then the unused
    /// schedules) the file does not name. Applying the same file twice changes nothing.
    Apply(ApplyArgs),
    /// Write your stacks, schedules and jobs as a file `apply` reads (YAML, or `-o json`).
    Export,
    /// Your API tokens, over the API (admin scope). `cronstack token create`, by contrast,
    /// issues a token for any user on the database directly.
    #[command(subcommand)]
    Tokens(tokens::TokensCmd),
    /// Outbound event subscriptions (webhooks, Slack, Discord, Teams) and their deliveries.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCmd),
    /// Your own account, over the API: `users passwd`. `cronstack user add`, by contrast,
    /// creates users on the database directly.
    #[command(subcommand)]
    Users(users::UsersCmd),
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The file, or `-` for standard input.
    #[arg(short = 'f', long = "file")]
    file: String,
    /// Also delete the jobs, and then the unused schedules, that the file does not name.
    #[arg(long)]
    prune: bool,
    /// Print the plan and change nothing; exit 2 when something would change (0 when not).
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args, Debug)]
pub struct ImportCrontabArgs {
    /// The crontab file, or `-` for standard input (`crontab -l | cronstack import-crontab -`).
    file: String,
    /// A system crontab (/etc/crontab, /etc/cron.d/*): a user column before the command.
    /// The default for files under /etc/cron.
    #[arg(long)]
    system: bool,
    /// Stacks, schedules and jobs are named PREFIX-LINE-PROGRAM.
    #[arg(long, default_value = "cron")]
    prefix: String,
    /// Print what would be created, and create nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Runs a client command with the global `--url`, `--token` and `-o`. Output cut short by a
/// closed stdout (`cronstack next … | head -1`) is a success: the reader has what it wanted.
pub async fn run(cmd: ClientCommand, conn: &Conn) -> anyhow::Result<()> {
    match run_command(cmd, conn).await {
        Err(e) if output::is_closed_stdout(&e) => Ok(()),
        other => other,
    }
}

async fn run_command(cmd: ClientCommand, conn: &Conn) -> anyhow::Result<()> {
    let style = Style::detect();
    match cmd {
        ClientCommand::Login(args) => session::login(args, conn).await,
        ClientCommand::Logout => session::logout(),
        ClientCommand::Next(args) => next::next(args, conn.output, style),
        ClientCommand::Ping(a) => monitors::ping(*a, conn).await,
        ClientCommand::ImportCrontab(a) => {
            let text = if a.file == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading the crontab from stdin")?
            } else {
                std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file))?
            };
            let system = a.system || a.file.starts_with("/etc/cron");
            // A dry run needs no server; given one, it also checks the names are free.
            let api = match connect(conn) {
                Ok((api, _)) => Some(api),
                Err(e) if !a.dry_run => return Err(e),
                Err(_) => None,
            };
            crontab::import(api.as_ref(), conn.output, &text, system, &a.prefix, a.dry_run).await
        }
        cmd => {
            let (api, out) = connect(conn)?;
            let api = &api;
            match cmd {
                ClientCommand::Stacks(c) => stacks::stacks(api, out, style, *c).await,
                ClientCommand::Schedules(c) => schedules::schedules(api, out, style, *c).await,
                ClientCommand::Jobs(c) => jobs::jobs(api, out, style, *c).await,
                ClientCommand::Run(a) => runs::run_job(api, out, &a.job, &a.args, a.follow).await,
                ClientCommand::Types => pipelines::types(api, out, style).await,
                ClientCommand::Runs(c) => runs::runs(api, out, style, c).await,
                ClientCommand::Logs(a) => runs::logs(api, out, a.run, a.follow).await,
                ClientCommand::Apply(a) => apply::apply(api, out, &a.file, a.prune, a.dry_run).await,
                ClientCommand::Export => apply::export(api, out == Output::Json).await,
                ClientCommand::Monitors(c) => monitors::monitors(api, out, style, *c).await,
                ClientCommand::Tokens(c) => tokens::tokens(api, out, style, c).await,
                ClientCommand::Webhooks(c) => webhooks::webhooks(api, out, style, c).await,
                ClientCommand::Users(c) => users::users(api, out, c).await,
                ClientCommand::Login(_)
                | ClientCommand::Logout
                | ClientCommand::Next(_)
                | ClientCommand::Ping(_)
                | ClientCommand::ImportCrontab(_) => unreachable!("handled above"),
            }
        }
    }
}

/// The API client from flags, environment, or the stored config.
pub(crate) fn connect(conn: &Conn) -> anyhow::Result<(Api, Output)> {
    let stored = if conn.url.is_some() && conn.token.is_some() { None } else { config::load()? };
    let url = match (&conn.url, &stored) {
        (Some(u), _) => config::normalize_url(u)?,
        (None, Some(c)) => c.url.clone(),
        (None, None) => {
            bail!("no server: run `cronstack login URL`, or set CRONSTACK_URL and CRONSTACK_TOKEN")
        }
    };
    let token = match (&conn.token, &stored) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(c)) => c.token.clone(),
        (None, None) => bail!("no token: run `cronstack login {url}`, or set CRONSTACK_TOKEN"),
    };
    Ok((Api::new(&url, &token), conn.output))
}

pub(crate) fn api_err(e: api::ApiError) -> anyhow::Error {
    anyhow!("{e}")
}

/// `s` on one line, cut to `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let flat = s.replace('\n', " ⏎ ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    } else {
        flat
    }
}
