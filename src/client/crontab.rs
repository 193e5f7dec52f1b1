//! `cronstack import-crontab FILE|-`: a crontab becomes stacks, schedules and jobs.
//!
//! Read as Vixie cron reads it: `VAR=value` lines set the environment of the entries after
//! them (quotes around the value are removed), `CRON_TZ=` / `TZ=` set their time zone,
//! `MAILTO` is reported and ignored (cronstack keeps output in the run's log), `@reboot` is
//! reported as unsupported, and in a command an unescaped `%` starts the command's standard
//! input, each further `%` a new line of it (`\%` is a `%`). `/etc/crontab` and `/etc/cron.d`
//! files have a user column (`--system`, the default for paths under `/etc/cron`); cronstack
//! runs every job as the service's user, which the plan says. Every line is checked before
//! anything is created, so a bad line (named by its number) creates nothing.

use anyhow::{anyhow, bail};
use serde_json::{Map, Value, json};

use super::api::Api;
use super::output::print_json;
use super::{Output, api_err};
use crate::api::v1::{Created, Deleted, ScheduleRequest};

/// One entry of the crontab, ready to create.
#[derive(Debug, PartialEq)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    pub cron: String,
    pub timezone: Option<String>,
    pub env: Vec<(String, String)>,
    /// The command, with its `%` stdin turned into a here-document.
    pub command: String,
    /// The user column of a system crontab.
    pub user: Option<String>,
}

/// What a crontab holds: the entries and what could not be brought over.
#[derive(Debug, Default, PartialEq)]
pub struct Crontab {
    pub entries: Vec<Entry>,
    pub notes: Vec<String>,
}

const MACROS: [&str; 8] =
    ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every"];

/// Reads `text`; `Err` lists every line that cannot be read, by number.
pub fn parse(text: &str, system: bool) -> Result<Crontab, Vec<String>> {
    let mut tab = Crontab::default();
    let mut errors = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut timezone: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = env_assignment(line) {
            match name.as_str() {
                "CRON_TZ" | "TZ" => {
                    if let Err(e) = cronstack_cron::parse_tz(&value) {
                        errors.push(format!("line {n}: {e}"));
                    }
                    timezone = Some(value.clone());
                    if name == "TZ" {
                        env.retain(|(k, _)| k != "TZ");
                        env.push((name, value));
                    }
                }
                "MAILTO" => tab.notes.push(format!(
                    "line {n}: MAILTO ignored (cronstack keeps each run's output in its log; subscribe a webhook for failures)"
                )),
                _ => {
                    env.retain(|(k, _)| *k != name);
                    env.push((name, value));
                }
            }
            continue;
        }
        if line.starts_with("@reboot") {
            tab.notes.push(format!("line {n}: @reboot is not supported (no job created): {line}"));
            continue;
        }
        match entry(line, system) {
            Ok((cron, user, command)) => {
                let tz = timezone.as_deref().unwrap_or("UTC");
                if let Err(e) = cronstack_cron::Trigger::cron(&cron, tz) {
                    errors.push(format!("line {n}: {cron:?}: {e}"));
                    continue;
                }
                if let Some(u) = &user {
                    tab.notes.push(format!(
                        "line {n}: runs as the service's user (the crontab says {u}; see `serve --run-as`)"
                    ));
                }
                tab.entries.push(Entry {
                    line: n,
                    cron,
                    timezone: timezone.clone(),
                    env: env.clone(),
                    command: stdin_to_heredoc(&command),
                    user,
                });
            }
            Err(e) => errors.push(format!("line {n}: {e}")),
        }
    }
    if errors.is_empty() { Ok(tab) } else { Err(errors) }
}

/// `NAME=value`, `NAME = "value"` (a line whose first word is a name and then `=`).
fn env_assignment(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once('=')?;
    let name = name.trim();
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return None;
    }
    let value = value.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    Some((name.to_string(), unquoted.to_string()))
}

