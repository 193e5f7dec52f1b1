//! Fuzzing entry points, shared by the cargo-fuzz targets under `fuzz/` and by the regression
//! test that replays their seed corpus and every crash ever found (`tests/fuzz_regressions.rs`).
//!
//! Each function takes arbitrary bytes and panics only on a bug: a parser that panics, a
//! refusal that is not a 4xx JSON error, a fire time that is not after the instant asked
//! about, a schedule that does not survive its own JSON round trip.

use cronstack_cron::Trigger;

use crate::domain::ScheduleConfig;

/// Instants every parsed trigger is asked about: the extremes, the epoch, 2026, 2100.
const PROBES: [i64; 7] =
    [i64::MIN, -62_135_596_800_001, -1, 0, 1_767_225_600_000, 4_102_444_800_123, i64::MAX];

/// The cron/schedule parser: `expression` or `expression\ntime zone`, then `next_after` on
/// whatever parses.
pub fn cron(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (expr, tz) = text.split_once('\n').unwrap_or((text, ""));
    match Trigger::cron(expr, tz) {
        Ok(trigger) => check_trigger(&trigger, expr),
        Err(e) => assert!(!e.to_string().is_empty(), "{expr:?} in {tz:?}: an empty error message"),
    }
}

/// A schedule `config` as the v1 API takes it: validated, compiled, turned back into JSON.
pub fn schedule_config(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    match ScheduleConfig::from_json(&value) {
        Ok(config) => {
            let again = ScheduleConfig::from_json(&config.to_json());
            assert_eq!(
                again.as_ref(),
                Ok(&config),
                "{value}: the config does not survive its JSON round trip"
            );
            let trigger = config.trigger().expect("a validated config compiles");
            check_trigger(&trigger, &value.to_string());
            let _ = config.cron_text();
        }
        Err(msg) => assert!(!msg.is_empty(), "{value}: an empty error message"),
    }
}

/// Every JSON request body type of both API dialects, through the extractors the handlers
/// use, with each content type they meet; plus what the handlers do next with the parts a
/// body carries (schedule configs, argument lines).
pub fn request_bodies(data: &[u8]) {
    crate::http::fuzz_request_bodies(data);
    // What the handlers do with a parsed body's free-form parts.
    if let Ok(serde_json::Value::Object(body)) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(config) = body.get("config") {
            schedule_config(config.to_string().as_bytes());
        }
        for key in ["args", "job_args"] {
            if let Some(serde_json::Value::String(line)) = body.get(key)
                && let Err(e) = crate::service::split_args(key, line)
            {
                assert!(!e.to_string().is_empty(), "{line:?}: an empty error message");
            }
        }
    }
}

fn check_trigger(trigger: &Trigger, what: &str) {
    assert!(!trigger.describe().is_empty(), "{what}: an empty description");
    for after in PROBES {
        let Some(next) = trigger.next_after(after) else { continue };
        assert!(next > after, "{what}: next_after({after}) = {next} is not after it");
        // Nothing fires in (after, next), so asking from just before `next` gives `next`.
        assert_eq!(trigger.next_after(next - 1), Some(next), "{what}: from just before {next}");
        if matches!(trigger, Trigger::Cron(_)) {
            assert_eq!(next.rem_euclid(1000), 0, "{what}: cron fire times are whole seconds");
        }
        let upcoming = trigger.upcoming(next, 4);
        let mut prev = next;
        for t in upcoming {
            assert!(t > prev, "{what}: fire times {prev} then {t}");
            prev = t;
        }
    }
}
