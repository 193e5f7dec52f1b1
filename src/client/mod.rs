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
mod monitors;
pub(crate) mod output;
mod pipelines;

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use crate::secrets::Secret;
use api::Api;
use output::{Spinner, Style, Table, cell, duration_ms, local_time, print_fields, print_json};

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

/// Which server, as whom, and how to print.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// Server URL (default: the one `cronstack login` stored).
    #[arg(long, env = "CRONSTACK_URL", global = true)]
    url: Option<String>,
    /// API token (default: the one `cronstack login` stored).
    #[arg(long, env = "CRONSTACK_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Store a server URL and API token for the other client commands (file mode 0600).
    Login(LoginArgs),
    /// Forget the stored server URL and token.
    Logout,
    /// Stacks: the command (with environment and working directory) that jobs run.
    Stacks(Box<StacksArgs>),
    /// Schedules: cron expressions with time zones, periods, one-time timestamps.
    Schedules(Box<SchedulesArgs>),
    /// Jobs: a stack on a schedule.
    Jobs(Box<JobsArgs>),
    /// Run a job now; with --follow, stream its log and exit with its exit code.
    Run(RunArgs),
    /// The block types a stack's blocks may name (`stacks create --block TYPE`).
    Types(TypesArgs),
    /// A job's run history.
    Runs(RunsArgs),
    /// A run's log; with --follow, live until the run ends.
    Logs(LogsArgs),
    /// Heartbeat monitors: watch cron jobs that run elsewhere through their pings.
    Monitors(Box<monitors::MonitorsArgs>),
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
    Next(NextArgs),
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
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    conn: Conn,
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
pub struct ExportArgs {
    #[command(flatten)]
    conn: Conn,
}

#[derive(Args, Debug)]
pub struct ImportCrontabArgs {
    #[command(flatten)]
    conn: Conn,
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

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The server, e.g. http://127.0.0.1:7878.
    url: String,
    /// The API token (`cronstack user add` or `token create` printed it); without it, read
    /// from stdin (prompted for on a terminal).
    #[arg(long, env = "CRONSTACK_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Args, Debug)]
pub struct TypesArgs {
    #[command(flatten)]
    conn: Conn,
}

#[derive(Args, Debug)]
pub struct StacksArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: StacksCmd,
}

#[derive(Subcommand, Debug)]
enum StacksCmd {
    /// List stacks.
    Ls,
    /// One stack and its jobs (STACK = id or name).
    Show { stack: String },
    /// Create a stack: one command, or a pipeline of blocks.
    Create {
        name: String,
        /// The shell command its jobs run (`sh -c`; see `run --help` for its arguments).
        #[arg(long, required_unless_present = "block", conflicts_with = "block")]
        command: Option<String>,
        /// A pipeline's block type (repeatable, in order; `cronstack types` lists them), each
        /// followed by its --conversion.
        #[arg(long, value_name = "TYPE")]
        block: Vec<String>,
        /// The block's conversion: its input as JSON, where "\u0001/json/pointer\u0002"
        /// stands for a value of the previous step's output (`/input/…`), the block's state
        /// (`/state/…`) or the run (`/run/…`).
        #[arg(long, value_name = "JSON", requires = "block")]
        conversion: Vec<String>,
        /// List it read-only to every user of the server (and without credentials).
        #[arg(long)]
        public: bool,
        /// An environment variable, KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// A secret environment variable (repeatable): sealed at rest, never shown again,
        /// masked as *** in run logs. KEY alone takes the value from this command's own
        /// environment variable KEY, keeping it off the command line.
        #[arg(long = "secret-env", value_name = "KEY=VALUE", value_parser = parse_secret_env)]
        secret_env: Vec<(String, Secret)>,
        /// Working directory of its jobs.
        #[arg(long)]
        workdir: Option<String>,
    },
    /// Change a stack (STACK = id or name); what is not given stays.
    Edit {
        stack: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        command: Option<String>,
        /// Set an environment variable, KEY=VALUE (repeatable; the others stay).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// Remove an environment variable (repeatable).
        #[arg(long = "unset-env", value_name = "KEY")]
        unset_env: Vec<String>,
        /// Set a secret environment variable, KEY=VALUE or KEY (from this command's
        /// environment), repeatable; the other secret variables stay.
        #[arg(long = "secret-env", value_name = "KEY=VALUE", value_parser = parse_secret_env)]
        secret_env: Vec<(String, Secret)>,
        /// Remove a secret environment variable (repeatable).
        #[arg(long = "unset-secret-env", value_name = "KEY")]
        unset_secret_env: Vec<String>,
        #[arg(long, conflicts_with = "no_workdir")]
        workdir: Option<String>,
        /// Run in the server's working directory.
        #[arg(long)]
        no_workdir: bool,
    },
}

#[derive(Args, Debug)]
pub struct SchedulesArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: SchedulesCmd,
}

/// One of a cron expression, a period or a timestamp.
#[derive(Args, Debug, Clone, Default)]
struct Rule {
    /// A cron expression (5 fields, 6 with seconds, @daily, @every 90s…).
    #[arg(long, conflicts_with_all = ["every", "at"])]
    cron: Option<String>,
    /// Time zone of --cron (IANA name).
    #[arg(long, requires = "cron")]
    tz: Option<String>,
    /// Every this many seconds.
    #[arg(long, value_name = "SECONDS", conflicts_with = "at")]
    every: Option<i64>,
    /// Once, at this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

impl Rule {
    fn is_given(&self) -> bool {
        self.cron.is_some() || self.every.is_some() || self.at.is_some()
    }

    /// `(config, once)` for the API.
    fn config(&self) -> anyhow::Result<(Value, bool)> {
        if let Some(expr) = &self.cron {
            let mut c = json!({ "cron": expr });
            if let Some(tz) = &self.tz {
                c["timezone"] = json!(tz);
            }
            return Ok((c, false));
        }
        if let Some(secs) = self.every {
            return Ok((json!({ "period": secs }), false));
        }
        if let Some(at) = &self.at {
            let ts = match at.trim().parse::<i64>() {
                Ok(ts) => ts,
                Err(_) => chrono::DateTime::parse_from_rfc3339(at.trim())
                    .map_err(|_| {
                        anyhow!("--at: give RFC 3339 (2026-12-01T09:00:00Z) or Unix seconds, got {at:?}")
                    })?
                    .timestamp(),
            };
            return Ok((json!({ "timestamp": ts }), true));
        }
        bail!("give one of --cron EXPR, --every SECONDS or --at TIME")
    }
}

#[derive(Subcommand, Debug)]
enum SchedulesCmd {
    /// List schedules, with their rule in words.
    Ls,
    /// Create a schedule.
    Create {
        /// A name to refer to it by.
        name: Option<String>,
        #[command(flatten)]
        rule: Rule,
    },
}

#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: JobsCmd,
}

