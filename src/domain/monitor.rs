//! Heartbeat monitors, healthchecks.io's model: a cron job that runs elsewhere pings its
//! monitor's secret URL (`/ping/<uuid>`); a monitor whose ping does not come in time goes
//! `late`, then `down` past its grace. Plain types and the pure rules of a ping's effect.

use serde::{Deserialize, Serialize};

use super::{EpochMs, EventKind, ScheduleConfig, UserId};

wire_enum!(
    /// `new` (never pinged), `up`, `late` (past the expected time, within the grace), `down`
    /// (past the grace, or a failure ping), `paused` (pings are recorded, nothing changes).
    MonitorState { New = "new", Up = "up", Late = "late", Down = "down", Paused = "paused" }
);

wire_enum!(
    /// What a ping says: the job succeeded (`/ping/<uuid>` or exit code 0), started
    /// (`/start`), or failed (`/fail` or a non-zero exit code).
    PingKind { Success = "success", Start = "start", Fail = "fail" }
);

/// A ping's body is kept up to this many bytes (its tail) as the ping's log.
pub const PING_BODY_MAX: usize = 10 * 1024;
/// Pings kept per monitor unless it says otherwise (the newest).
pub const DEFAULT_KEEP_PINGS: i64 = 100;
/// The most pings a monitor may keep.
pub const MAX_KEEP_PINGS: i64 = 10_000;
/// The longest grace: a year.
pub const MAX_GRACE_S: i64 = 366 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct Monitor {
    pub id: i64,
    /// The secret in its ping URL: anyone who knows it may ping.
    pub uuid: String,
    pub owner: UserId,
    pub name: String,
    /// A cron expression with its zone, or a period (never a one-time timestamp).
    pub schedule: ScheduleConfig,
    pub grace_s: i64,
    pub keep_pings: i64,
    pub state: MonitorState,
    /// The last `/start` not yet followed by a result.
    pub started_at: Option<EpochMs>,
    pub last_ping_at: Option<EpochMs>,
    pub last_ping_kind: Option<PingKind>,
    /// When the next ping is expected (set by a success ping): late after it.
    pub late_at: Option<EpochMs>,
    /// `late_at` plus the grace: down after it.
    pub down_at: Option<EpochMs>,
    pub created_at: EpochMs,
    pub updated_at: EpochMs,
}

/// One ping, as recorded.
#[derive(Debug, Clone)]
pub struct Ping {
    pub id: i64,
    pub monitor_id: i64,
    pub kind: PingKind,
    pub exit_code: Option<i64>,
    /// From the `/start` before it, for a result.
    pub duration_ms: Option<i64>,
    pub method: String,
    pub user_agent: Option<String>,
    /// The request body's tail, at most [`PING_BODY_MAX`] bytes.
    pub body: String,
    pub body_truncated: bool,
    pub created_at: EpochMs,
}

/// What a ping changes on its monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingEffect {
    pub state: MonitorState,
    pub started_at: Option<EpochMs>,
    pub late_at: Option<EpochMs>,
    pub down_at: Option<EpochMs>,
    pub duration_ms: Option<i64>,
    /// `monitor.up` when a down monitor succeeds, `monitor.down` when a failure takes it down.
    pub event: Option<EventKind>,
}

impl Monitor {
    /// When a ping is expected after one at `at`: a period after it, or the schedule's next
    /// fire time (`H` fields hashed from the uuid).
    pub fn expected_after(&self, at: EpochMs) -> Option<EpochMs> {
        match &self.schedule {
            ScheduleConfig::Period { seconds } => Some(at.saturating_add(seconds.saturating_mul(1000))),
            ScheduleConfig::Cron { .. } => {
                self.schedule.trigger_for(super::job_hash_key(&self.uuid)).ok()?.next_after(at)
            }
            ScheduleConfig::Timestamp { .. } | ScheduleConfig::Manual => None,
        }
    }

