//! Table-driven fire-time tests: expression, zone, instant, expected next.
//!
//! Instants are RFC 3339 with the zone's local offset where that helps to
//! read DST rows ("03:00:00-04:00" is 03:00 EDT).
//!
//! 2026 transitions used below:
//! - America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
//! - Europe/London: 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT.
//! - Australia/Lord_Howe (30-minute DST): 2026-04-05 02:00 (+11) -> 01:30 (+10:30);
//!   2026-10-04 02:00 (+10:30) -> 02:30 (+11).
//! - America/Santiago (midnight transitions): 2026-09-06 00:00 (-04) -> 01:00 (-03).
//! - Antarctica/Troll (two-hour shift): 2026-03-29 01:00 (+00) -> 03:00 (+02);
//!   2026-10-25 03:00 (+02) -> 01:00 (+00).
//! - Pacific/Apia skipped 2011-12-30 entirely: 2011-12-29 24:00 (-10) -> 2011-12-31 00:00 (+14).

use chrono::DateTime;
use cronstack_cron::{EpochMs, Trigger};

fn ms(rfc3339: &str) -> EpochMs {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad instant {rfc3339}: {e}"))
        .timestamp_millis()
}

fn show(t: Option<EpochMs>) -> String {
    t.map_or("None".into(), |t| DateTime::from_timestamp_millis(t).unwrap().to_rfc3339())
}

