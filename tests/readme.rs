//! The README is a contract: every `sh` block in it is run, top to bottom, as a new user would
//! paste it into one shell — the real binary, a real server started by the README's own
//! `serve &` line on the default SQLite database in a fresh directory, real `curl` — and each
//! output the README shows is compared with what the command printed.
//!
//! What the README shows as output, right below a command:
//! - `# {…}` / `# […]`: the command's stdout (a JSON line);
//! - `# prints: TEXT`: the command's stdout, verbatim (several such lines: several lines).
//!
//! (Prose may follow a JSON output after two spaces.) In an expected output `…` stands for any text and an RFC 3339 UTC time for any such time; a
//! comment that is neither is prose. Every command must exit 0 unless its line says
//! `# exits N`. Rewritten before running (and only these): `./target/release/cronstack` is the
//! binary under test (found on `PATH` like an installed one), `127.0.0.1:7878` is the test
//! server's address, a placeholder token `cst_…` is the token `user add` printed, lines running
//! `cargo` are skipped (CI runs them itself) and so is the first block (the two commands CI runs).
//! SQLite only: the README's walk-through is the embedded default.

mod common;

use std::path::Path;
use std::process::Command;

/// One command of a block and what the README says it prints.
#[derive(Debug)]
struct Step {
    line: usize,
    command: String,
    expect: Vec<Expect>,
    exit: i32,
}

#[derive(Debug)]
enum Expect {
    Json(String),
    Text(String),
}

/// The `sh` blocks of `readme`, as steps, with their line numbers.
fn steps(readme: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_sh = false;
    let mut blocks = 0;
    // A command's lines so far, until the shell reads them as complete (continued lines,
    // quotes and here-documents spanning lines).
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        let n = i + 1;
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            if in_sh {
                blocks += 1;
            }
            continue;
        }
        if !in_sh || blocks == 1 {
            continue;
        }
        if let Some((start, mut text)) = pending.take() {
            text.push('\n');
            text.push_str(line);
            if complete(&text) {
                steps.push(step(start, text));
            } else {
                pending = Some((start, text));
            }
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.trim();
            if let Some(last) = steps.last_mut() {
                if comment.starts_with('{') || comment.starts_with('[') {
                    // Prose may follow the output after two spaces (compact JSON has none).
                    let json = comment.split("  ").next().unwrap_or(comment);
                    last.expect.push(Expect::Json(json.to_string()));
                } else if let Some(text) = comment.strip_prefix("prints:") {
                    last.expect.push(Expect::Text(text.trim().to_string()));
                }
            }
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with("cargo ") {
            continue;
        }
        if complete(line) {
            steps.push(step(n, line.to_string()));
        } else {
            pending = Some((n, line.to_string()));
        }
    }
    assert!(pending.is_none(), "a command of the README never ends: {pending:?}");
    steps
}

/// Whether bash reads `text` as complete commands: no open quote, here-document or `\`.
fn complete(text: &str) -> bool {
    if text.ends_with('\\') {
        return false;
    }
    let out = Command::new("bash").args(["-n", "-c", text]).output().expect("bash runs");
    out.status.success() && out.stderr.is_empty()
}

fn step(line: usize, command: String) -> Step {
    let exit = command
        .rsplit_once("# exits ")
        .and_then(|(_, n)| n.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok())
        .unwrap_or(0);
    Step { line, command, expect: Vec::new(), exit }
}