/// A job's settings, for create and edit.
#[derive(Args, Debug, Default)]
struct JobSettings {
    /// Override the stack's command for this job.
    #[arg(long)]
    command: Option<String>,
    /// Seconds before the run is stopped (SIGTERM, then SIGKILL).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<i64>,
    /// A slot due while the previous run goes: forbid (skip it), allow, replace.
    #[arg(long, value_parser = ["forbid", "allow", "replace", "queue"])]
    overlap: Option<String>,
    /// Slots missed while no node ran: skip, run_once, catch_up.
    #[arg(long, value_parser = ["skip", "run_once", "catch_up"])]
    missed: Option<String>,
    /// Retries of a failed run.
    #[arg(long)]
    retries: Option<i64>,
    /// Seconds before the first retry (doubling after).
    #[arg(long, value_name = "SECONDS")]
    retry_backoff: Option<i64>,
    /// Each slot fires up to this many seconds late (the same delay on every node).
    #[arg(long, value_name = "SECONDS")]
    jitter: Option<i64>,
    /// No slot fires before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    not_before: Option<String>,
    /// No slot fires after this time (RFC 3339); then the job disables itself.
    #[arg(long, value_name = "TIME")]
    not_after: Option<String>,
    /// After this many scheduled runs the job disables itself.
    #[arg(long, value_name = "N")]
    max_runs: Option<i64>,
    /// Run after this job's runs (id or name; `:failure` or `:always` for other ends than
    /// success). Repeatable: with several, the job runs once all of them ran (see --after-any).
    /// On edit, the list given replaces the job's.
    #[arg(long, value_name = "JOB[:success|failure|always]")]
    after: Vec<String>,
    /// Run after each qualifying run of any --after job, instead of once all of them ran.
    #[arg(long)]
    after_any: bool,
    /// Seconds a slot may be late (no run started) before the job is late (default 60).
    #[arg(long, value_name = "SECONDS")]
    grace: Option<i64>,
    /// Seconds a run may go before the job is stuck.
    #[arg(long, value_name = "SECONDS")]
    max_duration: Option<i64>,
}

/// `JOB[:success|failure|always]` → the job (id or name) and when its runs trigger.
fn parse_after(s: &str) -> (&str, &str) {
    match s.rsplit_once(':') {
        Some((job, on)) if ["success", "failure", "always"].contains(&on) && !job.is_empty() => (job, on),
        _ => (s, "success"),
    }
}

impl JobSettings {
    /// The `after` entries, their jobs resolved by id or name; `None` when none were given.
    async fn after_entries(&self, api: &Api) -> anyhow::Result<Option<Value>> {
        if self.after.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for a in &self.after {
            let (job, on) = parse_after(a);
            let id = id_of(&api.job(job).await.map_err(api_err)?)?;
            entries.push(json!({"job_id": id, "on": on}));
        }
        Ok(Some(Value::Array(entries)))
    }

    fn apply(&self, body: &mut Map<String, Value>) {
        if let Some(c) = &self.command {
            body.insert("command".into(), json!(c));
        }
        if let Some(t) = self.timeout {
            body.insert("timeout_s".into(), json!(t));
        }
        if let Some(o) = &self.overlap {
            body.insert("overlap".into(), json!(o));
        }
        if let Some(m) = &self.missed {
            body.insert("missed".into(), json!(m));
        }
        if let Some(r) = self.retries {
            body.insert("retries".into(), json!(r));
        }
        if let Some(b) = self.retry_backoff {
            body.insert("retry_backoff_s".into(), json!(b));
        }
        if let Some(g) = self.grace {
            body.insert("grace_s".into(), json!(g));
        }
        if let Some(d) = self.max_duration {
            body.insert("max_duration_s".into(), json!(d));
        }
        if let Some(j) = self.jitter {
            body.insert("jitter_s".into(), json!(j));
        }
        if let Some(t) = &self.not_before {
            body.insert("not_before".into(), json!(t));
        }
        if let Some(t) = &self.not_after {
            body.insert("not_after".into(), json!(t));
        }
        if let Some(n) = self.max_runs {
            body.insert("max_runs".into(), json!(n));
        }
        if self.after_any {
            body.insert("after_any".into(), json!(true));
        }
    }
}