#[rustfmt::skip]
const ROWS: &[(&str, &str, &str, Option<&str>)] = &[
    // --- UTC basics: wildcards, steps, ranges, lists, strictly-after ---
    ("* * * * *",        "",    "2026-01-01T00:00:00Z",     Some("2026-01-01T00:01:00Z")),
    ("* * * * *",        "UTC", "2026-01-01T00:00:30Z",     Some("2026-01-01T00:01:00Z")),
    ("* * * * *",        "UTC", "2026-01-01T00:00:59.999Z", Some("2026-01-01T00:01:00Z")),
    ("*/5 * * * *",      "UTC", "2026-01-01T00:04:59Z",     Some("2026-01-01T00:05:00Z")),
    ("0 * * * *",        "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-01T01:00:00Z")),
    ("*/15 * * * *",     "UTC", "2026-01-01T00:07:00Z",     Some("2026-01-01T00:15:00Z")),
    ("*/15 * * * *",     "UTC", "2026-01-01T23:50:00Z",     Some("2026-01-02T00:00:00Z")),
    ("5-40/5 * * * *",   "UTC", "2026-01-01T00:41:00Z",     Some("2026-01-01T01:05:00Z")),
    ("10/20 * * * *",    "UTC", "2026-01-01T00:31:00Z",     Some("2026-01-01T00:50:00Z")),
    ("0 1/2 * * *",      "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-01T01:00:00Z")), // 1-23/2
    ("0 1/2 * * *",      "UTC", "2026-01-01T23:00:00Z",     Some("2026-01-02T01:00:00Z")),
    ("1,2,5-7 3 * * *",  "UTC", "2026-01-01T03:02:00Z",     Some("2026-01-01T03:05:00Z")),
    ("1,2,5-7 3 * * *",  "UTC", "2026-01-01T03:07:00Z",     Some("2026-01-02T03:01:00Z")),
    ("0 12 * JAN,jul *", "UTC", "2026-02-01T00:00:00Z",     Some("2026-07-01T12:00:00Z")),
    ("0 0 * 2-3 *",      "UTC", "2026-03-31T00:00:00Z",     Some("2027-02-01T00:00:00Z")),
    // --- macros ---
    ("@yearly",          "UTC", "2026-01-01T00:00:00Z",     Some("2027-01-01T00:00:00Z")),
    ("@annually",        "UTC", "2026-06-15T08:00:00Z",     Some("2027-01-01T00:00:00Z")),
    ("@monthly",         "UTC", "2026-01-31T12:00:00Z",     Some("2026-02-01T00:00:00Z")),
    ("@weekly",          "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-04T00:00:00Z")),
    ("@daily",           "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-02T00:00:00Z")),
    ("@midnight",        "UTC", "2026-02-28T23:59:59Z",     Some("2026-03-01T00:00:00Z")),
    ("@hourly",          "UTC", "2026-01-01T10:59:59.999Z", Some("2026-01-01T11:00:00Z")),
    // --- month ends, leap days, impossible dates ---
    ("0 0 29 2 *",       "UTC", "2025-03-01T00:00:00Z",     Some("2028-02-29T00:00:00Z")),
    ("0 0 29 2 *",       "UTC", "2096-03-01T00:00:00Z",     Some("2104-02-29T00:00:00Z")),
    ("0 0 31 * *",       "UTC", "2026-04-01T00:00:00Z",     Some("2026-05-31T00:00:00Z")),
    ("0 0 31 * *",       "UTC", "2026-01-31T00:00:00Z",     Some("2026-03-31T00:00:00Z")),
    ("0 0 30 * *",       "UTC", "2026-01-30T00:00:00Z",     Some("2026-03-30T00:00:00Z")),
    ("0 0 1 1 *",        "UTC", "9999-06-01T00:00:00Z",     None),
    // --- year rollover ---
    ("59 23 31 12 *",    "UTC", "2026-12-31T23:59:00Z",     Some("2027-12-31T23:59:00Z")),
    ("0 0 1 1 *",        "UTC", "2026-12-31T23:59:59Z",     Some("2027-01-01T00:00:00Z")),
    ("* * * * *",        "UTC", "2026-12-31T23:59:00Z",     Some("2027-01-01T00:00:00Z")),
    ("0 0 1 1 *",        "UTC", "1969-06-01T00:00:00Z",     Some("1970-01-01T00:00:00Z")),
    // --- days of week and the Vixie day rule ---
    ("0 9 * * MON-FRI",  "UTC", "2026-01-02T10:00:00Z",     Some("2026-01-05T09:00:00Z")),
    ("0 9 * * 1-5",      "UTC", "2026-01-03T00:00:00Z",     Some("2026-01-05T09:00:00Z")),
    ("0 0 * * 7",        "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-04T00:00:00Z")),
    ("0 0 * * sun",      "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-04T00:00:00Z")),
    ("0 0 * * 0",        "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-04T00:00:00Z")),
    ("0 0 ? * MON",      "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-05T00:00:00Z")),
    ("0 0 1 * ?",        "UTC", "2026-01-02T00:00:00Z",     Some("2026-02-01T00:00:00Z")),
    ("0 0 13 * 5",       "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-02T00:00:00Z")), // OR: a Friday
    ("0 0 13 * 5",       "UTC", "2026-01-09T00:00:00Z",     Some("2026-01-13T00:00:00Z")), // OR: the 13th
    ("0 0 1,15 * 1",     "UTC", "2026-01-05T00:00:00Z",     Some("2026-01-12T00:00:00Z")),
    ("0 0 */2 * 1",      "UTC", "2026-01-05T00:00:00Z",     Some("2026-01-19T00:00:00Z")), // `*/2` => AND
    ("0 0 29 2 1",       "UTC", "2026-02-24T00:00:00Z",     Some("2027-02-01T00:00:00Z")), // OR
    ("0 0 */29 2 MON",   "UTC", "2026-01-01T00:00:00Z",     Some("2027-02-01T00:00:00Z")), // AND: Feb 1 a Monday
    ("0 0 1-31 * 3",     "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-02T00:00:00Z")), // OR with a full dom
    // --- 6 fields (seconds first) ---
    ("30 * * * * *",     "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-01T00:00:30Z")),
    ("*/10 * * * * *",   "UTC", "2026-01-01T00:00:55Z",     Some("2026-01-01T00:01:00Z")),
    ("* * * * * *",      "UTC", "2026-01-01T00:00:00.500Z", Some("2026-01-01T00:00:01Z")),
    ("0 0 0 * * *",      "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-02T00:00:00Z")),
    ("15,45 30 12 * * *","UTC", "2026-01-01T12:30:20Z",     Some("2026-01-01T12:30:45Z")),
    ("59 59 23 31 12 *", "UTC", "2026-06-01T00:00:00Z",     Some("2026-12-31T23:59:59Z")),
    // --- @every: multiples of the period since the epoch ---
    ("@every 90s",       "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-01T00:01:30Z")),
    ("@every 90s",       "",    "2026-01-01T00:00:10Z",     Some("2026-01-01T00:01:30Z")),
    ("@every 1h30m",     "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-01T01:30:00Z")),
    ("@every 7s",        "UTC", "1970-01-01T00:00:00Z",     Some("1970-01-01T00:00:07Z")),
    ("@every 1d",        "Europe/Paris", "2026-01-01T12:00:00Z", Some("2026-01-02T00:00:00Z")),
    // --- fixed-offset zones ---
    ("0 0 * * *",        "Asia/Kolkata",       "2026-01-01T00:00:00Z", Some("2026-01-02T00:00:00+05:30")),
    ("0 0 1 1 *",        "Pacific/Kiritimati", "2026-01-01T00:00:00Z", Some("2027-01-01T00:00:00+14:00")),
    ("0 12 * * *",       "Etc/GMT+5",          "2026-01-01T00:00:00Z", Some("2026-01-01T12:00:00-05:00")),
    ("0 3 * * *",        "Europe/Paris",       "2026-01-01T00:00:00Z", Some("2026-01-01T03:00:00+01:00")),
    ("0 3 * * *",        "Europe/Paris",       "2026-07-01T00:00:00Z", Some("2026-07-01T03:00:00+02:00")),
    // --- America/New_York spring forward (02:00-02:59 skipped on 2026-03-08) ---
    ("30 2 * * *",   "America/New_York", "2026-03-08T01:00:00-05:00", Some("2026-03-08T03:00:00-04:00")),
    ("30 2 * * *",   "America/New_York", "2026-03-07T02:30:00-05:00", Some("2026-03-08T03:00:00-04:00")),
    ("30 2 * * *",   "America/New_York", "2026-03-08T03:00:00-04:00", Some("2026-03-09T02:30:00-04:00")),
    ("0 2 * * *",    "America/New_York", "2026-03-08T00:00:00-05:00", Some("2026-03-08T03:00:00-04:00")),
    ("0,30 2 * * *", "America/New_York", "2026-03-08T03:00:00-04:00", Some("2026-03-09T02:00:00-04:00")),
    ("0 3 * * *",    "America/New_York", "2026-03-07T12:00:00-05:00", Some("2026-03-08T03:00:00-04:00")),
    ("*/30 * * * *", "America/New_York", "2026-03-08T01:30:00-05:00", Some("2026-03-08T03:00:00-04:00")),
    ("30 * * * *",   "America/New_York", "2026-03-08T01:30:00-05:00", Some("2026-03-08T03:30:00-04:00")),
    ("30 2 8 3 *",   "America/New_York", "2026-03-08T03:00:00-04:00", Some("2027-03-08T02:30:00-05:00")),
    // --- America/New_York fall back (01:00-01:59 repeated on 2026-11-01) ---
    ("30 1 * * *",   "America/New_York", "2026-11-01T00:00:00-04:00", Some("2026-11-01T01:30:00-04:00")),
    ("30 1 * * *",   "America/New_York", "2026-11-01T01:30:00-04:00", Some("2026-11-02T01:30:00-05:00")),
    ("30 1 * * *",   "America/New_York", "2026-11-01T01:10:00-05:00", Some("2026-11-02T01:30:00-05:00")),
    ("0 2 * * *",    "America/New_York", "2026-11-01T01:30:00-05:00", Some("2026-11-01T02:00:00-05:00")),
    ("*/30 * * * *", "America/New_York", "2026-11-01T01:30:00-04:00", Some("2026-11-01T01:00:00-05:00")),
    ("*/30 * * * *", "America/New_York", "2026-11-01T01:00:00-05:00", Some("2026-11-01T01:30:00-05:00")),
    ("*/30 * * * *", "America/New_York", "2026-11-01T01:30:00-05:00", Some("2026-11-01T02:00:00-05:00")),
    ("0 * * * *",    "America/New_York", "2026-11-01T00:59:00-04:00", Some("2026-11-01T01:00:00-04:00")),
    ("0 * * * *",    "America/New_York", "2026-11-01T01:00:00-04:00", Some("2026-11-01T01:00:00-05:00")),
    ("*/20 1 * * *", "America/New_York", "2026-11-01T01:50:00-04:00", Some("2026-11-01T01:00:00-05:00")),
    // --- Europe/London (01:00-01:59 skipped 2026-03-29, repeated 2026-10-25) ---
    ("30 1 * * *",   "Europe/London", "2026-03-29T00:00:00+00:00", Some("2026-03-29T02:00:00+01:00")),
    ("0 1 * * *",    "Europe/London", "2026-03-28T01:00:00+00:00", Some("2026-03-29T02:00:00+01:00")),
    ("*/15 * * * *", "Europe/London", "2026-03-29T00:50:00+00:00", Some("2026-03-29T02:00:00+01:00")),
    ("30 1 * * *",   "Europe/London", "2026-10-25T00:00:00+01:00", Some("2026-10-25T01:30:00+01:00")),
    ("30 1 * * *",   "Europe/London", "2026-10-25T01:30:00+01:00", Some("2026-10-26T01:30:00+00:00")),
    ("*/20 * * * *", "Europe/London", "2026-10-25T01:40:00+01:00", Some("2026-10-25T01:00:00+00:00")),
    ("0 9 * * *",    "Europe/London", "2026-06-01T00:00:00Z",      Some("2026-06-01T09:00:00+01:00")),
    ("0 9 * * *",    "Europe/London", "2026-01-10T10:00:00Z",      Some("2026-01-11T09:00:00+00:00")),
    // --- Australia/Lord_Howe, a 30-minute shift ---
    ("0 2 * * *",    "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", Some("2026-10-04T02:30:00+11:00")),
    ("15 2 * * *",   "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", Some("2026-10-04T02:30:00+11:00")),
    ("30 2 * * *",   "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", Some("2026-10-04T02:30:00+11:00")),
    ("*/10 * * * *", "Australia/Lord_Howe", "2026-10-04T01:55:00+10:30", Some("2026-10-04T02:30:00+11:00")),
    ("45 1 * * *",   "Australia/Lord_Howe", "2026-04-05T00:00:00+11:00", Some("2026-04-05T01:45:00+11:00")),
    ("45 1 * * *",   "Australia/Lord_Howe", "2026-04-05T01:45:00+11:00", Some("2026-04-06T01:45:00+10:30")),
    ("*/15 * * * *", "Australia/Lord_Howe", "2026-04-05T01:45:00+11:00", Some("2026-04-05T01:30:00+10:30")),
    ("*/15 * * * *", "Australia/Lord_Howe", "2026-04-05T01:30:00+10:30", Some("2026-04-05T01:45:00+10:30")),
    // --- America/Santiago: the skipped hour is midnight itself ---
    ("0 0 * * *",    "America/Santiago", "2026-09-05T12:00:00-04:00", Some("2026-09-06T01:00:00-03:00")),
    ("0 0 * * *",    "America/Santiago", "2026-09-06T01:00:00-03:00", Some("2026-09-07T00:00:00-03:00")),
    // --- two-hour shifts (Antarctica/Troll) and a skipped day (Pacific/Apia, 2011-12-30) ---
    ("30 1 * * *",   "Antarctica/Troll", "2026-03-29T00:00:00+00:00", Some("2026-03-29T03:00:00+02:00")),
    ("30 2 * * *",   "Antarctica/Troll", "2026-10-25T00:00:00+02:00", Some("2026-10-25T02:30:00+02:00")),
    ("30 2 * * *",   "Antarctica/Troll", "2026-10-25T02:30:00+02:00", Some("2026-10-26T02:30:00+00:00")),
    ("0 * * * *",    "Antarctica/Troll", "2026-10-25T02:00:00+02:00", Some("2026-10-25T01:00:00+00:00")),
    ("0 12 * * *",   "Pacific/Apia",     "2011-12-29T13:00:00-10:00", Some("2011-12-31T00:00:00+14:00")),
    ("0 * * * *",    "Pacific/Apia",     "2011-12-29T23:30:00-10:00", Some("2011-12-31T00:00:00+14:00")),
    ("0 12 30 12 *", "Pacific/Apia",     "2011-12-31T00:00:00+14:00", Some("2012-12-30T12:00:00+14:00")),
    // --- Quartz L: last day of the month, L-n n days before it (month lengths, leap years) ---
    ("0 0 L * *",        "UTC", "2026-01-31T00:00:00Z",     Some("2026-02-28T00:00:00Z")),
    ("0 0 L * *",        "UTC", "2026-04-01T00:00:00Z",     Some("2026-04-30T00:00:00Z")),
    ("0 0 L * *",        "UTC", "2026-12-31T00:00:00Z",     Some("2027-01-31T00:00:00Z")),
    ("0 0 L 2 *",        "UTC", "2023-03-01T00:00:00Z",     Some("2024-02-29T00:00:00Z")),
    ("0 0 L 2 *",        "UTC", "2100-01-01T00:00:00Z",     Some("2100-02-28T00:00:00Z")), // 2100: no leap year
    ("0 0 L 2 *",        "UTC", "2000-01-01T00:00:00Z",     Some("2000-02-29T00:00:00Z")), // 2000: leap year
    ("0 0 l * ?",        "UTC", "2024-02-28T00:00:00Z",     Some("2024-02-29T00:00:00Z")),
    ("0 0 L-1 * *",      "UTC", "2026-02-01T00:00:00Z",     Some("2026-02-27T00:00:00Z")),
    ("0 0 L-3 * *",      "UTC", "2026-03-01T00:00:00Z",     Some("2026-03-28T00:00:00Z")),
    ("0 0 L-30 * *",     "UTC", "2026-01-02T00:00:00Z",     Some("2026-03-01T00:00:00Z")), // February is too short
    ("0 0 L-28 2 *",     "UTC", "2025-01-01T00:00:00Z",     Some("2028-02-01T00:00:00Z")), // only a 29-day February
    ("0 0 L-28 2 *",     "UTC", "2096-03-01T00:00:00Z",     Some("2104-02-01T00:00:00Z")),
    ("0 0 1,L * *",      "UTC", "2026-02-01T00:00:00Z",     Some("2026-02-28T00:00:00Z")),
    // --- LW (last weekday) and nW (nearest weekday, never leaving the month) ---
    ("0 0 LW * *",       "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-30T00:00:00Z")), // the 31st is a Saturday
    ("0 0 LW * *",       "UTC", "2026-05-01T00:00:00Z",     Some("2026-05-29T00:00:00Z")), // the 31st is a Sunday
    ("0 0 LW 2 *",       "UTC", "2100-01-01T00:00:00Z",     Some("2100-02-26T00:00:00Z")),
    ("0 0 LW 2 *",       "UTC", "2000-01-01T00:00:00Z",     Some("2000-02-29T00:00:00Z")),
    ("0 0 LW 2 *",       "UTC", "2024-01-01T00:00:00Z",     Some("2024-02-29T00:00:00Z")),
    ("0 0 15W * *",      "UTC", "2026-02-01T00:00:00Z",     Some("2026-02-16T00:00:00Z")), // Sunday: Monday after
    ("0 0 15W * *",      "UTC", "2026-08-01T00:00:00Z",     Some("2026-08-14T00:00:00Z")), // Saturday: Friday before
    ("0 0 15W * *",      "UTC", "2026-09-01T00:00:00Z",     Some("2026-09-15T00:00:00Z")),
    ("0 0 1W * *",       "UTC", "2025-10-31T00:00:00Z",     Some("2025-11-03T00:00:00Z")), // Saturday the 1st: Monday
    ("0 0 1W * *",       "UTC", "2026-10-31T00:00:00Z",     Some("2026-11-02T00:00:00Z")),
    ("0 0 31W * *",      "UTC", "2026-05-01T00:00:00Z",     Some("2026-05-29T00:00:00Z")), // Sunday the last: Friday
    ("0 0 31W * *",      "UTC", "2026-01-30T00:00:00Z",     Some("2026-03-31T00:00:00Z")), // no 31st in February
    ("0 0 29W 2 *",      "UTC", "2025-01-01T00:00:00Z",     Some("2028-02-29T00:00:00Z")),
    ("0 0 29W 2 *",      "UTC", "2097-01-01T00:00:00Z",     Some("2104-02-29T00:00:00Z")),
    // --- dL (last such weekday) and d#k (k-th such weekday) ---
    ("0 0 * * 5L",       "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-30T00:00:00Z")),
    ("0 0 ? * FRIL",     "UTC", "2026-02-01T00:00:00Z",     Some("2026-02-27T00:00:00Z")),
    ("0 0 * * 7L",       "UTC", "2026-03-01T00:00:00Z",     Some("2026-03-29T00:00:00Z")),
    ("0 0 * * FRI#3",    "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-16T00:00:00Z")),
    ("0 0 * * 5#3",      "UTC", "2026-01-16T00:00:00Z",     Some("2026-02-20T00:00:00Z")),
    ("0 0 * * 5#5",      "UTC", "2026-01-31T00:00:00Z",     Some("2026-05-29T00:00:00Z")), // no fifth Friday until May
    ("0 0 ? 2 SUN#5",    "UTC", "2026-01-01T00:00:00Z",     Some("2032-02-29T00:00:00Z")),
    ("0 0 * * mon#1,5L", "UTC", "2026-01-06T00:00:00Z",     Some("2026-01-30T00:00:00Z")),
    // --- the Vixie day rule with the new forms ---
    ("0 0 1 * 5L",       "UTC", "2026-01-01T00:00:00Z",     Some("2026-01-30T00:00:00Z")), // OR
    ("0 0 1 * 5L",       "UTC", "2026-01-30T00:00:00Z",     Some("2026-02-01T00:00:00Z")),
    ("0 0 L * 5",        "UTC", "2026-01-30T00:00:00Z",     Some("2026-01-31T00:00:00Z")), // OR: the last day
    ("0 0 */2 * 5L",     "UTC", "2026-01-01T00:00:00Z",     Some("2026-02-27T00:00:00Z")), // AND: odd day (Jan 30 is not)
    ("0 0 L * */5",      "UTC", "2026-01-01T00:00:00Z",     Some("2026-05-31T00:00:00Z")), // AND: a Sunday or Friday
    // --- the new forms across DST: Europe/Berlin (02:00-02:59 skipped 2026-03-29, repeated 2026-10-25) ---
    ("30 2 * * 0L",      "Europe/Berlin", "2026-03-28T12:00:00+01:00", Some("2026-03-29T03:00:00+02:00")),
    ("30 2 * * 0L",      "Europe/Berlin", "2026-10-24T12:00:00+02:00", Some("2026-10-25T02:30:00+02:00")),
    ("30 2 * * 0L",      "Europe/Berlin", "2026-10-25T02:30:00+02:00", Some("2026-11-29T02:30:00+01:00")),
    ("30 2 ? 3 SUN#5",   "Europe/Berlin", "2026-01-01T00:00:00+01:00", Some("2026-03-29T03:00:00+02:00")),
    ("*/30 2 ? 10 0L",   "Europe/Berlin", "2026-10-25T02:30:00+02:00", Some("2026-10-25T02:00:00+01:00")),
    ("0 3 L-6 3 *",      "Europe/Berlin", "2026-03-01T00:00:00+01:00", Some("2026-03-25T03:00:00+01:00")),
    // --- …and America/New_York (2026-03-08 spring forward, 2026-11-01 fall back) ---
    ("30 2 * 3 0#2",     "America/New_York", "2026-03-01T00:00:00-05:00", Some("2026-03-08T03:00:00-04:00")),
    ("30 2 8W 3 *",      "America/New_York", "2026-03-01T00:00:00-05:00", Some("2026-03-09T02:30:00-04:00")), // Sunday: Monday
    ("30 1 ? 11 SUN#1",  "America/New_York", "2026-10-01T00:00:00-04:00", Some("2026-11-01T01:30:00-04:00")),
    ("30 1 ? 11 SUN#1",  "America/New_York", "2026-11-01T01:30:00-04:00", Some("2027-11-07T01:30:00-04:00")),
    ("0 0 LW * *",       "America/New_York", "2026-10-30T00:00:00-04:00", Some("2026-11-30T00:00:00-05:00")),
    // --- 6 fields in a zone ---
    ("30 30 2 * * *", "America/New_York", "2026-03-08T01:59:59-05:00", Some("2026-03-08T03:00:00-04:00")),
    ("*/20 59 1 * * *", "America/New_York", "2026-11-01T01:59:40-04:00", Some("2026-11-01T01:59:00-05:00")),
];

