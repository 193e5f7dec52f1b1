//! What people see: aligned tables, colour only on a terminal (and never with `NO_COLOR`),
//! local times, durations, and a spinner on stderr while a run is followed.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Writes command output to stdout, as `print!` does, except that a closed stdout
/// (`cronstack next … | head -1`) ends the process at once, quietly, with status 0, where
/// `print!` would panic; another write error ends it with status 1 and a message.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Whether an error is a write to a closed stdout (streamed output returns it).
pub fn is_closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// ANSI colour, on when stdout is a terminal and `NO_COLOR` is unset.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn detect() -> Self {
        Style { color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color && !s.is_empty() { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }

    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }

    /// A run outcome or job state in its colour.
    pub fn status(&self, s: &str) -> String {
        match s {
            "succeeded" | "enabled" | "ok" => self.green(s),
            "failed" | "timed_out" | "killed" | "lost" | "failing" | "stuck" => self.red(s),
            "running" | "queued" | "paused" | "deleting" | "late" => self.yellow(s),
            "skipped" => self.dim(s),
            _ => s.to_string(),
        }
    }
}

/// Display width of a string without its ANSI escapes (one column per char).
fn width(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// An aligned table: a bold header and left-aligned columns two spaces apart.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self, style: Style) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String, bold: bool| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate().take(cols) {
                let cell = if bold { style.bold(cell) } else { cell.clone() };
                text.push_str(&cell);
                if i + 1 < cols {
                    text.push_str(&" ".repeat(widths[i] - width(&cell) + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&self.header, &mut out, true);
        for row in &self.rows {
            line(row, &mut out, false);
        }
        out
    }

    pub fn print(&self, style: Style) {
        super::out!("{}", self.render(style));
    }
}

/// `key: value` lines, keys aligned.
pub fn print_fields(style: Style, fields: &[(&str, String)]) {
    let w = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields {
        super::outln!("{}  {v}", style.bold(&format!("{k:<w$}")));
    }
}

/// A JSON value as a cell: strings bare, null as "-".
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An optional value as a cell: `-` for none.
pub fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// An ISO-8601 UTC time from the API as local time (`2026-11-24 03:00:00`); `-` for none.
pub fn local_time(v: Option<&str>) -> String {
    match v.map(|s| (s, chrono::DateTime::parse_from_rfc3339(s))) {
        Some((_, Ok(t))) => t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string(),
        Some((s, Err(_))) => s.to_string(),
        None => "-".into(),
    }
}

/// An API time (RFC 3339) in the zone `tz` (IANA; UTC when absent), with the zone's
/// abbreviation and offset: `2027-10-31 02:30 CET (+01:00)`. `-` for none.
pub fn zoned_time(v: Option<&str>, tz: Option<&str>) -> String {
    match v.map(|s| (s, chrono::DateTime::parse_from_rfc3339(s))) {
        Some((_, Ok(t))) => zoned_ms(t.timestamp_millis(), tz),
        Some((s, Err(_))) => s.to_string(),
        None => "-".into(),
    }
}

/// Epoch milliseconds as [`zoned_time`] shows them.
pub fn zoned_ms(ms: i64, tz: Option<&str>) -> String {
    use chrono::Timelike;
    let zone: chrono_tz::Tz = tz.and_then(|z| z.parse().ok()).unwrap_or(chrono_tz::UTC);
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else { return "-".into() };
    let t = t.with_timezone(&zone);
    // Seconds only for the expressions that fire on them.
    let clock = if t.second() == 0 { "%Y-%m-%d %H:%M" } else { "%Y-%m-%d %H:%M:%S" };
    format!("{} {} ({})", t.format(clock), t.format("%Z"), t.format("%:z"))
}

/// Milliseconds as a short duration: `850ms`, `1.25s`, `2m05s`, `3h04m`.
pub fn duration_ms(v: Option<i64>) -> String {
    let Some(ms) = v else { return "-".into() };
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let text = if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    };
    format!("{sign}{text}")
}