#[derive(Subcommand, Debug)]
enum JobsCmd {
    /// List jobs.
    Ls {
        /// Only this stack's jobs (id or name).
        #[arg(long)]
        stack: Option<String>,
    },
    /// One job: settings, schedule in words, next fire times, recent runs (JOB = id or name).
    Show { job: String },
    /// Create a job (enabled unless --paused). With --cron/--every/--at instead of
    /// --schedule, a schedule named after the job is created for it.
    Create {
        name: String,
        /// The stack it runs (id or name).
        #[arg(long)]
        stack: String,
        /// An existing schedule (id or name).
        #[arg(long, conflicts_with_all = ["cron", "every", "at"])]
        schedule: Option<String>,
        #[command(flatten)]
        rule: Rule,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        #[command(flatten)]
        settings: JobSettings,
    },
    /// Change a job (JOB = id or name); what is not given stays.
    Edit {
        job: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        stack: Option<String>,
        #[arg(long, conflicts_with_all = ["cron", "every", "at"])]
        schedule: Option<String>,
        #[command(flatten)]
        rule: Rule,
        /// Use the stack's command again.
        #[arg(long, conflicts_with = "command")]
        no_command: bool,
        /// Remove the timeout.
        #[arg(long, conflicts_with = "timeout")]
        no_timeout: bool,
        /// Remove the window (--not-before and --not-after).
        #[arg(long, conflicts_with_all = ["not_before", "not_after"])]
        no_window: bool,
        /// Remove the run limit.
        #[arg(long, conflicts_with = "max_runs")]
        no_max_runs: bool,
        /// Run after no other job any more.
        #[arg(long, conflicts_with_all = ["after", "after_any"])]
        no_after: bool,
        /// Run once all --after jobs ran (undoes --after-any).
        #[arg(long, conflicts_with = "after_any")]
        after_all: bool,
        #[command(flatten)]
        settings: JobSettings,
    },
    /// Stop firing a job on its schedule.
    Pause { job: String },
    /// Fire a job on its schedule again.
    Unpause { job: String },
    /// Delete a job (an enabled one is deleted at its next slot, as in Kragle).
    Rm { job: String },
    /// Run every slot of the job's schedule between --from and --to (RFC 3339, both included)
    /// that never ran, oldest first.
    Backfill {
        job: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// One after another instead of all at once.
        #[arg(long)]
        queue: bool,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    conn: Conn,
    /// The job (id or name).
    job: String,
    /// Stream the log until the run ends — through its retries — and exit with the final
    /// attempt's status: its exit code, 124 if it timed out, 143 / 137 if it was killed
    /// (SIGTERM / SIGKILL).
    #[arg(long, short = 'f')]
    follow: bool,
    /// Arguments for the command, after `--`, each a separate word: a command using "$@", $1…
    /// gets them as $1… only, one simple command or pipeline gets them appended to its last
    /// command, anything else refuses them (use "$@" where they belong).
    #[arg(last = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: RunsCmd,
}

#[derive(Subcommand, Debug)]
enum RunsCmd {
    /// A job's runs, newest first (JOB = id or name).
    Ls {
        job: String,
        /// Page of 10.
        #[arg(long, default_value_t = 1)]
        page: i64,
    },
    /// One run; a pipeline run with its steps (status, output or error).
    Show {
        /// The run id.
        run: i64,
    },
    /// Kill a queued or running run, on whichever node it goes (SIGTERM to its process group,
    /// SIGKILL after the kill grace).
    Kill {
        /// The run id.
        run: i64,
    },
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    conn: Conn,
    /// The run id.
    run: i64,
    /// Keep streaming until the run ends.
    #[arg(long, short = 'f')]
    follow: bool,
}

#[derive(Args, Debug)]
pub struct NextArgs {
    /// The expression, e.g. "0 3 * * 1-5", "@daily", "@every 90s".
    expression: String,
    /// Time zone (IANA name).
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// How many fire times.
    #[arg(short = 'n', long = "count", default_value_t = 5)]
    n: usize,
    /// A job's uid: the values `H` picks for that job (an expression with `H` needs one).
    #[arg(long, value_name = "JOB_UID")]
    hash_key: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    output: Output,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `KEY=VALUE`, or `KEY` alone: the value of this process's environment variable KEY. The
/// value is never repeated in a message.
fn parse_secret_env(s: &str) -> Result<(String, Secret), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), Secret::new(v))),
        Some(_) => {
            Err("expected KEY=VALUE, or KEY to take the value from the environment variable KEY".into())
        }
        None => match std::env::var(s) {
            Ok(v) => Ok((s.to_string(), Secret::new(v))),
            Err(_) => Err(format!("no environment variable {s} to take its value from (or give {s}=VALUE)")),
        },
    }
}

/// A `secret_env` request object: values set, `null`s remove.
fn secret_changes(set: Vec<(String, Secret)>, unset: Vec<String>) -> Value {
    let mut map = Map::new();
    for k in unset {
        map.insert(k, Value::Null);
    }
    for (k, v) in set {
        map.insert(k, json!(v.expose()));
    }
    Value::Object(map)
}

/// Runs a client command. Output cut short by a closed stdout (`cronstack next … | head -1`)
/// is a success: the reader has what it wanted.
pub async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    match run_command(cmd).await {
        Err(e) if output::is_closed_stdout(&e) => Ok(()),
        other => other,
    }
}

async fn run_command(cmd: ClientCommand) -> anyhow::Result<()> {
    let style = Style::detect();
    match cmd {
        ClientCommand::Login(args) => login(args).await,
        ClientCommand::Logout => {
            let path = config::path()?;
            if config::remove()? {
                outln!("forgot the server and token in {}", path.display());
            } else {
                outln!("not logged in ({} does not exist)", path.display());
            }
            Ok(())
        }
        ClientCommand::Next(args) => next(args, style),
        ClientCommand::Stacks(a) => {
            let (api, out) = connect(&a.conn)?;
            stacks(&api, out, style, a.cmd).await
        }
        ClientCommand::Schedules(a) => {
            let (api, out) = connect(&a.conn)?;
            schedules(&api, out, style, a.cmd).await
        }
        ClientCommand::Jobs(a) => {
            let (api, out) = connect(&a.conn)?;
            jobs(&api, out, style, a.cmd).await
        }
        ClientCommand::Run(a) => {
            let (api, out) = connect(&a.conn)?;
            run_job(&api, out, &a.job, &a.args, a.follow).await
        }
        ClientCommand::Types(a) => {
            let (api, out) = connect(&a.conn)?;
            pipelines::types(&api, out, style).await
        }
        ClientCommand::Runs(a) => {
            let (api, out) = connect(&a.conn)?;
            match a.cmd {
                RunsCmd::Ls { job, page } => runs_ls(&api, out, style, &job, page).await,
                RunsCmd::Kill { run } => kill_run(&api, out, run).await,
                RunsCmd::Show { run } => pipelines::show_run(&api, out, style, run).await,
            }
        }
        ClientCommand::Logs(a) => {
            let (api, out) = connect(&a.conn)?;
            logs(&api, out, a.run, a.follow).await
        }
        ClientCommand::Apply(a) => {
            let (api, out) = connect(&a.conn)?;
            apply::apply(&api, out, &a.file, a.prune, a.dry_run).await
        }
        ClientCommand::Export(a) => {
            let (api, out) = connect(&a.conn)?;
            apply::export(&api, out == Output::Json).await
        }
        ClientCommand::ImportCrontab(a) => {
            let text = if a.file == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading the crontab from stdin")?
            } else {
                std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file))?
            };
            let system = a.system || a.file.starts_with("/etc/cron");
            // A dry run needs no server; given one, it also checks the names are free.
            let api = match connect(&a.conn) {
                Ok((api, _)) => Some(api),
                Err(e) if !a.dry_run => return Err(e),
                Err(_) => None,
            };
            crontab::import(api.as_ref(), a.conn.output, &text, system, &a.prefix, a.dry_run).await
        }
        ClientCommand::Monitors(a) => monitors::monitors(*a, style).await,
        ClientCommand::Ping(a) => monitors::ping(*a).await,
    }
}

