//! Properties for what `brute_force.rs` does not generate: the `@` macros and `@every`
//! periods. (Field expressions — strictly increasing fire times, every field matched, agreement
//! with a brute-force search across DST — are brute_force.rs's.)

use cronstack_cron::Trigger;
use proptest::prelude::*;

const ZONES: [&str; 5] = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"];

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(500), failure_persistence: None, ..ProptestConfig::default() })]

    /// A macro fires exactly when its five-field expansion does, in any zone.
    #[test]
    fn macros_fire_exactly_as_their_expansions(
        (name, expansion) in prop::sample::select(vec![
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
        ]),
        zone in prop::sample::select(ZONES.to_vec()),
        after in -2_000_000_000_000i64..4_000_000_000_000,
    ) {
        let m = Trigger::cron(name, zone).unwrap();
        let e = Trigger::cron(expansion, zone).unwrap();
        prop_assert_eq!(m.upcoming(after, 5), e.upcoming(after, 5), "{} vs {} in {}", name, expansion, zone);
    }

    /// `@every N` fires on every multiple of N seconds since the epoch and nowhere else,
    /// whatever the zone, and the spellings of one duration agree.
    #[test]
    fn every_fires_on_each_epoch_aligned_multiple(
        seconds in 1i64..200_000,
        zone in prop::sample::select(ZONES.to_vec()),
        after in -4_000_000_000_000i64..4_000_000_000_000,
    ) {
        let t = Trigger::cron(&format!("@every {seconds}s"), zone).unwrap();
        prop_assert_eq!(&t, &Trigger::every(seconds).unwrap());
        let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
        let spelled = format!("@every {h}h{m}m{s}s");
        prop_assert_eq!(&Trigger::cron(&spelled, zone).unwrap(), &t, "{}", spelled);
        let p = seconds * 1000;
        let fires = t.upcoming(after, 6);
        prop_assert_eq!(fires.len(), 6);
        prop_assert_eq!(fires[0], after.div_euclid(p) * p + p);
        for w in fires.windows(2) {
            prop_assert_eq!(w[1] - w[0], p);
        }
    }
}