#[test]
fn table() {
    assert!(ROWS.len() >= 60);
    let mut failures = Vec::new();
    for &(expr, tz, after, expected) in ROWS {
        let trigger = Trigger::cron(expr, tz).unwrap_or_else(|e| panic!("{expr:?} in {tz:?}: {e}"));
        let after = ms(after);
        let got = trigger.next_after(after);
        let want = expected.map(ms);
        if got != want {
            failures.push(format!(
                "{expr:?} in {tz:?} after {}: got {}, want {}",
                show(Some(after)),
                show(got),
                show(want)
            ));
            continue;
        }
        if let Some(t) = got {
            // Nothing fires in (after, t), so asking from just before t gives t.
            assert_eq!(trigger.next_after(t - 1), Some(t), "{expr:?} {tz:?}");
            assert!(trigger.next_after(t).is_none_or(|n| n > t));
        }
    }
    assert!(failures.is_empty(), "{} failing rows:\n{}", failures.len(), failures.join("\n"));
}

/// A job's uid as cronstack makes them, and the values its key picks (from the formula in the
/// `hash` module's doc, computed independently): minute `H` 8, `H(30-59)` as the second `H` 45,
/// hour `H` 12, `H(9-17)` 15, day-of-month `H` 27, month `H` 10, day-of-week `H` 2 (Tuesday),
/// second `H` 1; `H/15` offset 8, hour `H/6` offset 0.
const UID: &str = "4be1c3c0a0a34b9bb9e0a6b1c2d3e4f5";