/// The API client from flags, environment, or the stored config.
fn connect(conn: &Conn) -> anyhow::Result<(Api, Output)> {
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

async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let url = config::normalize_url(&args.url)?;
    let token = match args.token {
        Some(t) => t,
        None => read_token(&url)?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("no token given");
    }
    let api = Api::new(&url, &token);
    let me = api.whoami().await.map_err(|e| anyhow!("{e}"))?;
    let path = config::save(&config::Config { url: url.clone(), token })?;
    let scopes: Vec<String> = me["scopes"].as_array().into_iter().flatten().map(cell).collect();
    outln!(
        "logged in to {url} as {} (scopes: {}); saved to {}",
        cell(&me["username"]),
        scopes.join(", "),
        path.display()
    );
    Ok(())
}

/// Reads a token from stdin; on a terminal, prompts without echoing it.
fn read_token(url: &str) -> anyhow::Result<String> {
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

fn next(args: NextArgs, style: Style) -> anyhow::Result<()> {
    use cronstack_cron::{ParseError, Trigger, hash_key};
    let trigger = match &args.hash_key {
        Some(uid) => Trigger::cron_with_hash_key(&args.expression, &args.tz, hash_key(uid)),
        None => Trigger::cron(&args.expression, &args.tz),
    }
    .map_err(|e| match e {
        ParseError::HashKeyRequired { .. } => anyhow!("{e}: pass --hash-key JOB_UID"),
        e => anyhow!("{e}"),
    })?;
    let tz: chrono_tz::Tz = args.tz.parse().map_err(|_| anyhow!("unknown time zone {:?}", args.tz))?;
    let now = chrono::Utc::now().timestamp_millis();
    let times = trigger.upcoming(now, args.n);
    if args.output == Output::Json {
        let upcoming: Vec<String> = times.iter().map(|&t| crate::domain::iso8601(t)).collect();
        print_json(&json!({
            "expression": args.expression,
            "timezone": args.tz,
            "hash_key": args.hash_key,
            "description": trigger.describe(),
            "upcoming": upcoming,
        }));
        return Ok(());
    }
    outln!("{}", style.bold(&trigger.describe()));
    if times.is_empty() {
        outln!("{}", style.dim("(it never fires again)"));
        return Ok(());
    }
    let mut table = Table::new(&["#", &format!("TIME ({})", args.tz), "UTC", "IN"]);
    for (i, &t) in times.iter().enumerate() {
        let Some(utc) = chrono::DateTime::from_timestamp_millis(t) else { continue };
        let local = utc.with_timezone(&tz);
        table.row(vec![
            (i + 1).to_string(),
            local.format("%a %Y-%m-%d %H:%M:%S %Z").to_string(),
            utc.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            relative(t - now),
        ]);
    }
    table.print(style);
    Ok(())
}

/// `3d 4h`, `5h 02m`, `12m 30s`, `45s`.
fn relative(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {sec:02}s")
    } else {
        format!("{sec}s")
    }
}

fn api_err(e: api::ApiError) -> anyhow::Error {
    anyhow!("{e}")
}

/// Where a job's health sorts in `jobs ls`: what needs attention first.
fn health_rank(health: &str) -> u8 {
    match health {
        "stuck" => 0,
        "failing" => 1,
        "late" => 2,
        "ok" => 3,
        _ => 4,
    }
}

fn job_state(job: &Value) -> &'static str {
    if job["do_del"].as_bool() == Some(true) {
        "deleting"
    } else if job["do_run"].as_bool() == Some(true) {
        "enabled"
    } else {
        "paused"
    }
}

/// A list of names as `A B C`, or `-`.
fn names_or_dash(names: &Value) -> String {
    let names: Vec<&str> = names.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if names.is_empty() { "-".into() } else { names.join(" ") }
}

fn id_of(v: &Value) -> anyhow::Result<i64> {
    v["id"].as_i64().ok_or_else(|| anyhow!("the server's answer has no id: {v}"))
}

async fn stacks(api: &Api, out: Output, style: Style, cmd: StacksCmd) -> anyhow::Result<()> {
    match cmd {
        StacksCmd::Ls => {
            let stacks = api.all("/blockstacks", "stacks").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&Value::Array(stacks));
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "JOBS", "COMMAND"]);
            for s in &stacks {
                let jobs = s["jobs"].as_array().map_or(0, Vec::len);
                t.row(vec![
                    cell(&s["id"]),
                    cell(&s["name"]),
                    jobs.to_string(),
                    one_line(&cell(&s["command"]), 60),
                ]);
            }
            t.print(style);
        }
        StacksCmd::Show { stack } => {
            let s = api.stack(&stack).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&s);
                return Ok(());
            }
            let env: Vec<String> =
                s["env"].as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", cell(v))).collect();
            print_fields(
                style,
                &[
                    ("id", cell(&s["id"])),
                    ("name", cell(&s["name"])),
                    ("uid", cell(&s["uid"])),
                    ("command", cell(&s["command"])),
                    ("env", if env.is_empty() { "-".into() } else { env.join(" ") }),
                    ("secret env", names_or_dash(&s["secret_env"])),
                    ("workdir", cell(&s["workdir"])),
                    ("created", local_time(&s["created_at"])),
                    ("updated", local_time(&s["updated_at"])),
                ],
            );
            pipelines::print_blocks(&s, style);
            let jobs = s["jobs"].as_array().cloned().unwrap_or_default();
            outln!();
            if jobs.is_empty() {
                outln!("{}", style.dim("no jobs"));
            } else {
                let mut t = Table::new(&["JOB", "NAME", "STATE", "SCHEDULE"]);
                for j in &jobs {
                    let state = if j["do_run"].as_bool() == Some(true) { "enabled" } else { "paused" };
                    t.row(vec![
                        cell(&j["id"]),
                        cell(&j["name"]),
                        style.status(state),
                        schedule_text(&j["schedule"]),
                    ]);
                }
                t.print(style);
            }
        }
        StacksCmd::Create { name, command, block, conversion, public, env, secret_env, workdir } => {
            let mut body = json!({ "name": name });
            match command {
                Some(c) => body["command"] = json!(c),
                None => body["blocks"] = pipelines::blocks_body(&block, &conversion)?,
            }
            if public {
                body["public"] = json!(true);
            }
            if !env.is_empty() {
                body["env"] = json!(env.into_iter().collect::<HashMap<_, _>>());
            }
            if !secret_env.is_empty() {
                body["secret_env"] = secret_changes(secret_env, Vec::new());
            }
            if let Some(w) = workdir {
                body["workdir"] = json!(w);
            }
            let id = id_of(&api.post("/blockstacks", &body).await.map_err(api_err)?)?;
            if out == Output::Json {
                print_json(&api.get(&format!("/blockstacks/byid/{id}")).await.map_err(api_err)?);
            } else {
                outln!("created stack {id} ({name})");
            }
        }
        StacksCmd::Edit {
            stack,
            name,
            command,
            env,
            unset_env,
            secret_env,
            unset_secret_env,
            workdir,
            no_workdir,
        } => {
            let current = api.stack(&stack).await.map_err(api_err)?;
            let id = id_of(&current)?;
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if let Some(c) = command {
                body.insert("command".into(), json!(c));
            }
            if !env.is_empty() || !unset_env.is_empty() {
                let mut map = current["env"].as_object().cloned().unwrap_or_default();
                for k in &unset_env {
                    map.remove(k);
                }
                for (k, v) in env {
                    map.insert(k, json!(v));
                }
                body.insert("env".into(), Value::Object(map));
            }
            if !secret_env.is_empty() || !unset_secret_env.is_empty() {
                body.insert("secret_env".into(), secret_changes(secret_env, unset_secret_env));
            }
            if let Some(w) = workdir {
                body.insert("workdir".into(), json!(w));
            } else if no_workdir {
                body.insert("workdir".into(), Value::Null);
            }
            if body.is_empty() {
                bail!(
                    "nothing to change: give --name, --command, --env, --unset-env, --secret-env, --unset-secret-env, --workdir or --no-workdir"
                );
            }
            let updated =
                api.put(&format!("/blockstacks/{id}"), &Value::Object(body)).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&updated);
            } else {
                outln!("updated stack {id} ({})", cell(&updated["name"]));
            }
        }
    }
    Ok(())
}