/// The schedule, the user (system crontabs) and the command of an entry line.
fn entry(line: &str, system: bool) -> Result<(String, Option<String>, String), String> {
    let mut rest = line;
    let mut word = || -> Option<&str> {
        let trimmed = rest.trim_start();
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let (w, r) = trimmed.split_at(end);
        rest = r;
        (!w.is_empty()).then_some(w)
    };
    let first = word().ok_or("empty entry")?;
    let cron = if first.starts_with('@') {
        if !MACROS.contains(&first) {
            return Err(format!("unknown macro {first}"));
        }
        if first == "@every" {
            format!("@every {}", word().ok_or("@every needs a duration")?)
        } else {
            first.to_string()
        }
    } else {
        let mut fields = vec![first];
        for _ in 0..4 {
            fields.push(word().ok_or("a schedule has five fields, then the command")?);
        }
        fields.join(" ")
    };
    let user =
        if system { Some(word().ok_or("a system crontab names the user before the command")?) } else { None };
    let command = rest.trim();
    if command.is_empty() {
        return Err("no command".into());
    }
    Ok((cron, user.map(str::to_string), command.to_string()))
}

/// Cron's `%`: the first unescaped one ends the command and starts its stdin, each further
/// one is a newline in it; `\%` is a literal `%`. The stdin becomes a quoted here-document.
fn stdin_to_heredoc(command: &str) -> String {
    let mut parts = vec![String::new()];
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'%') => {
                parts.last_mut().unwrap().push('%');
                chars.next();
            }
            '%' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    let command = parts.remove(0);
    if parts.is_empty() {
        return command;
    }
    let mut marker = "CRONTAB_STDIN".to_string();
    while parts.iter().any(|p| p == &marker) {
        marker.push('_');
    }
    format!("{} <<'{marker}'\n{}\n{marker}", command.trim_end(), parts.join("\n"))
}

/// A name for the entry's stack and job: `PREFIX-LINE-WORD` (the command's program).
fn entry_name(prefix: &str, entry: &Entry) -> String {
    let program = entry
        .command
        .split_whitespace()
        .find(|w| !w.contains('='))
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .unwrap_or("job");
    let slug: String = program
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(40)
        .collect();
    format!("{prefix}-{}-{}", entry.line, if slug.is_empty() { "job" } else { &slug })
}

/// Reads the crontab, prints the plan, and (unless `dry_run`) creates it.
/// An entry as `import-crontab -o json` lists it (`job_id` once created).
#[derive(serde::Serialize)]
struct Imported {
    line: usize,
    name: String,
    schedule: Value,
    command: String,
    env: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<i64>,
}