#[rustfmt::skip]
const HASHED_ROWS: &[(&str, &str, &str, &str)] = &[
    ("H 3 * * *",                "UTC", "2026-01-01T00:00:00Z", "2026-01-01T03:08:00Z"),
    ("H H * * *",                "UTC", "2026-01-01T12:08:00Z", "2026-01-02T12:08:00Z"),
    ("H/15 * * * *",             "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:08:00Z"),
    ("H/15 * * * *",             "UTC", "2026-01-01T00:08:00Z", "2026-01-01T00:23:00Z"),
    ("H(0-29),H(30-59) * * * *", "UTC", "2026-01-01T00:10:00Z", "2026-01-01T00:45:00Z"),
    ("H H(9-17) * * 1-5",        "UTC", "2026-01-02T16:00:00Z", "2026-01-05T15:08:00Z"),
    ("0 H/6 * * *",              "UTC", "2026-01-01T01:00:00Z", "2026-01-01T06:00:00Z"),
    ("0 0 H * *",                "UTC", "2026-01-01T00:00:00Z", "2026-01-27T00:00:00Z"),
    ("0 0 1 H *",                "UTC", "2026-01-01T00:00:00Z", "2026-10-01T00:00:00Z"),
    ("0 0 * * H",                "UTC", "2026-01-01T00:00:00Z", "2026-01-06T00:00:00Z"),
    ("H * * * * *",              "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"),
    ("H 9 L * *",                "UTC", "2026-02-01T00:00:00Z", "2026-02-28T09:08:00Z"),
    // `H` gives fixed times: through a skipped hour once right after it, through a repeated one once.
    ("H 2 * * *",  "America/New_York", "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"),
    ("H 1 * * *",  "America/New_York", "2026-11-01T01:08:00-04:00", "2026-11-02T01:08:00-05:00"),
    ("H 2 * * *",  "Europe/Berlin",    "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00"),
    ("H 2 * * *",  "Europe/Berlin",    "2026-10-25T00:00:00+02:00", "2026-10-25T02:08:00+02:00"),
    ("H 2 * * *",  "Europe/Berlin",    "2026-10-25T02:08:00+02:00", "2026-10-26T02:08:00+01:00"),
];

