//! The bodies of `monitor.down` / `monitor.up` deliveries. These events are queued by the
//! store with the state change that causes them (see `store::monitors`), not through the
//! event channel: a compare-and-swap on the monitor decides which node announces a change.

use serde_json::json;

use crate::domain::monitor::{Monitor, Ping};
use crate::domain::{EventKind, iso8601, now_ms};
use crate::http::kragle::monitors::{MonitorView, PingView};

/// `{"event", "timestamp", "monitor", "ping"}`: the monitor as the v1 API shows it after the
/// change, and the ping that caused it (`null` when time did: no ping came).
pub fn monitor_event_body(kind: EventKind, monitor: &Monitor, ping: Option<&Ping>) -> String {
    json!({
        "event": kind.as_str(),
        "timestamp": iso8601(now_ms()),
        "monitor": MonitorView::from(monitor),
        "ping": ping.map(PingView::from),
    })
    .to_string()
}
