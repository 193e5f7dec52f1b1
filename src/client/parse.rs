//! Parsers for command-line values shared by several command groups.

/// Whole seconds from plain seconds (`90`) or a human duration (`30s`, `5m`, `1h30m`, `2d`).
pub fn seconds(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let d = humantime::parse_duration(s).map_err(|e| {
        format!("{s:?} is not a duration ({e}): give seconds (90) or a duration such as 30s, 5m, 1h30m")
    })?;
    if d.subsec_nanos() != 0 {
        return Err(format!("{s:?}: give whole seconds"));
    }
    i64::try_from(d.as_secs()).map_err(|_| format!("{s:?} is too long"))
}

/// A number of seconds as the shortest human duration: `90` → `1m 30s`, `3600` → `1h`.
pub fn human_seconds(secs: i64) -> String {
    match u64::try_from(secs) {
        Ok(s) if s > 0 => humantime::format_duration(std::time::Duration::from_secs(s)).to_string(),
        _ => format!("{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_human() {
        assert_eq!(seconds("90"), Ok(90));
        assert_eq!(seconds("30s"), Ok(30));
        assert_eq!(seconds("5m"), Ok(300));
        assert_eq!(seconds("1h30m"), Ok(5400));
        assert_eq!(seconds("2d"), Ok(172_800));
        assert!(seconds("1.5s").is_err());
        assert!(seconds("soon").unwrap_err().contains("1h30m"));
        assert_eq!(human_seconds(5400), "1h 30m");
        assert_eq!(human_seconds(0), "0s");
    }
}