/// Pretty JSON on stdout. Through a `Value`, so that objects print their keys sorted, whatever
/// the type's field order (as `--output json` always did).
pub fn print_json<T: serde::Serialize + ?Sized>(v: &T) {
    let v = serde_json::to_value(v).unwrap_or(Value::Null);
    super::outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string()));
}

/// A progress line on stderr while a run is followed. On a terminal it spins (and steps
/// aside whenever output arrives); elsewhere it prints its messages as plain lines.
#[derive(Clone)]
pub struct Spinner {
    inner: Arc<Mutex<SpinState>>,
    tty: bool,
}

struct SpinState {
    message: String,
    started: Instant,
    last_output: Instant,
    /// The cursor is at the start of a line (the log's last byte was a newline).
    at_line_start: bool,
    shown: bool,
    stopped: bool,
}

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl Spinner {
    pub fn start(message: &str) -> Self {
        let tty = std::io::stderr().is_terminal();
        let now = Instant::now();
        let state = SpinState {
            message: message.to_string(),
            started: now,
            last_output: now - Duration::from_secs(1),
            at_line_start: true,
            shown: false,
            stopped: false,
        };
        let spinner = Spinner { inner: Arc::new(Mutex::new(state)), tty };
        if tty {
            let s = spinner.clone();
            std::thread::spawn(move || {
                let mut frame = 0usize;
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    let mut st = s.inner.lock().unwrap();
                    if st.stopped {
                        break;
                    }
                    // Draw only on an empty line, and not while output streams in.
                    if st.at_line_start && st.last_output.elapsed() > Duration::from_millis(400) {
                        let elapsed = st.started.elapsed().as_secs_f64();
                        let mut err = std::io::stderr().lock();
                        let _ = write!(
                            err,
                            "\r\x1b[2K{} {} · {elapsed:.1}s",
                            FRAMES[frame % FRAMES.len()],
                            st.message
                        );
                        let _ = err.flush();
                        st.shown = true;
                        frame += 1;
                    }
                }
            });
        } else {
            eprintln!("{message}");
        }
        spinner
    }

    fn clear(st: &mut SpinState) {
        if st.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            st.shown = false;
        }
    }

    pub fn set_message(&self, message: &str) {
        let mut st = self.inner.lock().unwrap();
        if st.message != message {
            st.message = message.to_string();
            if !self.tty {
                eprintln!("{message}");
            }
        }
    }

    /// Writes log bytes to `out` with the spinner out of the way.
    pub fn output(&self, out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut st = self.inner.lock().unwrap();
        Self::clear(&mut st);
        out.write_all(bytes)?;
        out.flush()?;
        st.last_output = Instant::now();
        st.at_line_start = bytes.ends_with(b"\n");
        Ok(())
    }

    /// Stops spinning and prints the closing line.
    pub fn finish(&self, line: &str) {
        let mut st = self.inner.lock().unwrap();
        st.stopped = true;
        Self::clear(&mut st);
        let mut err = std::io::stderr().lock();
        if !st.at_line_start {
            let _ = writeln!(err);
        }
        let _ = writeln!(err, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_ignore_colour_codes() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["1".into(), "\x1b[32mlong-name\x1b[0m".into()]);
        t.row(vec!["100".into(), "x".into()]);
        let out = t.render(Style { color: false });
        assert_eq!(out, "ID   NAME\n1    \x1b[32mlong-name\x1b[0m\n100  x\n");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration_ms(Some(850)), "850ms");
        assert_eq!(duration_ms(Some(1250)), "1.25s");
        assert_eq!(duration_ms(Some(125_000)), "2m05s");
        assert_eq!(duration_ms(Some(3 * 3_600_000 + 4 * 60_000)), "3h04m");
        assert_eq!(duration_ms(None), "-");
    }
}
