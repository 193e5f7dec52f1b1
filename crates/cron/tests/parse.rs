//! Parsing: accepted forms, accessors and the exact user-facing messages.

use cronstack_cron::{Field, ParseError, Trigger};

fn err(expr: &str, tz: &str) -> String {
    match Trigger::cron(expr, tz) {
        Ok(t) => panic!("{expr:?} in {tz:?} parsed as {t:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn error_messages() {
    let cases = [
        ("61 * * * *", "", "minute field: value 61 out of range 0-59"),
        ("* 24 * * *", "", "hour field: value 24 out of range 0-23"),
        ("* * 0 * *", "", "day-of-month field: value 0 out of range 1-31"),
        ("* * 32 * *", "", "day-of-month field: value 32 out of range 1-31"),
        ("* * * 13 *", "", "month field: value 13 out of range 1-12"),
        ("* * * * 8", "", "day-of-week field: value 8 out of range 0-7"),
        ("60 * * * * *", "", "second field: value 60 out of range 0-59"),
        (
            "* * *",
            "",
            "expected 5 or 6 fields, got 3 (minute hour day-of-month month day-of-week, or a seconds field before them; there is no year field)",
        ),
        (
            "* * * * * * *",
            "",
            "expected 5 or 6 fields, got 7 (minute hour day-of-month month day-of-week, or a seconds field before them; there is no year field)",
        ),
        (
            "0 3 * * * 2026",
            "",
            "day-of-week field: value 2026 out of range 0-7 (in a 6-field expression the first field is seconds: second minute hour day-of-month month day-of-week; there is no year field)",
        ),
        ("", "", "empty expression: expected 5 or 6 fields or a macro such as @daily"),
        ("   ", "", "empty expression: expected 5 or 6 fields or a macro such as @daily"),
        ("*/0 * * * *", "", "minute field: invalid step \"0\" (must be a number from 1 to 59)"),
        ("*/x * * * *", "", "minute field: invalid step \"x\" (must be a number from 1 to 59)"),
        ("1,,2 * * * *", "", "minute field: empty list item"),
        ("1, * * * *", "", "minute field: empty list item"),
        ("* 5-1 * * *", "", "hour field: range 5-1 goes backwards"),
        ("* * * FOO *", "", "month field: invalid value \"FOO\""),
        ("* * * * FRIDAY", "", "day-of-week field: invalid value \"FRIDAY\""),
        ("? * * * *", "", "minute field: invalid value \"?\""),
        ("* L * * *", "", "hour field: invalid value \"L\""),
        (
            "* * * * 5#6",
            "",
            "day-of-week field: invalid \"5#6\": the number after # is the week of the month, 1 to 5",
        ),
        (
            "* * * * L",
            "",
            "day-of-week field: invalid \"L\": L follows a weekday in this field, e.g. 5L or FRIL (the last Friday)",
        ),
        (
            "* * L-31 * *",
            "",
            "day-of-month field: invalid \"L-31\": L-n takes a number of days n from 0 to 30, e.g. L-3",
        ),
        ("* * 15W-20 * *", "", "day-of-month field: invalid value \"15W\""),
        (
            "* * 3#1 * *",
            "",
            "day-of-month field: invalid \"3#1\": expected L, L-n, LW or nW in the day-of-month field (# is for day-of-week)",
        ),
        ("* * * * 2W", "", "day-of-week field: invalid \"2W\": W is for the day-of-month field"),
        ("* * ?/2 * *", "", "day-of-month field: invalid value \"?/2\""),
        ("H * * * *", "", "minute field: H needs a hash key (the job's uid) to choose its value"),
        ("0 0 * * H", "", "day-of-week field: H needs a hash key (the job's uid) to choose its value"),
        (
            "H(0-9)/20 * * * *",
            "",
            "minute field: invalid \"H(0-9)/20\": the step 20 is longer than the range 0-9",
        ),
        ("H(5) * * * *", "", "minute field: invalid \"H(5)\": expected H, H(a-b), H/n or H(a-b)/n"),
        (
            "@reboot",
            "",
            "unknown macro \"@reboot\" (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every)",
        ),
        ("@daily 5", "", "@daily takes no arguments"),
        ("@every", "", "@every: invalid duration \"\": missing duration, e.g. 90s, 5m or 1h30m"),
        ("@every 90x", "", "@every: invalid duration \"90x\": unknown unit \"x\" (use s, m, h or d)"),
        ("@every 500ms", "", "period must be at least 1 second, got 500ms"),
        ("@every 1.5s", "", "period must be a whole number of seconds, got 1.5s"),
        ("@every 1h 30m", "", "@every: invalid duration \"1h 30m\": no spaces allowed, e.g. 1h30m"),
        ("0 0 * * *", "Mars/Base", "unknown time zone \"Mars/Base\""),
        ("@every 90s", "Mars/Base", "unknown time zone \"Mars/Base\""),
        ("0 0 * * *", "europe/paris", "unknown time zone \"europe/paris\": did you mean Europe/Paris?"),
        ("0 0 * * *", "Berlin", "unknown time zone \"Berlin\": did you mean Europe/Berlin?"),
        ("0 0 * * *", "new york", "unknown time zone \"new york\": did you mean America/New_York?"),
        ("0 0 * * *", "Europe/Berln", "unknown time zone \"Europe/Berln\": did you mean Europe/Berlin?"),
    ];
    for (expr, tz, want) in cases {
        assert_eq!(err(expr, tz), want, "{expr:?} in {tz:?}");
    }
}

#[test]
fn structured_errors() {
    assert_eq!(
        Trigger::cron("61 * * * *", ""),
        Err(ParseError::OutOfRange { field: Field::Minute, value: "61".into(), min: 0, max: 59 })
    );
    assert_eq!(Trigger::cron("* *", ""), Err(ParseError::FieldCount { got: 2 }));
}

#[test]
fn accepted_forms() {
    for expr in [
        "* * * * *",
        "0 0 * * *",
        "  0   0 *\t* *  ",
        "*/15 * * * *",
        "5-40/5 * * * *",
        "10/5 * * * *",
        "1,2,5-7 * * * *",
        "0 0 * jan-DEC sun-sat",
        "0 0 * * 0-7",
        "0 0 * * 7",
        "0 0 ? * MON",
        "0 0 1 * ?",
        "0 0 * * MON-FRI/2",
        "0 0 0 * * *",
        "0 0 L * *",
        "0 0 l-30 * ?",
        "0 0 LW,1W,15w,31W * *",
        "0 0 1,L,L-2 * *",
        "0 0 ? * 5L,FRIL,sunl,7L",
        "0 0 ? * 5#3,FRI#3,mon#1,7#5",
        "0 0 * * 1-5,5L",
        "0 0 L * 5L",
        "@yearly",
        "@ANNUALLY",
        "@monthly",
        "@weekly",
        "@Daily",
        "@midnight",
        "@hourly",
        "@every 1h30m",
    ] {
        Trigger::cron(expr, "").unwrap_or_else(|e| panic!("{expr:?}: {e}"));
    }
}

/// `H` needs a key; with one, whether an expression parses never depends on it.
#[test]
fn hash_keys() {
    let with = |expr: &str, key| Trigger::cron_with_hash_key(expr, "UTC", key);
    assert_eq!(Trigger::cron("H H * * *", ""), Err(ParseError::HashKeyRequired { field: Field::Minute }));
    // Without H the key is ignored.
    assert_eq!(with("0 3 * * *", 1).unwrap(), Trigger::cron("0 3 * * *", "UTC").unwrap());
    assert_eq!(with("@daily", 1).unwrap(), Trigger::cron("@daily", "UTC").unwrap());
    let Trigger::Cron(schedule) = with("H 3 * * *", 42).unwrap() else { panic!("expected a cron trigger") };
    assert_eq!(schedule.hash_key(), Some(42));
    let Trigger::Cron(schedule) = with("0 3 * * *", 42).unwrap() else { panic!("expected a cron trigger") };
    assert_eq!(schedule.hash_key(), None);
    assert_eq!(cronstack_cron::hash_key("job-1"), cronstack_cron::hash_key("job-1"));
    assert_ne!(cronstack_cron::hash_key("job-1"), cronstack_cron::hash_key("job-2"));
    for expr in [
        "H H H H H",
        "H(0-29),H(30-59) H/4 H(1-14),H(15-28) H(1-6)/2 H(MON-FRI)",
        "H * L * FRI#3,H",
        "0 0 */29 H(1-2) H,5#5",
    ] {
        let results: Vec<bool> = (0..200).map(|key| with(expr, key).is_ok()).collect();
        assert!(results.iter().all(|&ok| ok == results[0]), "{expr}: {results:?}");
    }
}

/// Refused for every key when some key's choice never fires.
#[test]
fn hashed_expressions_that_never_fire_for_some_job() {
    let reason = |expr: &str| {
        (0..50)
            .map(|key| Trigger::cron_with_hash_key(expr, "UTC", key).unwrap_err().to_string())
            .reduce(|a, b| if a == b { a } else { panic!("{expr}: {a} / {b}") })
            .unwrap()
    };
    assert_eq!(
        reason("0 0 H(28-31) 2 *"),
        "this expression never fires: February has no day 31 (for the values H picks for some jobs)"
    );
    assert_eq!(
        reason("0 0 31 H *"),
        "this expression never fires: February has no day 31 (for the values H picks for some jobs)"
    );
    assert_eq!(
        reason("0 0 */29 H(1-2) 5#5"),
        "this expression never fires: no day in February matches both the day-of-month and the day-of-week field (both must when either starts with * or ?) (for the values H picks for some jobs)"
    );
    // `LW` and `nW` are never on a weekend: a choice of weekend days never fires.
    assert_eq!(
        reason("* * LW * */6,H(0-3)"),
        "this expression never fires: no day in January, February, March, April, May, June, July, August, September, October, November and December matches both the day-of-month and the day-of-week field (both must when either starts with * or ?) (for the values H picks for some jobs)"
    );
    assert!(Trigger::cron_with_hash_key("* * LW * */6,H(1-5)", "UTC", 7).is_ok());
    assert_eq!(
        reason("0 0 */2 H,H,H,H,H,H 5#5"),
        "too many H choices in the day-of-month, month and day-of-week fields to check that the expression fires for every key (at most 50000 combinations)"
    );
    // H in day-of-month picks 1-28, which every month has; a restricted day-of-week is OR.
    for expr in ["0 0 H 2 *", "0 0 H(28-31) 2 5", "0 0 H(29-31) * *", "0 0 H H *", "0 0 H(1-31) 1,2 *"] {
        assert!(Trigger::cron_with_hash_key(expr, "UTC", 7).is_ok(), "{expr}");
    }
    assert_eq!(
        reason("0 0 H(1-31) H ?"),
        "this expression never fires: February has no day 31 (for the values H picks for some jobs)"
    );
}

#[test]
fn accessors() {
    let Trigger::Cron(schedule) = Trigger::cron("  0 3 * * *  ", "Europe/Paris").unwrap() else {
        panic!("expected a cron trigger");
    };
    assert_eq!(schedule.expression(), "0 3 * * *");
    assert_eq!(schedule.timezone(), "Europe/Paris");

    let Trigger::Cron(schedule) = Trigger::cron("@daily", "").unwrap() else {
        panic!("expected a cron trigger");
    };
    assert_eq!(schedule.expression(), "@daily");
    assert_eq!(schedule.timezone(), "UTC");
}

#[test]
fn every_macro_and_constructor() {
    assert_eq!(Trigger::cron("@every 90s", "").unwrap(), Trigger::Every { period_ms: 90_000 });
    assert_eq!(
        Trigger::cron("@every 1h30m", "Europe/Paris").unwrap(),
        Trigger::Every { period_ms: 5_400_000 }
    );
    assert_eq!(Trigger::cron("@EVERY 2D", "").unwrap(), Trigger::Every { period_ms: 172_800_000 });
    assert_eq!(Trigger::every(90).unwrap(), Trigger::Every { period_ms: 90_000 });
    assert_eq!(Trigger::every(0).unwrap_err().to_string(), "period must be at least 1 second, got 0 seconds");
}

#[test]
fn equal_expressions_compare_equal() {
    assert_eq!(Trigger::cron("0 0 * * *", "UTC").unwrap(), Trigger::cron("0 0 * * *", "").unwrap());
    assert_ne!(
        Trigger::cron("0 0 * * *", "UTC").unwrap(),
        Trigger::cron("0 0 * * *", "Europe/Paris").unwrap()
    );
}

#[test]
fn triggers_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Trigger>();
    assert_send_sync::<ParseError>();
}