    /// The effect of a ping of `kind` arriving at `now`.
    pub fn on_ping(&self, kind: PingKind, now: EpochMs) -> PingEffect {
        let duration_ms = match kind {
            PingKind::Start => None,
            _ => self.started_at.map(|s| (now - s).max(0)),
        };
        let started_at = (kind == PingKind::Start).then_some(now);
        let keep = PingEffect {
            state: self.state,
            started_at,
            late_at: self.late_at,
            down_at: self.down_at,
            duration_ms,
            event: None,
        };
        if self.state == MonitorState::Paused {
            return PingEffect { late_at: None, down_at: None, ..keep };
        }
        match kind {
            PingKind::Start => keep,
            PingKind::Success => {
                let late_at = self.expected_after(now);
                PingEffect {
                    state: MonitorState::Up,
                    late_at,
                    down_at: late_at.map(|l| l.saturating_add(self.grace_s * 1000)),
                    event: (self.state == MonitorState::Down).then_some(EventKind::MonitorUp),
                    ..keep
                }
            }
            PingKind::Fail => PingEffect {
                state: MonitorState::Down,
                late_at: None,
                down_at: None,
                event: (self.state != MonitorState::Down).then_some(EventKind::MonitorDown),
                ..keep
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(state: MonitorState) -> Monitor {
        Monitor {
            id: 1,
            uuid: "u".into(),
            owner: 1,
            name: "m".into(),
            schedule: ScheduleConfig::Period { seconds: 60 },
            grace_s: 30,
            keep_pings: DEFAULT_KEEP_PINGS,
            state,
            started_at: None,
            last_ping_at: None,
            last_ping_kind: None,
            late_at: None,
            down_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_success_expects_the_next_ping_a_period_later_and_only_a_down_monitor_comes_back_up() {
        let e = monitor(MonitorState::New).on_ping(PingKind::Success, 1_000);
        assert_eq!(
            (e.state, e.late_at, e.down_at, e.event),
            (MonitorState::Up, Some(61_000), Some(91_000), None)
        );
        let e = monitor(MonitorState::Late).on_ping(PingKind::Success, 1_000);
        assert_eq!(e.event, None);
        let e = monitor(MonitorState::Down).on_ping(PingKind::Success, 1_000);
        assert_eq!(e.event, Some(EventKind::MonitorUp));
    }

    #[test]
    fn a_failure_takes_it_down_once_and_a_start_measures_the_duration() {
        let e = monitor(MonitorState::Up).on_ping(PingKind::Fail, 5);
        assert_eq!((e.state, e.event, e.late_at), (MonitorState::Down, Some(EventKind::MonitorDown), None));
        assert_eq!(monitor(MonitorState::Down).on_ping(PingKind::Fail, 5).event, None);
        let mut m = monitor(MonitorState::Up);
        let s = m.on_ping(PingKind::Start, 1_000);
        assert_eq!((s.state, s.started_at, s.duration_ms), (MonitorState::Up, Some(1_000), None));
        m.started_at = s.started_at;
        let done = m.on_ping(PingKind::Success, 3_500);
        assert_eq!((done.duration_ms, done.started_at), (Some(2_500), None));
    }

    #[test]
    fn a_paused_monitor_records_pings_and_changes_nothing() {
        let e = monitor(MonitorState::Paused).on_ping(PingKind::Fail, 5);
        assert_eq!((e.state, e.event, e.down_at), (MonitorState::Paused, None, None));
    }

    #[test]
    fn a_cron_monitor_expects_the_next_fire_time() {
        let mut m = monitor(MonitorState::New);
        m.schedule = ScheduleConfig::Cron { expr: "0 3 * * *".into(), timezone: "UTC".into() };
        // 2026-01-01T00:00:00Z → 03:00 the same day.
        let at = 1_767_225_600_000;
        assert_eq!(m.expected_after(at), Some(at + 3 * 3600 * 1000));
    }
}