pub async fn import(
    api: Option<&Api>,
    out: Output,
    text: &str,
    system: bool,
    prefix: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let tab =
        parse(text, system).map_err(|errors| anyhow!("nothing imported:\n  {}", errors.join("\n  ")))?;
    for note in &tab.notes {
        eprintln!("note: {note}");
    }
    let names: Vec<String> = tab.entries.iter().map(|e| entry_name(prefix, e)).collect();
    if let Some(api) = api {
        // Names first: a clash found half-way would leave the entries before it created.
        for name in &names {
            let job = api.job(name).await.map(|_| ());
            let stack = api.stack(name).await.map(|_| ());
            for (kind, found) in [("job", job), ("stack", stack)] {
                match found {
                    Ok(_) => {
                        bail!("nothing imported: a {kind} named {name:?} exists (give another --prefix)")
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(api_err(e)),
                }
            }
        }
    }
    let mut created = Vec::new();
    for (entry, name) in tab.entries.iter().zip(names) {
        let config = match &entry.timezone {
            Some(tz) => json!({ "cron": entry.cron, "timezone": tz }),
            None => json!({ "cron": entry.cron }),
        };
        let env: Map<String, Value> = entry.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let mut item = Imported {
            line: entry.line,
            name: name.clone(),
            schedule: config.clone(),
            command: entry.command.clone(),
            env: env.clone(),
            job_id: None,
        };
        if dry_run {
            if out == Output::Table {
                outln!(
                    "+ job {name}: {} {} (line {})",
                    entry.cron,
                    entry.timezone.as_deref().unwrap_or("UTC"),
                    entry.line
                );
            }
        } else {
            let api = api.ok_or_else(|| anyhow!("no server to import into"))?;
            let failed =
                |what: &str, e| anyhow!("line {}: creating {what} {name}: {}", entry.line, api_err(e));
            let schedule = ScheduleRequest { name: Some(name.clone()), config: Some(config), once: None };
            let schedule_id =
                api.post::<Created, _>("/schedules", &schedule).await.map_err(|e| failed("schedule", e))?.id;
            let stack = api
                .post::<Created, _>(
                    "/blockstacks",
                    &json!({ "name": name, "command": entry.command, "env": env }),
                )
                .await;
            let stack_id = match stack {
                Ok(s) => s.id,
                Err(e) => {
                    // No orphan schedule is left for this entry.
                    let _ = api.delete::<Deleted>(&format!("/schedules/{schedule_id}")).await;
                    return Err(failed("stack", e));
                }
            };
            let job = api
                .post::<Created, _>("/jobs", &json!({ "name": name, "stack_id": stack_id, "schedule_id": schedule_id, "enabled": true }))
                .await
                .map_err(|e| failed("job", e))?;
            item.job_id = Some(job.id);
            if out == Output::Table {
                outln!("created job {name} (line {}): {}", entry.line, entry.cron);
            }
        }
        created.push(item);
    }
    if out == Output::Json {
        print_json(&json!({ "dry_run": dry_run, "jobs": created, "notes": tab.notes }));
    } else if created.is_empty() {
        outln!("no entries to import");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_zones_and_percent_signs() {
        let tab = parse(
            "# nightly\nSHELL=/bin/sh\nMAILTO=ops@example.com\nCRON_TZ=Europe/Paris\nGREETING = \"hi there\"\n\
             0 3 * * 1-5 /usr/local/bin/backup.sh --full\n@reboot /bin/true\n\
             */5 * * * * mail -s report ops%line one%line \\% two\n",
            false,
        )
        .unwrap();
        assert_eq!(tab.entries.len(), 2);
        let e = &tab.entries[0];
        assert_eq!(
            (e.line, e.cron.as_str(), e.timezone.as_deref()),
            (6, "0 3 * * 1-5", Some("Europe/Paris"))
        );
        assert_eq!(e.env, [("SHELL".into(), "/bin/sh".into()), ("GREETING".into(), "hi there".into())]);
        assert_eq!(
            tab.entries[1].command,
            "mail -s report ops <<'CRONTAB_STDIN'\nline one\nline % two\nCRONTAB_STDIN"
        );
        assert!(tab.notes.iter().any(|n| n.starts_with("line 3: MAILTO ignored")), "{:?}", tab.notes);
        assert!(
            tab.notes.iter().any(|n| n.starts_with("line 7: @reboot is not supported")),
            "{:?}",
            tab.notes
        );
        assert_eq!(entry_name("cron", e), "cron-6-backup-sh");
    }

    #[test]
    fn system_crontabs_have_a_user_column() {
        let tab = parse("17 * * * * root cd / && run-parts --report /etc/cron.hourly\n", true).unwrap();
        assert_eq!(tab.entries[0].user.as_deref(), Some("root"));
        assert_eq!(tab.entries[0].command, "cd / && run-parts --report /etc/cron.hourly");
    }

    #[test]
    fn bad_lines_are_named_and_nothing_is_read() {
        let errors =
            parse("0 3 * * *\n61 * * * * x\nCRON_TZ=Mars/Base\n@fortnightly x\n", false).unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("line 1:") && errors[1].starts_with("line 2:"), "{errors:?}");
        assert!(errors[2].contains("Mars/Base") && errors[3].contains("@fortnightly"), "{errors:?}");
    }
}
