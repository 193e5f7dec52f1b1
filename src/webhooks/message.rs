//! Chat- and mail-shaped deliveries for notification channels: one line saying what happened (the job,
//! its schedule in words, the outcome, exit code and duration), the last lines of the run's
//! log, and a link to the run (or the job) on the dashboard (`--public-url`).
//!
//! Slack's incoming-webhook JSON (`text` + `blocks`; Mattermost and Rocket.Chat take it too),
//! Discord's (`content` + `embeds`), Microsoft Teams' (a `MessageCard`), and a mail's subject
//! and text (`email_shape`; `email` keeps the channel's recipients). Monitor events are said the
//! same way (`monitor_events`).

use serde_json::{Value, json};

use crate::domain::{ChannelKind, EpochMs, EventKind, iso8601};
use crate::events::Event;

/// Log lines a message quotes, the newest.
pub const LOG_LINES: usize = 20;
/// Bytes of log a message quotes at most (chat services cap message sizes).
const LOG_BYTES: usize = 3000;

/// What a message needs besides the event.
pub struct Context<'a> {
    /// The job's schedule in words ("at 03:00 every day"), when known.
    pub schedule: Option<&'a str>,
    /// The run's stored log, when the event is about a finished run.
    pub log: Option<&'a str>,
    /// The dashboard's public address (`--public-url`), without a trailing slash.
    pub public_url: Option<&'a str>,
}

/// The one-line summary: "✗ nightly-backup failed (exit code 3) after 12.3 s — at 03:00 every day".
pub fn summary(kind: EventKind, event: &Event, schedule: Option<&str>) -> String {
    let job = event.job.display_name();
    let run = event.run.as_ref();
    let what = match kind {
        EventKind::RunStarted => format!("▶ {job} started"),
        EventKind::RunSucceeded => format!("✓ {job} succeeded"),
        EventKind::RunFailed | EventKind::JobFail => {
            let outcome = run.map_or("failed".to_string(), |r| r.status.as_str().replace('_', " "));
            format!("✗ {job} {outcome}")
        }
        EventKind::RunTimedOut => format!("✗ {job} timed out"),
        EventKind::JobBackon => format!("✓ {job} is back on: it succeeded after failing"),
        EventKind::JobPaused => format!("⏸ {job} was paused"),
        EventKind::JobUnpaused => format!("▶ {job} was resumed"),
        EventKind::JobDeleted => format!("🗑 {job} was deleted"),
        EventKind::JobMissed => match event.job.track.missed_slot {
            Some(slot) => format!("⚠ {job} missed its run of {}", iso8601(slot)),
            None => format!("⚠ {job} missed a run"),
        },
        EventKind::JobStuck => format!(
            "⚠ {job} is stuck: a run has gone longer than {} s",
            event.job.max_duration_s.unwrap_or_default()
        ),
        EventKind::JobRecovered => format!("✓ {job} recovered"),
        // Monitor events are rendered by `monitor_events`, with the monitor in place of a job.
        EventKind::MonitorDown => format!("✗ {job} is down"),
        EventKind::MonitorUp => format!("✓ {job} is up"),
    };
    let mut line = what;
    if let Some(r) = run.filter(|r| r.status.is_final()) {
        if let Some(code) = r.exit_code {
            line.push_str(&format!(" (exit code {code})"));
        } else if let Some(signal) = r.signal {
            line.push_str(&format!(" (signal {signal})"));
        }
        if let (Some(start), Some(end)) = (r.started_at, r.finished_at) {
            line.push_str(&format!(" after {:.1} s", (end - start) as f64 / 1000.0));
        }
    }
    if let Some(words) = schedule.filter(|w| !w.is_empty()) {
        line.push_str(&format!(" — {words}"));
    }
    line
}

/// The last [`LOG_LINES`] lines of a log (at most [`LOG_BYTES`]).
pub fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.trim_end_matches('\n').lines().collect();
    let mut tail = lines[lines.len().saturating_sub(LOG_LINES)..].join("\n");
    if tail.len() > LOG_BYTES {
        let mut cut = tail.len() - LOG_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = tail[cut..].to_string();
    }
    // A fence inside the quoted log would end the code block early.
    tail.replace("```", "'''")
}

/// Where the message links: the run's page, else the job's.
fn link(event: &Event, public_url: Option<&str>) -> Option<String> {
    let base = public_url?;
    Some(match &event.run {
        Some(run) => format!("{base}/ui/#/runs/{}", run.id),
        None => format!("{base}/ui/#/jobs/{}", event.job.id),
    })
}

