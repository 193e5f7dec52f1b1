//! `cronstack next`: the next fire times of a cron expression, offline.

use anyhow::anyhow;
use clap::Args;
use serde_json::json;

use super::Output;
use super::output::{Style, Table, print_json, zoned_ms};

#[derive(Args, Debug)]
pub struct NextArgs {
    /// The expression, e.g. "0 3 * * 1-5", "@daily", "@every 90s".
    expression: String,
    /// Time zone (IANA name).
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// How many fire times (0: none, only check the expression).
    #[arg(short = 'n', long = "count", default_value_t = 5)]
    n: usize,
    /// The fire times after this time instead of now: RFC 3339, Unix seconds, or a wall-clock
    /// time in --tz (`2027-10-31 01:00`).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// A job's uid: the values `H` picks for that job (an expression with `H` needs one).
    #[arg(long, value_name = "JOB_UID")]
    hash_key: Option<String>,
}

pub(super) fn next(args: NextArgs, output: Output, style: Style) -> anyhow::Result<()> {
    use cronstack_cron::{ParseError, Trigger, hash_key};
    let trigger = match &args.hash_key {
        Some(uid) => Trigger::cron_with_hash_key(&args.expression, &args.tz, hash_key(uid)),
        None => Trigger::cron(&args.expression, &args.tz),
    }
    .map_err(|e| match e {
        ParseError::HashKeyRequired { .. } => anyhow!("{e}: pass --hash-key JOB_UID"),
        e => anyhow!("{e}"),
    })?;
    let tz = cronstack_cron::parse_tz(&args.tz)?;
    let now = match &args.from {
        Some(from) => parse_from(from, tz)?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let times = trigger.upcoming(now, args.n);
    if output == Output::Json {
        let upcoming: Vec<String> = times.iter().map(|&t| crate::domain::iso8601(t)).collect();
        print_json(&json!({
            "expression": args.expression,
            "timezone": args.tz,
            "hash_key": args.hash_key,
            "description": trigger.describe(),
            "upcoming": upcoming,
        }));
        return Ok(());
    }
    if args.n == 0 {
        return Ok(());
    }
    outln!("{}", style.bold(&trigger.describe()));
    if args.expression.split_whitespace().count() == 6 {
        outln!("{}", style.dim("(6 fields: the first is seconds)"));
    }
    if times.is_empty() {
        outln!("{}", style.dim("(it never fires again)"));
        return Ok(());
    }
    let after = if args.from.is_some() { "AFTER --from" } else { "IN" };
    let mut table = Table::new(&["#", "DAY", "TIME", "UTC", after]);
    for (i, &t) in times.iter().enumerate() {
        let Some(utc) = chrono::DateTime::from_timestamp_millis(t) else { continue };
        table.row(vec![
            (i + 1).to_string(),
            utc.with_timezone(&tz).format("%a").to_string(),
            zoned_ms(t, Some(&args.tz)),
            utc.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            relative(t - now),
        ]);
    }
    table.print(style);
    Ok(())
}

/// `--from`: RFC 3339, Unix seconds, or a wall-clock time in `tz` (a skipped one is refused,
/// a repeated one is its first occurrence).
fn parse_from(s: &str, tz: chrono_tz::Tz) -> anyhow::Result<i64> {
    use chrono::TimeZone;
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs.saturating_mul(1000));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"];
    let wall = formats
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .ok_or_else(|| {
            anyhow!("--from: give RFC 3339 (2027-10-31T01:00:00Z), Unix seconds, or a time in --tz (2027-10-31 01:00), got {s:?}")
        })?;
    match tz.from_local_datetime(&wall).earliest() {
        Some(t) => Ok(t.timestamp_millis()),
        None => Err(anyhow!("--from: {s} does not exist in {tz} (the clocks skip it)")),
    }
}

/// `3d 4h`, `5h 02m`, `12m 30s`, `45s`.
pub(super) fn relative(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {sec:02}s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(relative(45_000), "45s");
        assert_eq!(relative(750_000), "12m 30s");
        assert_eq!(relative(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
    }
}