/// Whether `actual` is `expected` with `…` as any text and UTC times as any time.
fn matches(expected: &str, actual: &str) -> bool {
    let (expected, actual) = (generic_times(expected), generic_times(actual));
    let parts: Vec<&str> = expected.split('…').collect();
    let mut rest = actual.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

/// `2026-11-25T02:00:00Z` (with or without fractions) → `<time>`.
fn generic_times(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let shape = b"dddd-dd-ddTdd:dd:dd";
        let fits = i + shape.len() <= b.len()
            && shape.iter().zip(&b[i..]).all(|(s, c)| if *s == b'd' { c.is_ascii_digit() } else { s == c });
        if fits {
            let mut j = i + shape.len();
            if b.get(j) == Some(&b'.') {
                j += 1;
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            if b.get(j) == Some(&b'Z') {
                out.push_str("<time>");
                i = j + 1;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The shell script that runs every step, each one's stdout, stderr and status to files.
fn script(steps: &[Step], addr: &str, out: &Path) -> String {
    let mut s =
        String::from("set -u\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\nexport S3_KEY=AKIA-example\n");
    for (k, step) in steps.iter().enumerate() {
        let mut command =
            step.command.replace("./target/release/cronstack", "cronstack").replace("127.0.0.1:7878", addr);
        if command.trim_start().starts_with("TOKEN=cst_") {
            // `TOKEN=cst_…` after `user add`: the token it printed on its last line.
            command = format!("TOKEN=$(tail -n 1 {}/{}.out)", out.display(), k - 1);
        }
        command = command.replace("cst_…", "$TOKEN");
        let o = out.join(k.to_string());
        s.push_str(&format!(
            "{{\n{command}\n}} >{o}.out 2>{o}.err </dev/null; echo $? >{o}.rc\n",
            o = o.display()
        ));
        if command.trim_end().ends_with("serve &") {
            s.push_str(&format!(
                "for _ in $(seq 300); do curl -sf http://{addr}/healthz >/dev/null && break; sleep 0.1; done\n"
            ));
        }
    }
    s
}

#[test]
fn every_sh_block_of_the_readme_runs_and_prints_what_it_shows() {
    if std::env::var("CRONSTACK_TEST_POSTGRES").is_ok_and(|v| !v.is_empty()) {
        eprintln!("the README walk-through runs on SQLite (its default); run on the SQLite pass");
        return;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let steps = steps(&readme);
    assert!(steps.len() > 30, "the README's blocks were not read: {steps:?}");
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let addr = format!("127.0.0.1:{}", common::free_port());
    let bin_dir = Path::new(common::BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let status = Command::new("bash")
        .arg("-c")
        .arg(script(&steps, &addr, &out))
        .current_dir(home.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("CRONSTACK_LISTEN", &addr)
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success(), "the README script itself failed: {status}");

    let mut failures = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        let read = |ext: &str| std::fs::read_to_string(out.join(format!("{k}.{ext}"))).unwrap_or_default();
        let (stdout, stderr) = (read("out"), read("err"));
        let rc: i32 = read("rc").trim().parse().unwrap_or(-1);
        let mut why = Vec::new();
        if rc != step.exit {
            why.push(format!("exit status {rc}, the README says {}", step.exit));
        }
        let lines: Vec<&str> = stdout.lines().collect();
        let json: Vec<&String> =
            step.expect.iter().filter_map(|e| if let Expect::Json(j) = e { Some(j) } else { None }).collect();
        let text: Vec<&String> =
            step.expect.iter().filter_map(|e| if let Expect::Text(t) = e { Some(t) } else { None }).collect();
        if let Some(expected) = json.first()
            && !json.iter().any(|e| matches(e, stdout.trim_end()))
        {
            why.push(format!("stdout does not match `{expected}`"));
        }
        if !text.is_empty()
            && (lines.len() != text.len() || !text.iter().zip(&lines).all(|(e, a)| matches(e, a)))
        {
            why.push(format!("stdout is not the {} line(s) shown: {text:?}", text.len()));
        }
        if !why.is_empty() {
            failures.push(format!(
                "README.md:{}: {}\n  {}\n  stdout: {}\n  stderr: {}",
                step.line,
                step.command,
                why.join("; "),
                stdout.trim_end(),
                stderr.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{} README step(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn the_matcher_reads_ellipses_and_times() {
    assert!(matches(
        r#"{"id":1,…,"next_run":"2026-11-25T02:00:00Z",…}"#,
        r#"{"id":1,"a":2,"next_run":"2027-01-01T00:00:00.5Z","b":3}"#
    ));
    assert!(!matches(r#"{"id":1}"#, r#"{"id":2}"#));
    assert!(!matches(r#"{"id":1,…}"#, r#"{"id":12}"#));
    assert!(matches("backing up …", "backing up --full two words"));
    assert!(!matches("a…b", "a"));
}