#[test]
fn hashed_table() {
    let key = cronstack_cron::hash_key(UID);
    let mut failures = Vec::new();
    for &(expr, tz, after, want) in HASHED_ROWS {
        let trigger = Trigger::cron_with_hash_key(expr, tz, key).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        let got = trigger.next_after(ms(after));
        if got != Some(ms(want)) {
            failures.push(format!("{expr:?} in {tz:?} after {after}: got {}, want {want}", show(got)));
        }
    }
    assert!(failures.is_empty(), "{} failing rows:\n{}", failures.len(), failures.join("\n"));
    // Another job gets other values: minute 0, hour 20.
    let other =
        Trigger::cron_with_hash_key("H H * * *", "UTC", cronstack_cron::hash_key("nightly-backup")).unwrap();
    assert_eq!(show(other.next_after(ms("2026-01-01T00:00:00Z"))), "2026-01-01T20:00:00+00:00");
    assert_eq!(other.describe(), "every day at 20:00 UTC");
    let key = cronstack_cron::hash_key(UID);
    let describe = |expr| Trigger::cron_with_hash_key(expr, "UTC", key).unwrap().describe();
    assert_eq!(describe("H H(9-17) * * 1-5"), "at 15:08 on Monday through Friday UTC");
    assert_eq!(describe("H/15 * * * *"), "every hour at minutes 8, 23, 38 and 53 UTC");
}