/// A Kragle schedule config in short: `cron 0 3 * * * (Europe/Paris)`, `every 60s`, `at …`.
/// A job's window: `from … to …`, `-` for none.
fn window_text(job: &Value) -> String {
    match (job["not_before"].as_str(), job["not_after"].as_str()) {
        (None, None) => "-".into(),
        (start, end) => format!("from {} to {}", start.unwrap_or("any time"), end.unwrap_or("any time")),
    }
}

/// A job's `after` entries as `name (#id) on success, …`, then whether all or any; `-`.
async fn after_text(api: &Api, job: &Value) -> String {
    let entries = job["after"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        return "-".into();
    }
    let mut parts = Vec::new();
    for e in &entries {
        let name = match api.get(&format!("/jobs/byid/{}", e["job_id"])).await {
            Ok(upstream) => cell(&upstream["name"]),
            Err(_) => "(gone)".into(),
        };
        parts.push(format!("{name} (#{}) on {}", cell(&e["job_id"]), cell(&e["on"])));
    }
    let mode = if job["after_any"].as_bool() == Some(true) { "each run of any" } else { "once all ran" };
    format!("{} — {mode}", parts.join(", "))
}

fn schedule_text(config: &Value) -> String {
    if let Some(expr) = config["cron"].as_str() {
        format!("cron {expr} ({})", config["timezone"].as_str().unwrap_or("UTC"))
    } else if let Some(p) = config["period"].as_i64() {
        format!("every {p}s")
    } else if let Some(ts) = config["timestamp"].as_i64() {
        let t = chrono::DateTime::from_timestamp(ts, 0).map(|t| crate::domain::iso8601(t.timestamp_millis()));
        format!("at {}", local_time(&json!(t)))
    } else {
        cell(config)
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat = s.replace('\n', " ⏎ ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    } else {
        flat
    }
}

async fn schedules(api: &Api, out: Output, style: Style, cmd: SchedulesCmd) -> anyhow::Result<()> {
    match cmd {
        SchedulesCmd::Ls => {
            let all = api.all("/schedules", "schedules").await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&Value::Array(all));
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "RULE", "IN WORDS", "NEXT"]);
            for s in &all {
                let next =
                    s["upcoming"].as_array().and_then(|u| u.first()).map(local_time).unwrap_or("-".into());
                t.row(vec![
                    cell(&s["id"]),
                    cell(&s["name"]),
                    schedule_text(&s["config"]),
                    cell(&s["description"]),
                    next,
                ]);
            }
            t.print(style);
        }
        SchedulesCmd::Create { name, rule } => {
            let id = create_schedule(api, name.as_deref(), &rule).await?;
            let created = api.get(&format!("/schedules/byid/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                outln!("created schedule {id}: {}", cell(&created["description"]));
            }
        }
    }
    Ok(())
}

async fn create_schedule(api: &Api, name: Option<&str>, rule: &Rule) -> anyhow::Result<i64> {
    let (config, once) = rule.config()?;
    let mut body = json!({ "config": config });
    if once {
        body["once"] = json!(true);
    }
    if let Some(n) = name {
        body["name"] = json!(n);
    }
    id_of(&api.post("/schedules", &body).await.map_err(api_err)?)
}

