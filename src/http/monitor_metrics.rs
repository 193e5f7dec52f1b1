//! Each heartbeat monitor's series on `/metrics` (with `--metrics-per-job`, as the jobs'):
//! when it was last pinged, and its state as 0/1 per state, labelled by monitor id and name,
//! so an alert rule can be written per monitor. 6 series per monitor at most.

use std::fmt::Write;

use crate::domain::monitor::{Monitor, MonitorState};

pub fn per_monitor_metrics(monitors: &[Monitor]) -> String {
    let mut out = String::new();
    let name = "cronstack_monitor_last_ping_timestamp_seconds";
    let _ =
        writeln!(out, "# HELP {name} When the monitor was last pinged (Unix seconds)\n# TYPE {name} gauge");
    for m in monitors {
        if let Some(at) = m.last_ping_at {
            let _ = writeln!(
                out,
                "{name}{{monitor_id=\"{}\",monitor=\"{}\"}} {}",
                m.id,
                label(&m.name),
                at as f64 / 1000.0
            );
        }
    }
    let name = "cronstack_monitor_state";
    let _ = writeln!(
        out,
        "# HELP {name} The monitor's state: 1 for its state (new, up, late, down, paused), 0 for the others\n# TYPE {name} gauge"
    );
    for m in monitors {
        for state in MonitorState::ALL {
            let on = u8::from(m.state == *state);
            let _ = writeln!(
                out,
                "{name}{{monitor_id=\"{}\",monitor=\"{}\",state=\"{state}\"}} {on}",
                m.id,
                label(&m.name)
            );
        }
    }
    out
}

/// A Prometheus label value, escaped.
pub(super) fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
