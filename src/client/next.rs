//! `cronstack next`: the next fire times of a cron expression, offline.

use anyhow::anyhow;
use clap::Args;
use serde_json::json;

use super::Output;
use super::output::{Style, Table, print_json};

#[derive(Args, Debug)]
pub struct NextArgs {
    /// The expression, e.g. "0 3 * * 1-5", "@daily", "@every 90s".
    expression: String,
    /// Time zone (IANA name).
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// How many fire times.
    #[arg(short = 'n', long = "count", default_value_t = 5)]
    n: usize,
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
    let tz: chrono_tz::Tz = args.tz.parse().map_err(|_| anyhow!("unknown time zone {:?}", args.tz))?;
    let now = chrono::Utc::now().timestamp_millis();
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
    outln!("{}", style.bold(&trigger.describe()));
    if times.is_empty() {
        outln!("{}", style.dim("(it never fires again)"));
        return Ok(());
    }
    let mut table = Table::new(&["#", &format!("TIME ({})", args.tz), "UTC", "IN"]);
    for (i, &t) in times.iter().enumerate() {
        let Some(utc) = chrono::DateTime::from_timestamp_millis(t) else { continue };
        let local = utc.with_timezone(&tz);
        table.row(vec![
            (i + 1).to_string(),
            local.format("%a %Y-%m-%d %H:%M:%S %Z").to_string(),
            utc.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            relative(t - now),
        ]);
    }
    table.print(style);
    Ok(())
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