async fn jobs(api: &Api, out: Output, style: Style, cmd: JobsCmd) -> anyhow::Result<()> {
    match cmd {
        JobsCmd::Ls { stack } => {
            let mut all = api.all("/jobs", "jobs").await.map_err(api_err)?;
            if let Some(s) = stack {
                let id = id_of(&api.stack(&s).await.map_err(api_err)?)?;
                all.retain(|j| j["stack"].as_i64() == Some(id));
            }
            if out == Output::Json {
                print_json(&Value::Array(all));
                return Ok(());
            }
            let stacks: HashMap<i64, String> = api
                .all("/blockstacks", "stacks")
                .await
                .map_err(api_err)?
                .iter()
                .filter_map(|s| Some((s["id"].as_i64()?, cell(&s["name"]))))
                .collect();
            let schedules: HashMap<i64, String> = api
                .all("/schedules", "schedules")
                .await
                .map_err(api_err)?
                .iter()
                .filter_map(|s| Some((s["id"].as_i64()?, cell(&s["description"]))))
                .collect();
            let mut t = Table::new(&["ID", "NAME", "STACK", "STATE", "HEALTH", "NEXT RUN", "SCHEDULE"]);
            // The ones needing attention first: stuck, failing, late, then ok, then paused.
            all.sort_by_key(|j| (health_rank(j["health"].as_str().unwrap_or("")), j["id"].as_i64()));
            for j in &all {
                let stack = j["stack"]
                    .as_i64()
                    .and_then(|id| stacks.get(&id).cloned())
                    .unwrap_or_else(|| cell(&j["stack"]));
                let schedule = j["schedule"]
                    .as_i64()
                    .and_then(|id| schedules.get(&id).cloned())
                    .unwrap_or_else(|| cell(&j["schedule"]));
                t.row(vec![
                    cell(&j["id"]),
                    cell(&j["name"]),
                    stack,
                    style.status(job_state(j)),
                    style.status(j["health"].as_str().unwrap_or("-")),
                    local_time(&j["next_run"]),
                    schedule,
                ]);
            }
            t.print(style);
        }
        JobsCmd::Show { job } => {
            let j = api.job(&job).await.map_err(api_err)?;
            let id = id_of(&j)?;
            let schedule = api.get(&format!("/schedules/byid/{}", j["schedule"])).await.map_err(api_err)?;
            let runs = api.get(&format!("/jobs/byid/{id}/runs")).await.map_err(api_err)?;
            if out == Output::Json {
                let mut j = j;
                j["schedule_object"] = schedule;
                j["recent_runs"] = runs["runs"].clone();
                print_json(&j);
                return Ok(());
            }
            let stack = api.get(&format!("/blockstacks/byid/{}", j["stack"])).await.map_err(api_err)?;
            let command = match j["command"].as_str() {
                Some(c) => c.to_string(),
                None => format!("{} {}", cell(&stack["command"]), style.dim("(the stack's)")),
            };
            let upcoming: Vec<String> =
                schedule["upcoming"].as_array().into_iter().flatten().map(local_time).collect();
            print_fields(
                style,
                &[
                    ("id", cell(&j["id"])),
                    ("name", cell(&j["name"])),
                    ("state", style.status(job_state(&j))),
                    ("health", style.status(j["health"].as_str().unwrap_or("-"))),
                    (
                        "last run",
                        match j["last_run"].as_object() {
                            Some(r) => format!(
                                "#{} {} {}",
                                cell(&r["id"]),
                                style.status(r["outcome"].as_str().unwrap_or("-")),
                                local_time(&r["finished_at"])
                            ),
                            None => "-".into(),
                        },
                    ),
                    ("stack", format!("{} (#{})", cell(&stack["name"]), cell(&j["stack"]))),
                    ("command", command),
                    ("schedule", format!("{} (#{})", cell(&schedule["description"]), cell(&j["schedule"]))),
                    ("next run", local_time(&j["next_run"])),
                    ("next fires", if upcoming.is_empty() { "-".into() } else { upcoming.join(", ") }),
                    ("timeout", j["timeout_s"].as_i64().map_or("-".into(), |t| format!("{t}s"))),
                    ("overlap", cell(&j["overlap"])),
                    ("missed", cell(&j["missed"])),
                    (
                        "retries",
                        format!("{} (backoff {}s)", cell(&j["retries"]), cell(&j["retry_backoff_s"])),
                    ),
                    ("jitter", format!("{}s", cell(&j["jitter_s"]))),
                    ("window", window_text(&j)),
                    (
                        "max runs",
                        match j["max_runs"].as_i64() {
                            Some(max) => format!("{max} ({} fired)", cell(&j["runs_fired"])),
                            None => "-".into(),
                        },
                    ),
                    ("after", after_text(api, &j).await),
                    ("uid", cell(&j["uid"])),
                    ("created", local_time(&j["created_at"])),
                    ("updated", local_time(&j["updated_at"])),
                ],
            );
            let runs = runs["runs"].as_array().cloned().unwrap_or_default();
            outln!();
            if runs.is_empty() {
                outln!("{}", style.dim("no runs yet"));
            } else {
                outln!("{}", style.bold("recent runs"));
                runs_table(&runs, style).print(style);
            }
        }
        JobsCmd::Create { name, stack, schedule, rule, paused, settings } => {
            let stack_id = id_of(&api.stack(&stack).await.map_err(api_err)?)?;
            let schedule_id = match (&schedule, rule.is_given()) {
                (Some(s), _) => id_of(&api.schedule(s).await.map_err(api_err)?)?,
                (None, true) => create_schedule(api, Some(&name), &rule).await?,
                (None, false) => {
                    bail!("give --schedule NAME|ID, or --cron EXPR, --every SECONDS or --at TIME")
                }
            };
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("stack_id".into(), json!(stack_id));
            body.insert("schedule_id".into(), json!(schedule_id));
            body.insert("enabled".into(), json!(!paused));
            settings.apply(&mut body);
            if let Some(after) = settings.after_entries(api).await? {
                body.insert("after".into(), after);
            }
            let id = id_of(&api.post("/jobs", &Value::Object(body)).await.map_err(api_err)?)?;
            let created = api.get(&format!("/jobs/byid/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&created);
            } else {
                outln!(
                    "created job {id} ({name}), {}; next run {}",
                    style.status(job_state(&created)),
                    local_time(&created["next_run"])
                );
            }
        }
        JobsCmd::Edit {
            job,
            name,
            stack,
            schedule,
            rule,
            no_command,
            no_timeout,
            no_window,
            no_max_runs,
            no_after,
            after_all,
            settings,
        } => {
            let current = api.job(&job).await.map_err(api_err)?;
            let id = id_of(&current)?;
            let mut body = Map::new();
            if let Some(n) = &name {
                body.insert("name".into(), json!(n));
            }
            if let Some(s) = stack {
                body.insert("stack_id".into(), json!(id_of(&api.stack(&s).await.map_err(api_err)?)?));
            }
            if let Some(s) = schedule {
                body.insert("schedule_id".into(), json!(id_of(&api.schedule(&s).await.map_err(api_err)?)?));
            } else if rule.is_given() {
                let label = name.clone().or_else(|| current["name"].as_str().map(str::to_string));
                body.insert(
                    "schedule_id".into(),
                    json!(create_schedule(api, label.as_deref(), &rule).await?),
                );
            }
            if no_command {
                body.insert("command".into(), Value::Null);
            }
            if no_timeout {
                body.insert("timeout_s".into(), Value::Null);
            }
            if no_window {
                body.insert("not_before".into(), Value::Null);
                body.insert("not_after".into(), Value::Null);
            }
            if no_max_runs {
                body.insert("max_runs".into(), Value::Null);
            }
            if no_after {
                body.insert("after".into(), json!([]));
                body.insert("after_any".into(), json!(false));
            }
            if after_all {
                body.insert("after_any".into(), json!(false));
            }
            settings.apply(&mut body);
            if let Some(after) = settings.after_entries(api).await? {
                body.insert("after".into(), after);
            }
            if body.is_empty() {
                bail!("nothing to change: see `cronstack jobs edit --help`");
            }
            let updated = api.put(&format!("/jobs/{id}"), &Value::Object(body)).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&updated);
            } else {
                outln!("updated job {id} ({})", cell(&updated["name"]));
            }
        }
        JobsCmd::Pause { job } => set_enabled(api, out, style, &job, false).await?,
        JobsCmd::Unpause { job } => set_enabled(api, out, style, &job, true).await?,
        JobsCmd::Backfill { job, from, to, queue } => {
            let id = id_of(&api.job(&job).await.map_err(api_err)?)?;
            let overlap = if queue { "queue" } else { "allow" };
            let body = json!({"from": from, "to": to, "overlap": overlap});
            let answer = api.post(&format!("/jobs/byid/{id}/backfill"), &body).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else {
                outln!("backfilling {} slot(s) of job {id}", cell(&answer["count"]));
                for run in answer["runs"].as_array().into_iter().flatten() {
                    outln!("  run {} for {}", cell(&run["id"]), cell(&run["scheduled_for"]));
                }
            }
        }
        JobsCmd::Rm { job } => {
            let current = api.job(&job).await.map_err(api_err)?;
            let id = id_of(&current)?;
            let answer = api.delete(&format!("/jobs/{id}")).await.map_err(api_err)?;
            if out == Output::Json {
                print_json(&answer);
            } else if answer.get("queued_for_deletion").is_some() {
                outln!(
                    "job {id} ({}) is enabled: it is deleted at its next slot instead of running",
                    cell(&current["name"])
                );
            } else {
                outln!("deleted job {id} ({})", cell(&current["name"]));
            }
        }
    }
    Ok(())
}

