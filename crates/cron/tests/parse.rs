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
        ("* * *", "", "expected 5 or 6 fields, got 3"),
        ("* * * * * * *", "", "expected 5 or 6 fields, got 7"),
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
        ("* * L * *", "", "day-of-month field: invalid value \"L\""),
        ("* * * * 5#2", "", "day-of-week field: invalid value \"5#2\""),
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
        ("0 0 * * *", "europe/paris", "unknown time zone \"europe/paris\""),
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
