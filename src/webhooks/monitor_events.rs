//! The bodies of `monitor.down` / `monitor.up` deliveries. These events are queued by the
//! store with the state change that causes them (see `store::monitors`), not through the
//! event channel: a compare-and-swap on the monitor decides which node announces a change.
//! Subscriptions of kind `webhook` get the event JSON; chat and email channels a message
//! (`message::shape`) about the monitor, as job events get one about the job.

use serde_json::json;

use super::message::{self, Message, log_tail};
use crate::api::v1::{MonitorView, PingView};
use crate::domain::monitor::{Monitor, Ping, PingKind};
use crate::domain::{ChannelKind, EventKind, iso8601, job_hash_key, now_ms};

/// The delivery body of a monitor event for a channel of `channel` kind: for `webhook`,
/// `{"event", "timestamp", "monitor", "ping"}` (the monitor as the v1 API shows it after the
/// change, and the ping that caused it, `null` when time did: no ping came); for the others,
/// their message. `public_url`: the dashboard's address, linked from messages.
pub fn monitor_event_body(
    channel: ChannelKind,
    kind: EventKind,
    monitor: &Monitor,
    ping: Option<&Ping>,
    public_url: Option<&str>,
) -> String {
    if channel == ChannelKind::Webhook {
        return json!({
            "event": kind.as_str(),
            "timestamp": iso8601(now_ms()),
            "monitor": MonitorView::from(monitor),
            "ping": ping.map(PingView::from),
        })
        .to_string();
    }
    message::shape(channel, &monitor_message(kind, monitor, ping, public_url)).to_string()
}

/// "✗ monitor backups is down: no ping since 2026-12-05T03:00:00Z — at 03:00 every day", with
/// the monitor's state, schedule, grace and last ping, the ping's body as the log, and a link.
fn monitor_message(kind: EventKind, m: &Monitor, ping: Option<&Ping>, public_url: Option<&str>) -> Message {
    let schedule = m.schedule.trigger_for(job_hash_key(&m.uuid)).ok().map(|t| t.describe());
    let last_ping = m.last_ping_at.map(|at| match m.last_ping_kind {
        Some(k) => format!("{} ({})", iso8601(at), k.as_str()),
        None => iso8601(at),
    });
    let name = &m.name;
    let mut line = match (kind, ping) {
        (EventKind::MonitorDown, Some(p)) => match p.exit_code.filter(|c| *c != 0) {
            Some(code) => format!("✗ monitor {name} is down: its job failed (exit code {code})"),
            None => format!("✗ monitor {name} is down: its job reported a failure"),
        },
        (EventKind::MonitorDown, None) => match m.last_ping_at {
            Some(at) => {
                format!("✗ monitor {name} is down: no ping since {} (grace {} s)", iso8601(at), m.grace_s)
            }
            None => format!("✗ monitor {name} is down: no ping in time (grace {} s)", m.grace_s),
        },
        (EventKind::MonitorUp, _) => format!("✓ monitor {name} is up again"),
        (other, _) => format!("monitor {name}: {}", other.as_str()),
    };
    if let Some(d) = ping.and_then(|p| p.duration_ms) {
        line.push_str(&format!(" after {:.1} s", d as f64 / 1000.0));
    }
    if let Some(words) = schedule.as_deref().filter(|w| !w.is_empty()) {
        line.push_str(&format!(" — {words}"));
    }
    let mut facts =
        vec![("Monitor", format!("{name} (id {})", m.id)), ("State", m.state.as_str().to_string())];
    if let Some(words) = schedule {
        facts.push(("Schedule", words));
    }
    facts.push(("Grace", format!("{} s", m.grace_s)));
    facts.push(("Last ping", last_ping.unwrap_or_else(|| "never".to_string())));
    if let Some(p) = ping {
        if let Some(code) = p.exit_code {
            facts.push(("Exit code", code.to_string()));
        } else if p.kind == PingKind::Fail {
            facts.push(("Outcome", "failed".to_string()));
        }
        if let Some(d) = p.duration_ms {
            facts.push(("Duration", format!("{:.1} s", d as f64 / 1000.0)));
        }
    }
    Message {
        line,
        facts,
        tail: ping.map(|p| log_tail(&p.body)).filter(|t| !t.trim().is_empty()),
        link: public_url.map(|base| format!("{base}/ui/#/monitors/{}", m.id)),
        at: ping.map_or_else(now_ms, |p| p.created_at),
    }
}