async fn set_enabled(api: &Api, out: Output, style: Style, job: &str, enabled: bool) -> anyhow::Result<()> {
    let current = api.job(job).await.map_err(api_err)?;
    let id = id_of(&current)?;
    let updated = api.put(&format!("/jobs/{id}"), &json!({ "enabled": enabled })).await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&updated);
    } else {
        outln!("job {id} ({}) is {}", cell(&updated["name"]), style.status(job_state(&updated)));
    }
    Ok(())
}

fn runs_table(runs: &[Value], style: Style) -> Table {
    let mut t =
        Table::new(&["RUN", "TRIGGER", "OUTCOME", "SCHEDULED FOR", "DURATION", "LATENESS", "EXIT", "ARGS"]);
    for r in runs {
        let exit = match (r["exit_code"].as_i64(), r["signal"].as_i64()) {
            (Some(c), _) => c.to_string(),
            (None, Some(s)) => format!("signal {s}"),
            _ => "-".into(),
        };
        let args: Vec<String> = r["args"].as_array().into_iter().flatten().map(cell).collect();
        let args = shell_words::join(&args);
        t.row(vec![
            cell(&r["id"]),
            cell(&r["trigger"]),
            style.status(r["outcome"].as_str().unwrap_or("-")),
            local_time(&r["scheduled_for"]),
            duration_ms(&r["duration_ms"]),
            duration_ms(&r["lateness_ms"]),
            exit,
            one_line(&args, 40),
        ]);
    }
    t
}

async fn runs_ls(api: &Api, out: Output, style: Style, job: &str, page: i64) -> anyhow::Result<()> {
    let j = api.job(job).await.map_err(api_err)?;
    let id = id_of(&j)?;
    let answer = api.get(&format!("/jobs/byid/{id}/runs?page={page}")).await.map_err(api_err)?;
    let runs = answer["runs"].as_array().cloned().unwrap_or_default();
    if out == Output::Json {
        print_json(&Value::Array(runs));
        return Ok(());
    }
    if runs.is_empty() {
        outln!("{}", style.dim(if page == 1 { "no runs yet" } else { "no runs on this page" }));
        return Ok(());
    }
    runs_table(&runs, style).print(style);
    let count = answer["count"].as_i64().unwrap_or(0);
    let pages = (count + 9) / 10;
    if pages > 1 {
        outln!("{}", style.dim(&format!("page {page} of {pages} ({count} runs); --page N for more")));
    }
    Ok(())
}

async fn run_job(api: &Api, out: Output, job: &str, args: &[String], follow: bool) -> anyhow::Result<()> {
    let j = api.job(job).await.map_err(api_err)?;
    let id = id_of(&j)?;
    let run = api.run_now(id, args).await.map_err(api_err)?;
    let run_id = id_of(&run)?;
    if !follow {
        if out == Output::Json {
            print_json(&run);
        } else {
            outln!(
                "started run {run_id} of job {id} ({}); `cronstack logs {run_id} --follow` to watch",
                cell(&j["name"])
            );
        }
        return Ok(());
    }
    let name = j["name"].as_str().map_or(format!("job {id}"), str::to_string);
    let mut finished = follow_log(api, out, run_id, &format!("run {run_id} of {name}")).await?;
    // A failed attempt the job retries: follow the next one, to the last.
    while let Some(next) = next_attempt(api, &j, &finished).await? {
        let next_id = id_of(&next)?;
        let attempt = next["attempt"].as_i64().unwrap_or(0);
        finished =
            follow_log(api, out, next_id, &format!("run {next_id} of {name} (attempt {attempt})")).await?;
    }
    if out == Output::Json {
        print_json(&finished);
    }
    let code = exit_code(&finished);
    if code == 0 { Ok(()) } else { Err(Exit(code).into()) }
}