/// Spread: 1000 jobs with `H H * * *` land on many different minutes of the day.
#[test]
fn hash_spreads_jobs() {
    let mut slots = std::collections::HashSet::new();
    for i in 0..1000 {
        let key = cronstack_cron::hash_key(&format!("job-{i}"));
        let t = Trigger::cron_with_hash_key("H H * * *", "UTC", key).unwrap();
        slots.insert(t.next_after(0).unwrap());
    }
    // 1440 minutes: 1000 uniform picks hit about 720 distinct ones.
    assert!(slots.len() > 600, "{}", slots.len());
}

#[test]
fn upcoming_through_fall_back_keeps_real_cadence() {
    let t = Trigger::cron("*/30 * * * *", "America/New_York").unwrap();
    let got = t.upcoming(ms("2026-11-01T00:15:00-04:00"), 6);
    let want: Vec<_> = [
        "2026-11-01T00:30:00-04:00",
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(got, want);
}

#[test]
fn upcoming_through_spring_forward_fires_skipped_time_once() {
    let t = Trigger::cron("0,30 2 * * *", "America/New_York").unwrap();
    let got = t.upcoming(ms("2026-03-07T00:00:00-05:00"), 4);
    let want: Vec<_> = [
        "2026-03-07T02:00:00-05:00",
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:00:00-04:00",
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(got, want);
}

/// The DST rule in words (crate doc): every fire time from 00:00 to 04:00 local on the
/// transition nights (the Berlin and New York ones of 2026).
#[test]
fn the_dst_rule_night_by_night() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // A field starting with `*`: real-time cadence, through both passes of the repeated hour…
        (
            "*/30 2 * * *",
            "Europe/Berlin",
            "2026-10-25T00:00:00+02:00",
            &[
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T02:30:00+01:00",
            ],
        ),
        // …and nothing in the skipped one.
        ("*/30 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00+01:00", &[]),
        // Fixed times: a repeated time fires once, a skipped one once right after the gap.
        (
            "0,30 2 * * *",
            "Europe/Berlin",
            "2026-10-25T00:00:00+02:00",
            &["2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00"],
        ),
        ("0,30 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00+01:00", &["2026-03-29T03:00:00+02:00"]),
        // A step without `*` is fixed times.
        (
            "0-59/15 1-3 * * *",
            "America/New_York",
            "2026-11-01T00:00:00-04:00",
            &[
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:15:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:45:00-04:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:15:00-05:00",
                "2026-11-01T02:30:00-05:00",
                "2026-11-01T02:45:00-05:00",
                "2026-11-01T03:00:00-05:00",
                "2026-11-01T03:15:00-05:00",
                "2026-11-01T03:30:00-05:00",
                "2026-11-01T03:45:00-05:00",
            ],
        ),
        (
            "0-59/15 1-3 * * *",
            "America/New_York",
            "2026-03-08T00:00:00-05:00",
            &[
                "2026-03-08T01:00:00-05:00",
                "2026-03-08T01:15:00-05:00",
                "2026-03-08T01:30:00-05:00",
                "2026-03-08T01:45:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:15:00-04:00",
                "2026-03-08T03:30:00-04:00",
                "2026-03-08T03:45:00-04:00",
            ],
        ),
        // The same times as a cadence (`*/15`): both passes of 01:00-01:59, and the gap skipped.
        (
            "*/15 1-3 * * *",
            "America/New_York",
            "2026-11-01T00:00:00-04:00",
            &[
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:15:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:45:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:15:00-05:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-01T01:45:00-05:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:15:00-05:00",
                "2026-11-01T02:30:00-05:00",
                "2026-11-01T02:45:00-05:00",
                "2026-11-01T03:00:00-05:00",
                "2026-11-01T03:15:00-05:00",
                "2026-11-01T03:30:00-05:00",
                "2026-11-01T03:45:00-05:00",
            ],
        ),
        (
            "*/15 1-3 * * *",
            "America/New_York",
            "2026-03-08T00:00:00-05:00",
            &[
                "2026-03-08T01:00:00-05:00",
                "2026-03-08T01:15:00-05:00",
                "2026-03-08T01:30:00-05:00",
                "2026-03-08T01:45:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:15:00-04:00",
                "2026-03-08T03:30:00-04:00",
                "2026-03-08T03:45:00-04:00",
            ],
        ),
    ];
    for &(expr, zone, midnight, want) in cases {
        let t = Trigger::cron(expr, zone).unwrap();
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        let from = ms(midnight) - 1;
        // Until 04:00 local that night (a bound in wall clock: the night gains or loses an hour).
        let local = |f: EpochMs| DateTime::from_timestamp_millis(f).unwrap().with_timezone(&tz).to_rfc3339();
        let before_four = |f: &EpochMs| local(*f) < format!("{}T04", &midnight[..10]);
        let got: Vec<String> = t.upcoming(from, 50).into_iter().take_while(before_four).map(local).collect();
        assert_eq!(got, want, "{expr} in {zone} from {midnight}");
    }
}

