//! Heartbeat monitors: CRUD for their owners, and pings from anywhere that knows a monitor's
//! uuid (see `crate::domain::monitor` for the states).

use serde_json::Value;

use super::owned::{Owned, owned};
use super::{
    Caller, Entity, PageRequest, Service, ServiceError, ServiceResult, on_unique, paged, validate_name,
};
use crate::domain::monitor::{
    DEFAULT_KEEP_PINGS, MAX_GRACE_S, MAX_KEEP_PINGS, Monitor, MonitorState, PING_BODY_MAX, Ping, PingKind,
};
use crate::domain::{ScheduleConfig, Scope, now_ms};
use crate::store::{MonitorFields, NewPing, Page, Unique};

/// A monitor's grace unless given: an hour.
pub const DEFAULT_GRACE_S: i64 = 3600;

/// Monitor fields from a request; `None` leaves a field unchanged (or its default on create).
#[derive(Debug, Clone, Default)]
pub struct MonitorPatch {
    pub name: Option<String>,
    /// `{"cron", "timezone"}` or `{"period"}`.
    pub schedule: Option<Value>,
    pub grace_s: Option<i64>,
    pub keep_pings: Option<i64>,
    pub paused: Option<bool>,
}

/// A ping as it arrived over HTTP.
#[derive(Debug, Clone)]
pub struct PingRequest {
    pub kind: PingKind,
    pub exit_code: Option<i64>,
    pub method: String,
    pub user_agent: Option<String>,
    pub body: Vec<u8>,
}

/// A random version-4 UUID: the secret of a ping URL.
fn new_ping_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// A schedule for a monitor: a cron expression (with its zone) or a period, as schedules
/// validate them, the messages naming `schedule`.
fn monitor_schedule(value: &Value) -> ServiceResult<ScheduleConfig> {
    let rename = |m: String| m.replacen("config", "schedule", 1);
    match ScheduleConfig::from_request(value, now_ms())
        .map_err(|m| ServiceError::InvalidSchedule(rename(m)))?
    {
        ScheduleConfig::Timestamp { .. } | ScheduleConfig::Manual => Err(ServiceError::InvalidSchedule(
            "schedule takes {\"cron\": …, \"timezone\": …} or {\"period\": seconds}, not a timestamp or manual"
                .into(),
        )),
        config => Ok(config),
    }
}

fn check_range(field: &str, value: i64, min: i64, max: i64) -> ServiceResult<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ServiceError::invalid(field, format!("must be between {min} and {max}, got {value}")))
    }
}

/// The body kept as a ping's log: its last [`PING_BODY_MAX`] bytes (whole characters) as
/// text, each NUL and invalid UTF-8 sequence as U+FFFD; `true` when cut.
fn ping_body(raw: &[u8]) -> (String, bool) {
    let text = String::from_utf8_lossy(raw).replace('\0', "\u{FFFD}");
    if text.len() <= PING_BODY_MAX {
        return (text, false);
    }
    let mut cut = text.len() - PING_BODY_MAX;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    (text[cut..].to_string(), true)
}

impl Service {
    pub async fn create_monitor(&self, caller: &Caller, patch: MonitorPatch) -> ServiceResult<Monitor> {
        caller.require(Scope::Jobs)?;
        let name = patch.name.clone().ok_or_else(|| ServiceError::invalid("name", "is required"))?;
        let schedule = patch.schedule.as_ref().ok_or_else(|| {
            ServiceError::invalid(
                "schedule",
                "is required: {\"cron\": …, \"timezone\": …} or {\"period\": seconds}",
            )
        })?;
        let mut fields = MonitorFields {
            name,
            schedule: monitor_schedule(schedule)?,
            grace_s: DEFAULT_GRACE_S,
            keep_pings: DEFAULT_KEEP_PINGS,
        };
        apply_patch(&patch, &mut fields)?;
        let now = now_ms();
        let id = on_unique(
            self.store.insert_monitor(caller.user_id, &new_ping_uuid(), &fields, now).await,
            &[Unique::MonitorName],
            ServiceError::NameTaken(Entity::Monitor),
        )?;
        if patch.paused == Some(true) {
            self.store.set_monitor_state(id, MonitorState::Paused, now).await?;
        }
        self.monitor(caller, id).await.map(Owned::into_inner)
    }

