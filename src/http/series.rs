//! Each job's and each heartbeat monitor's series on `/metrics` (`--metrics-per-job`), read
//! from the database at the scrape (so every node shows every one): when it last succeeded,
//! failed or was pinged, as Unix seconds (absent until it has), and its state as 0/1 per
//! state — labelled by id and name, so an alert rule can be written per job or monitor.
//! At most 7 series per job and 6 per monitor.

use std::fmt::{Display, Write};

use crate::domain::monitor::{Monitor, MonitorState};
use crate::domain::{EpochMs, Health};
use crate::store::JobHealthRow;

pub fn per_job(rows: &[JobHealthRow]) -> String {
    let mut out = String::new();
    let series = Series { kind: "job", out: &mut out };
    series
        .timestamps(
            "cronstack_job_last_success_timestamp_seconds",
            "When the job's last succeeded run ended (Unix seconds)",
            rows.iter().map(|r| ((r.id, r.name.as_str()), r.last_success_at)),
        )
        .timestamps(
            "cronstack_job_last_failure_timestamp_seconds",
            "When the job's last failed, timed out, killed or lost run ended (Unix seconds)",
            rows.iter().map(|r| ((r.id, r.name.as_str()), r.last_failure_at)),
        )
        .states(
            "cronstack_job_health",
            "The job's health: 1 for its state (ok, failing, late, stuck, paused), 0 for the others",
            Health::ALL,
            rows.iter().map(|r| ((r.id, r.name.as_str()), r.health)),
        );
    out
}

pub fn per_monitor(monitors: &[Monitor]) -> String {
    let mut out = String::new();
    let series = Series { kind: "monitor", out: &mut out };
    series
        .timestamps(
            "cronstack_monitor_last_ping_timestamp_seconds",
            "When the monitor was last pinged (Unix seconds)",
            monitors.iter().map(|m| ((m.id, m.name.as_str()), m.last_ping_at)),
        )
        .states(
            "cronstack_monitor_state",
            "The monitor's state: 1 for its state (new, up, late, down, paused), 0 for the others",
            MonitorState::ALL,
            monitors.iter().map(|m| ((m.id, m.name.as_str()), m.state)),
        );
    out
}

/// Writes gauges labelled `<kind>_id` and `<kind>` (the name).
struct Series<'o> {
    kind: &'static str,
    out: &'o mut String,
}

impl<'o> Series<'o> {
    /// One gauge per object that has a time: the time in Unix seconds.
    fn timestamps<'a>(
        self,
        name: &str,
        help: &str,
        items: impl Iterator<Item = ((i64, &'a str), Option<EpochMs>)>,
    ) -> Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for ((id, object), at) in items {
            if let Some(at) = at {
                let kind = self.kind;
                let _ = writeln!(
                    self.out,
                    "{name}{{{kind}_id=\"{id}\",{kind}=\"{}\"}} {}",
                    label(object),
                    at as f64 / 1000.0
                );
            }
        }
        self
    }

    /// One gauge per object and state: 1 for the object's state, 0 for the others.
    fn states<'a, S: Display + PartialEq + 'a>(
        self,
        name: &str,
        help: &str,
        all: &[S],
        items: impl Iterator<Item = ((i64, &'a str), S)>,
    ) -> Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for ((id, object), current) in items {
            for state in all {
                let kind = self.kind;
                let on = u8::from(current == *state);
                let _ = writeln!(
                    self.out,
                    "{name}{{{kind}_id=\"{id}\",{kind}=\"{}\",state=\"{state}\"}} {on}",
                    label(object)
                );
            }
        }
        self
    }
}

/// A Prometheus label value, escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