#[test]
fn expressions_that_never_fire_are_refused() {
    let cases = [
        ("0 0 31 2 *", "February has no day 31"),
        ("0 0 30 2 *", "February has no day 30"),
        ("0 0 30,31 2 *", "February has no day 30 or 31"),
        ("0 0 31 4,6,9,11 *", "April, June, September and November have no day 31"),
        ("0 0 0 31 FEB,apr ?", "February and April have no day 31"),
        ("0 0 30W 2 *", "February has no day 30"),
        ("0 0 30W,31w 2 ?", "February has no day 30 or 31"),
        ("0 0 L-29 2 *", "February has no day L-29"),
        ("0 0 31,L-30 2,4 *", "February and April have no day 31 or L-30"),
        ("0 0 L-30 2,4,6,9,11 *", "February, April, June, September and November have no day L-30"),
        (
            "0 0 */8 * 5#5",
            "no day in January, February, March, April, May, June, July, August, September, October, November and December matches both the day-of-month and the day-of-week field (both must when either starts with * or ?)",
        ),
        (
            "0 0 LW,15W * */6",
            "no day in January, February, March, April, May, June, July, August, September, October, November and December matches both the day-of-month and the day-of-week field (both must when either starts with * or ?)",
        ),
        (
            "0 0 */29 2 FRI#5",
            "no day in February matches both the day-of-month and the day-of-week field (both must when either starts with * or ?)",
        ),
    ];
    for (expr, reason) in cases {
        for tz in ["UTC", "Europe/Paris"] {
            let err = Trigger::cron(expr, tz).unwrap_err();
            assert_eq!(err.to_string(), format!("this expression never fires: {reason}"), "{expr}");
        }
    }
    // A day-of-week restriction never makes an expression impossible: with a day-of-month too
    // it is OR (any Monday in February), with `*` every date falls on every weekday some year.
    // `L`, `LW` and the weekday forms exist in every month (a fifth Sunday in February: 2032).
    for expr in [
        "0 0 30 2 MON",
        "0 0 29 2 *",
        "0 0 */30 2 1",
        "0 0 * 2 5",
        "0 0 L 2 *",
        "0 0 LW 2 ?",
        "0 0 29W 2 *",
        "0 0 L-28 2 *",
        "0 0 ? 2 0#5",
        "0 0 * 2 5L",
        "0 0 30 2 5#5",
        "0 0 */29 1 FRI#5",
    ] {
        assert!(Trigger::cron(expr, "UTC").unwrap().next_after(0).is_some(), "{expr}");
    }
}