    /// Changes a monitor; `paused` alone needs only the `public` scope (like pausing a job).
    pub async fn update_monitor(
        &self,
        caller: &Caller,
        id: i64,
        patch: MonitorPatch,
    ) -> ServiceResult<Monitor> {
        let changes_fields = patch.name.is_some()
            || patch.schedule.is_some()
            || patch.grace_s.is_some()
            || patch.keep_pings.is_some();
        caller.require(if changes_fields { Scope::Jobs } else { Scope::Public })?;
        let current = self.monitor(caller, id).await?;
        let now = now_ms();
        if changes_fields {
            let mut fields = MonitorFields {
                name: patch.name.clone().unwrap_or(current.name.clone()),
                schedule: match &patch.schedule {
                    Some(s) => monitor_schedule(s)?,
                    None => current.schedule.clone(),
                },
                grace_s: current.grace_s,
                keep_pings: current.keep_pings,
            };
            apply_patch(&patch, &mut fields)?;
            on_unique(
                self.store.update_monitor(id, &fields, now).await,
                &[Unique::MonitorName],
                ServiceError::NameTaken(Entity::Monitor),
            )?;
        }
        match (patch.paused, current.state) {
            (Some(true), state) if state != MonitorState::Paused => {
                self.store.set_monitor_state(id, MonitorState::Paused, now).await?;
            }
            (Some(false), MonitorState::Paused) => {
                self.store.set_monitor_state(id, MonitorState::New, now).await?;
            }
            _ => {}
        }
        self.monitor(caller, id).await.map(Owned::into_inner)
    }

    pub async fn delete_monitor(&self, caller: &Caller, id: i64) -> ServiceResult<()> {
        caller.require(Scope::Jobs)?;
        self.monitor(caller, id).await?;
        self.store.delete_monitor(id).await?;
        Ok(())
    }

    /// The caller's monitor by id; someone else's is "not found".
    pub async fn monitor(&self, caller: &Caller, id: i64) -> ServiceResult<Owned<Monitor>> {
        owned(caller, self.store.monitor(id).await?)
    }

    pub async fn list_monitors(&self, caller: &Caller, req: PageRequest) -> ServiceResult<Page<Monitor>> {
        paged(req, |limit, offset| self.store.list_monitors(caller.user_id, limit, offset)).await
    }

    /// A monitor's pings, newest first.
    pub async fn monitor_pings(&self, monitor: &Monitor, req: PageRequest) -> ServiceResult<Page<Ping>> {
        paged(req, |limit, offset| self.store.list_pings(monitor.id, limit, offset)).await
    }

    /// Records a ping to the monitor with this uuid (no other credential) and applies it.
    pub async fn ping(&self, uuid: &str, req: PingRequest) -> ServiceResult<(Monitor, Ping)> {
        let (body, body_truncated) = ping_body(&req.body);
        let ping = NewPing {
            kind: req.kind,
            exit_code: req.exit_code,
            method: req.method,
            user_agent: req.user_agent.map(|ua| ua.chars().take(200).collect()),
            body,
            body_truncated,
        };
        let now = now_ms();
        let public_url = self.settings.public_url.as_deref();
        let render = |channel, kind, m: &Monitor, p: Option<&Ping>| {
            crate::webhooks::monitor_event_body(channel, kind, m, p, public_url)
        };
        self.store
            .record_ping(uuid, &ping, now, |m| m.on_ping(ping.kind, now), &render)
            .await?
            .ok_or(ServiceError::NotFound(Entity::Monitor))
    }
}

/// Validates the patch's grace and history limit (and name) onto `fields`.
fn apply_patch(patch: &MonitorPatch, fields: &mut MonitorFields) -> ServiceResult<()> {
    validate_name("name", &fields.name)?;
    if let Some(g) = patch.grace_s {
        check_range("grace_s", g, 1, MAX_GRACE_S)?;
        fields.grace_s = g;
    }
    if let Some(k) = patch.keep_pings {
        check_range("keep_pings", k, 1, MAX_KEEP_PINGS)?;
        fields.keep_pings = k;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_body_keeps_its_tail_in_whole_characters() {
        assert_eq!(ping_body(b"ok\0"), ("ok\u{FFFD}".to_string(), false));
        let long = format!("é{}", "x".repeat(PING_BODY_MAX));
        let (kept, cut) = ping_body(long.as_bytes());
        assert!(cut && kept.len() <= PING_BODY_MAX && kept.ends_with('x'));
    }

    #[test]
    fn uuids_look_like_version_4() {
        let u = new_ping_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