/// The retry of a finished run, if the job retries it: the job's run with the next attempt
/// number recorded after it (the engine records it as the attempt ends, before its backoff).
async fn next_attempt(api: &Api, job: &Value, run: &Value) -> anyhow::Result<Option<Value>> {
    let attempt = run["attempt"].as_i64().unwrap_or(1);
    let retried = match run["outcome"].as_str() {
        Some("failed" | "timed_out") => true,
        Some("lost") => job["retry_lost"].as_bool().unwrap_or(true),
        _ => false,
    };
    if !retried || attempt > job["retries"].as_i64().unwrap_or(0) {
        return Ok(None);
    }
    let (job_id, run_id) = (id_of(job)?, id_of(run)?);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let page = api.get(&format!("/jobs/byid/{job_id}/runs")).await.map_err(api_err)?;
        let found = page["runs"].as_array().into_iter().flatten().find(|r| {
            r["trigger"] == "retry"
                && r["attempt"].as_i64() == Some(attempt + 1)
                && r["id"].as_i64().is_some_and(|id| id > run_id)
        });
        if let Some(next) = found {
            return Ok(Some(next.clone()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(None)
}

/// The process exit code for a finished run, like `timeout(1)` and a shell: 124 for a run
/// that timed out, 128 + the signal for a killed one (143 without one: killed before it
/// started), its exit code otherwise, 1 for a run that never ran or failed otherwise.
fn exit_code(run: &Value) -> u8 {
    match (run["outcome"].as_str(), run["exit_code"].as_i64(), run["signal"].as_i64()) {
        (Some("timed_out"), _, _) => 124,
        (Some("killed"), _, Some(s)) => (128 + s).clamp(1, 255) as u8,
        (Some("killed"), _, None) => 143,
        (_, Some(c), _) => c.clamp(0, 255) as u8,
        (_, None, Some(s)) => (128 + s).clamp(1, 255) as u8,
        (Some("succeeded"), None, None) => 0,
        _ => 1,
    }
}

async fn kill_run(api: &Api, out: Output, run_id: i64) -> anyhow::Result<()> {
    let run = api.post(&format!("/runs/{run_id}/kill"), &json!({})).await.map_err(api_err)?;
    if out == Output::Json {
        print_json(&run);
    } else {
        outln!("run {run_id}: {}", cell(&run["outcome"]));
    }
    Ok(())
}

async fn logs(api: &Api, out: Output, run_id: i64, follow: bool) -> anyhow::Result<()> {
    if !follow {
        let resp = api.stream(&format!("/runs/{run_id}/log")).await.map_err(api_err)?;
        let bytes = resp.bytes().await.map_err(|e| anyhow!("{}", api.transport_error(&e)))?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&bytes)?;
        stdout.flush()?;
        return Ok(());
    }
    let finished = follow_log(api, out, run_id, &format!("run {run_id}")).await?;
    if out == Output::Json {
        print_json(&finished);
    }
    Ok(())
}

/// Streams a run's log until the run ends (a spinner on stderr meanwhile); returns the
/// finished run. With `--output json` the log goes to stderr, keeping stdout for the JSON.
async fn follow_log(api: &Api, out: Output, run_id: i64, label: &str) -> anyhow::Result<Value> {
    let first = api.get(&format!("/runs/{run_id}")).await.map_err(api_err)?;
    let spinner = Spinner::start(&format!("{label}: {}", cell(&first["outcome"])));
    let mut resp = api.stream(&format!("/runs/{run_id}/log?follow=1")).await.map_err(api_err)?;
    let mut sink: Box<dyn Write> =
        if out == Output::Json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    // The state is polled until the run is seen running (a few requests at most, so that a
    // long run does not spend the token's hourly budget).
    let mut state = first["outcome"].as_str().unwrap_or("").to_string();
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            chunk = resp.chunk() => match chunk {
                Ok(Some(bytes)) => spinner.output(&mut *sink, &bytes)?,
                Ok(None) => break,
                Err(e) => {
                    spinner.finish("");
                    return Err(anyhow!("{}", api.transport_error(&e)));
                }
            },
            _ = poll.tick(), if state == "queued" => {
                if let Ok(r) = api.get(&format!("/runs/{run_id}")).await {
                    state = r["outcome"].as_str().unwrap_or("").to_string();
                    spinner.set_message(&format!("{label}: {state}"));
                }
            }
        }
    }
    // The log closes as the process ends; the final record follows a moment later.
    let mut run = api.get(&format!("/runs/{run_id}")).await.map_err(api_err)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while matches!(run["outcome"].as_str(), Some("queued" | "running"))
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        run = api.get(&format!("/runs/{run_id}")).await.map_err(api_err)?;
    }
    let outcome = run["outcome"].as_str().unwrap_or("-");
    let mark = if outcome == "succeeded" { "✓" } else { "✗" };
    let mut parts = vec![format!("{mark} {label} {outcome}")];
    if let Some(c) = run["exit_code"].as_i64() {
        parts.push(format!("exit {c}"));
    }
    if let Some(s) = run["signal"].as_i64() {
        parts.push(format!("signal {s}"));
    }
    if !run["duration_ms"].is_null() {
        parts.push(duration_ms(&run["duration_ms"]));
    }
    spinner.finish(&parts.join(" · "));
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_run() {
        assert_eq!(exit_code(&json!({"outcome": "succeeded", "exit_code": 0})), 0);
        assert_eq!(exit_code(&json!({"outcome": "failed", "exit_code": 3})), 3);
        assert_eq!(exit_code(&json!({"outcome": "killed", "exit_code": null, "signal": 9})), 137);
        assert_eq!(exit_code(&json!({"outcome": "killed", "exit_code": null, "signal": 15})), 143);
        assert_eq!(exit_code(&json!({"outcome": "killed", "exit_code": null, "signal": null})), 143);
        assert_eq!(exit_code(&json!({"outcome": "timed_out", "exit_code": 0, "signal": 15})), 124);
        assert_eq!(exit_code(&json!({"outcome": "skipped"})), 1);
    }

    #[test]
    fn rules_become_configs() {
        let r = Rule { cron: Some("0 3 * * *".into()), tz: Some("Europe/Paris".into()), ..Rule::default() };
        assert_eq!(r.config().unwrap(), (json!({"cron": "0 3 * * *", "timezone": "Europe/Paris"}), false));
        let r = Rule { at: Some("2026-12-01T09:00:00Z".into()), ..Rule::default() };
        assert_eq!(r.config().unwrap(), (json!({"timestamp": 1_796_115_600}), true));
        assert!(Rule::default().config().is_err());
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative(45_000), "45s");
        assert_eq!(relative(750_000), "12m 30s");
        assert_eq!(relative(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
    }
}