#[test]
fn once_and_every() {
    let once = Trigger::once(1_000);
    assert_eq!(once.next_after(999), Some(1_000));
    assert_eq!(once.next_after(1_000), None);
    assert_eq!(once.upcoming(0, 5), vec![1_000]);

    let every = Trigger::every(60).unwrap();
    assert_eq!(every, Trigger::Every { period_ms: 60_000 });
    assert_eq!(every.next_after(0), Some(60_000));
    assert_eq!(every.next_after(59_999), Some(60_000));
    assert_eq!(every.next_after(-1), Some(0));
    assert_eq!(every.next_after(-60_000), Some(0));
    assert_eq!(every.upcoming(1, 3), vec![60_000, 120_000, 180_000]);
    assert_eq!(every.next_after(i64::MAX - 10), None);
    assert!(Trigger::every(0).is_err());
    assert!(Trigger::every(-5).is_err());
    assert!(Trigger::every(i64::MAX).is_err());
    // Hand-built nonsense must not panic either.
    assert_eq!(Trigger::Every { period_ms: 0 }.next_after(0), None);
    assert_eq!(Trigger::Every { period_ms: -3 }.next_after(0), None);
}

#[test]
fn extreme_instants_do_not_panic() {
    for (expr, tz) in [
        ("* * * * *", "UTC"),
        ("0 0 29 2 *", "America/New_York"),
        ("*/30 * * * *", "Australia/Lord_Howe"),
        ("* * * * * *", "Pacific/Kiritimati"),
        ("0 0 29 2 1", "Europe/London"),
    ] {
        let t = Trigger::cron(expr, tz).unwrap();
        for after in [i64::MIN, i64::MIN + 1, -62_135_596_800_001, -1, 0, 253_402_300_799_000, i64::MAX] {
            if let Some(n) = t.next_after(after) {
                assert!(n > after);
            }
        }
    }
    let utc = Trigger::cron("0 0 1 1 *", "").unwrap();
    assert_eq!(utc.next_after(i64::MIN), Some(ms("0002-01-01T00:00:00Z")));
    assert_eq!(utc.next_after(i64::MAX), None);
}