/// A notification whatever it is about (a job's event or a monitor's): what every channel
/// kind says, each in its own shape.
pub struct Message {
    /// The one-line summary: the chat text, the mail's subject.
    pub line: String,
    /// Labelled details ("Exit code", "3") a mail lists under the summary.
    pub facts: Vec<(&'static str, String)>,
    /// The last lines of the run's log (or the ping's body), when there are any.
    pub tail: Option<String>,
    /// The page on the dashboard, with `--public-url`.
    pub link: Option<String>,
    /// When it happened.
    pub at: EpochMs,
}

impl Message {
    /// The message about a job's event.
    pub fn for_job(kind: EventKind, event: &Event, cx: &Context) -> Message {
        let job = &event.job;
        let mut facts =
            vec![("Job", format!("{} (id {}, stack {})", job.display_name(), job.id, job.stack_id))];
        if let Some(words) = cx.schedule.filter(|w| !w.is_empty()) {
            facts.push(("Schedule", words.to_string()));
        }
        facts.push(("Event", kind.as_str().to_string()));
        if let Some(run) = &event.run {
            facts.push(("Run", format!("{} (scheduled for {})", run.id, iso8601(run.scheduled_for))));
            facts.push(("Outcome", run.status.as_str().replace('_', " ")));
            if let Some(code) = run.exit_code {
                facts.push(("Exit code", code.to_string()));
            }
            if let Some(signal) = run.signal {
                facts.push(("Signal", signal.to_string()));
            }
            if let (Some(start), Some(end)) = (run.started_at, run.finished_at) {
                facts.push(("Duration", format!("{:.1} s", (end - start) as f64 / 1000.0)));
            }
        }
        Message {
            line: summary(kind, event, cx.schedule),
            facts,
            tail: cx.log.map(log_tail).filter(|t| !t.is_empty()),
            link: link(event, cx.public_url),
            at: event.at,
        }
    }
}

/// The delivery body for a chat or email channel of `channel` kind about `kind` of `event`.
pub fn render(channel: ChannelKind, kind: EventKind, event: &Event, cx: &Context) -> Value {
    shape(channel, &Message::for_job(kind, event, cx))
}

/// A message in the shape of a channel of `channel` kind.
pub fn shape(channel: ChannelKind, message: &Message) -> Value {
    let Message { line, tail, link, .. } = message;
    match channel {
        ChannelKind::Slack => {
            let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": line}})];
            if let Some(tail) = tail {
                blocks.push(
                    json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{tail}```")}}),
                );
            }
            if let Some(url) = link {
                blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("<{url}|Open in cronstack>")}]}));
            }
            json!({ "text": line, "blocks": blocks })
        }
        ChannelKind::Discord => {
            let mut embed = json!({ "title": line, "timestamp": iso8601(message.at) });
            if let Some(tail) = tail {
                embed["description"] = json!(format!("```\n{tail}\n```"));
            }
            if let Some(url) = link {
                embed["url"] = json!(url);
            }
            json!({ "content": line, "embeds": [embed] })
        }
        ChannelKind::Teams => {
            let mut card = json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": line,
                "title": line,
            });
            if let Some(tail) = tail {
                card["text"] = json!(format!("<pre>{}</pre>", html_escape(tail)));
            }
            if let Some(url) = link {
                card["potentialAction"] = json!([{ "@type": "OpenUri", "name": "Open in cronstack",
                    "targets": [{ "os": "default", "uri": url }] }]);
            }
            card
        }
        ChannelKind::Email => email_shape(message),
        // Not a message: the event JSON (see `dispatch`, `monitor_events`).
        ChannelKind::Webhook => Value::Null,
    }
}

/// A message as a delivery body: `{"subject", "text"}` (a plain-text mail).
fn email_shape(message: &Message) -> Value {
    use std::fmt::Write;
    let mut text = format!("{}\n\n", message.line);
    let width = message.facts.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    for (label, value) in &message.facts {
        let _ = writeln!(text, "{:<width$} {value}", format!("{label}:"));
    }
    if let Some(url) = &message.link {
        let _ = writeln!(text, "{:<width$} {url}", "Link:");
    }
    if let Some(tail) = &message.tail {
        let _ = write!(text, "\nLast {LOG_LINES} lines of the log:\n\n{tail}\n");
    }
    text.push_str("\n-- \ncronstack\n");
    json!({ "subject": format!("[cronstack] {}", message.line), "text": text })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_last_lines_without_fences() {
        let log: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let tail = log_tail(&log);
        assert_eq!(tail.lines().count(), LOG_LINES);
        assert!(tail.starts_with("line 11\n") && tail.ends_with("line 30"), "{tail}");
        assert_eq!(log_tail("a ``` b"), "a ''' b");
        assert_eq!(log_tail(""), "");
    }
}
