//! Runs real child processes through the executor. Timing bounds are generous
//! on purpose (a loaded 2-core machine): they only tell "finished" from "hung".

use std::path::Path;
use std::time::{Duration, Instant};

use cronstack_exec::{Command, Finished, Gate, Outcome, Release, spawn};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// Far beyond any legitimate run here; far below the `sleep 300`s we kill.
const HANG: Duration = Duration::from_secs(60);

fn cmd(script: &str) -> Command {
    Command {
        script: script.into(),
        name: "job".into(),
        kill_grace: Duration::from_millis(500),
        ..Default::default()
    }
}

fn with_args(script: &str, args: &[&str]) -> Command {
    Command { args: args.iter().map(|a| a.to_string()).collect(), ..cmd(script) }
}

async fn run(c: Command) -> Finished {
    let running = spawn(c).expect("spawn");
    tokio::time::timeout(HANG, running.wait()).await.expect("run hung")
}

/// Processes of group `pgid` that are still alive. Zombies do not count:
/// orphans are re-parented to an init that may never reap them.
fn live_members(pgid: u32) -> Vec<u32> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp …"; comm may hold spaces and parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" && fields[0] != "X" {
            live.push(pid);
        }
    }
    live
}

fn group_gone(pgid: u32) -> bool {
    match kill(Pid::from_raw(-(pgid as i32)), None) {
        Err(Errno::ESRCH) => true,
        _ => live_members(pgid).is_empty(),
    }
}

/// Polls (the kernel finishes SIGKILLed processes asynchronously).
async fn assert_group_gone(pgid: u32) {
    let start = Instant::now();
    while !group_gone(pgid) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "group {pgid} still has live processes: {:?}",
            live_members(pgid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Follows `log` from `pos` until `pred` holds on everything read so far.
async fn read_until(
    log: &cronstack_exec::Log,
    seen: &mut Vec<u8>,
    pos: &mut u64,
    pred: impl Fn(&[u8]) -> bool,
) {
    let start = Instant::now();
    loop {
        let (bytes, p) = log.read_from(*pos);
        seen.extend(bytes);
        *pos = p;
        if pred(seen) {
            return;
        }
        assert!(!log.is_closed(), "log closed early: {:?}", String::from_utf8_lossy(seen));
        assert!(start.elapsed() < HANG, "no output");
        let _ = tokio::time::timeout(Duration::from_secs(5), log.changed(*pos)).await;
    }
}

/// Follows `log` from `pos` to its end.
async fn follow_to_end(log: &cronstack_exec::Log, seen: &mut Vec<u8>, mut pos: u64) {
    loop {
        let (bytes, p) = log.read_from(pos);
        seen.extend(bytes);
        pos = p;
        if log.is_closed() {
            // Closed after our read? Take what came in between.
            seen.extend(log.read_from(pos).0);
            return;
        }
        tokio::time::timeout(HANG, log.changed(pos)).await.expect("log never changed or closed");
    }
}

#[tokio::test]
async fn exit_codes_and_signals() {
    let ok = run(cmd("exit 0")).await;
    assert_eq!((ok.outcome, ok.exit_code, ok.signal), (Outcome::Succeeded, Some(0), None));

    let fail = run(cmd("exit 3")).await;
    assert_eq!((fail.outcome, fail.exit_code, fail.signal), (Outcome::Failed, Some(3), None));

    let sig = run(cmd("kill -KILL $$")).await;
    assert_eq!((sig.outcome, sig.exit_code, sig.signal), (Outcome::Failed, None, Some(9)));

    let missing = run(cmd("no-such-command-xyz")).await;
    assert_eq!(missing.exit_code, Some(127));
    assert!(missing.log.contains("not found"), "{:?}", missing.log);
}

#[tokio::test]
async fn stdout_and_stderr_interleave_in_order() {
    let f = run(cmd("echo a; echo b >&2; echo c; echo d >&2; printf e")).await;
    assert_eq!(f.log, "a\nb\nc\nd\ne");
    assert!(!f.log_truncated);
    assert_eq!(f.stdout, None);
}

#[tokio::test]
async fn capture_stdout_keeps_stdout_apart() {
    let f = run(Command { capture_stdout: true, ..cmd("echo out1; echo err1 >&2; echo out2") }).await;
    assert_eq!(f.stdout.as_deref(), Some("out1\nout2\n"));
    for line in ["out1\n", "err1\n", "out2\n"] {
        assert!(f.log.contains(line), "{:?}", f.log);
    }
    assert_eq!(f.log.len(), 15);
}

#[tokio::test]
async fn the_environment_is_clean_and_extended() {
    // Whatever this test process has (cargo's variables, the developer's), a job gets
    // exactly this set.
    let f = run(Command { env: vec![("CS_FOO".into(), "bar baz".into())], ..cmd("env") }).await;
    let mut names: Vec<&str> = f.log.lines().filter_map(|l| l.split_once('=')).map(|(n, _)| n).collect();
    names.sort_unstable();
    // (`PWD`, `SHLVL` and `_` are the shell's own.)
    names.retain(|n| !["PWD", "SHLVL", "_", "LANG", "LC_ALL", "TZ"].contains(n));
    assert_eq!(names, ["CS_FOO", "HOME", "LOGNAME", "PATH", "SHELL", "USER"], "{}", f.log);
    assert!(f.log.contains(&format!("PATH={}\n", cronstack_exec::DEFAULT_PATH)), "{}", f.log);
    assert!(f.log.contains("CS_FOO=bar baz\n"));

    // Passed on by name, on purpose.
    let base_env = cronstack_exec::JobEnv::new(&["PATH".into(), "CS_UNSET_HERE".into()]).unwrap();
    let f = run(Command { base_env, ..cmd(r#"printf %s "$PATH"; env | grep -c CS_UNSET_HERE"#) }).await;
    assert_eq!(f.log, format!("{}0\n", std::env::var("PATH").unwrap()));

    // A job may set its own PATH; /bin/sh is still found.
    let f = run(Command { env: vec![("PATH".into(), "/nonexistent".into())], ..cmd(r#"printf %s "$PATH""#) })
        .await;
    assert_eq!((f.outcome, f.log.as_str()), (Outcome::Succeeded, "/nonexistent"));
}

#[tokio::test]
async fn workdir_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let f = run(Command { workdir: Some(dir.path().to_path_buf()), ..cmd("pwd -P") }).await;
    let want = dir.path().canonicalize().unwrap();
    assert_eq!(f.log.trim_end(), want.to_str().unwrap());
}

#[tokio::test]
async fn stdin_bytes_or_dev_null() {
    let f = run(Command { stdin: Some(b"line1\nline2\n".to_vec()), ..cmd("cat") }).await;
    assert_eq!(f.log, "line1\nline2\n");

    // No stdin: /dev/null, so `cat` ends at once instead of waiting.
    let f = run(cmd("cat")).await;
    assert_eq!((f.outcome, f.log.as_str()), (Outcome::Succeeded, ""));

    // Large input, read fully.
    let f = run(Command { stdin: Some(vec![b'x'; 300_000]), ..cmd("wc -c") }).await;
    assert_eq!(f.log.trim(), "300000");

    // Large input the job never reads: no hang on the writer.
    let f = run(Command { stdin: Some(vec![b'x'; 1_000_000]), ..cmd("echo ignored") }).await;
    assert_eq!((f.outcome, f.log.as_str()), (Outcome::Succeeded, "ignored\n"));
}

#[tokio::test]
async fn args_arrive_literally_and_are_never_executed() {
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let p = pwned.to_str().unwrap();
    let args = [
        "a b".to_string(),
        String::new(),
        format!("x; touch {p}"),
        format!("$(touch {p})"),
        format!("`touch {p}`"),
        format!("'; touch {p}; '"),
        format!("\"; touch {p}; \""),
        format!("| touch {p}"),
        "two\nlines".to_string(),
        "-n".to_string(),
        "$HOME *".to_string(),
    ];
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let f = run(with_args(r"printf '[%s]\n'", &arg_refs)).await;
    assert_eq!(f.outcome, Outcome::Succeeded, "{}", f.log);
    let want: String = args.iter().map(|a| format!("[{a}]\n")).collect();
    assert_eq!(f.log, want);
    assert!(!pwned.exists(), "an argument was executed");

    // $0 is the name; $# counts the args.
    let f = run(Command {
        name: "my job; $(id)".into(),
        ..with_args(r#"printf '%s|%s|' "$0" "$#" "$@""#, &["1", "2 3"])
    })
    .await;
    assert_eq!(f.log, "my job; $(id)|2|1|2 3|");
}

/// The argument rule (crate doc), row by row, run by a real `sh` with `A "B C"`.
#[tokio::test]
async fn the_argument_rule_row_by_row() {
    let args = ["A", "B C"];
    // Positional parameters anywhere: `$1…` only, nothing appended.
    let positional = [
        (r#"echo backing up "$@""#, "backing up A B C\n"),
        (r#"if [ $# -gt 1 ]; then printf '[%s]' "$@"; fi"#, "[A][B C]"),
        (r#"for a in "$@"; do printf '<%s>' "$a"; done"#, "<A><B C>"),
        (r#"{ printf '%s,' "$1" "${2}"; }"#, "A,B C,"),
        ("case $1 in A) echo one;; esac", "one\n"),
        (r#"printf '%s' "$2" # the second"#, "B C"),
        ("echo first\nprintf '[%s]' \"$@\"\n", "first\n[A][B C]"),
        ("cat <<EOF\n$1 and $2\nEOF\n", "A and B C\n"),
        ("for a; do printf '(%s)' \"$a\"; done", "(A)(B C)"),
    ];
    // One simple command or pipeline: appended as words to its last command.
    let appended = [
        ("printf '[%s]'", "[A][B C]"),
        ("echo rake db:backup;\n", "rake db:backup A B C\n"),
        ("echo x | xargs printf '[%s]'", "[A][B C][x]"),
        ("xargs printf '[%s]' <<EOF\nx\nEOF\n", "[A][B C][x]"),
    ];
    for (script, want) in positional.into_iter().chain(appended) {
        let f = run(with_args(script, &args)).await;
        assert_eq!((f.outcome, f.log.as_str()), (Outcome::Succeeded, want), "{script:?}");
    }
    // Quotes, dollars and newlines inside the arguments stay literal.
    let tricky = ["it's", r#"say "hi""#, "$(id) `id` $HOME", "two\nlines", "#"];
    let f = run(with_args("printf '[%s]'", &tricky)).await;
    assert_eq!(f.log, "[it's][say \"hi\"][$(id) `id` $HOME][two\nlines][#]");

    // Anything else: refused, nothing runs; without arguments it runs as written, and its
    // exit status is the script's.
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let r = ran.display();
    let other = [
        (format!("touch {r}; if false; then :; else exit 3; fi"), 3),
        (format!("touch {r}; for i in 1; do exit 4; done"), 4),
        (format!("touch {r}; {{ exit 5; }}"), 5),
        (format!("touch {r}; case x in x) exit 6;; esac"), 6),
        (format!("touch {r} # then nothing"), 0),
        (format!("touch {r}\nfalse\n"), 1),
        (format!("cat <<EOF\nx\nEOF\ntouch {r}; exit 7"), 7),
    ];
    for (script, status) in other {
        let err = spawn(with_args(&script, &args)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{script:?}");
        assert_eq!(err.to_string(), r#"this command takes no arguments: use "$@" where they belong"#);
        assert!(!ran.exists(), "{script:?} ran");
        let f = run(cmd(&script)).await;
        assert_eq!(f.exit_code, Some(status), "{script:?}: {}", f.log);
        assert!(ran.exists(), "{script:?} did not run");
        std::fs::remove_file(&ran).unwrap();
    }
}

#[tokio::test]
async fn trailing_newline_keeps_exit_status_and_args() {
    // Without args nothing is appended: the script's own status counts.
    let f = run(cmd("false\n")).await;
    assert_eq!((f.outcome, f.exit_code), (Outcome::Failed, Some(1)));
    let f = run(cmd("false;")).await;
    assert_eq!(f.exit_code, Some(1));
    // With args they still reach the last command.
    let f = run(with_args("printf '<%s>'  \n\n", &["a b"])).await;
    assert_eq!(f.log, "<a b>");
    // Positional parameters are set with or without the append.
    let f = run(with_args("echo \"$1\"\nfalse\n", &["x"])).await;
    assert_eq!(f.exit_code, Some(1), "{}", f.log);
}

/// A truncated log's head, omitted count and tail.
fn split_marker(log: &str) -> (&str, u64, &str) {
    let (head, rest) = log.split_once("\n… [").expect("a marker");
    let (count, tail) = rest.split_once(" bytes omitted] …\n").expect("a marker's end");
    (head, count.parse().unwrap(), tail)
}

#[tokio::test]
async fn cap_keeps_head_and_tail_with_marker() {
    let full: String = (1..=2000).map(|i| format!("{i}\n")).collect();
    let f = run(Command { log_cap: 300, capture_stdout: true, ..cmd("seq 1 2000") }).await;
    assert!(f.log_truncated);
    assert!(f.log.len() <= 300, "{} bytes", f.log.len());
    let (head, omitted, tail) = split_marker(&f.log);
    // Whole lines either side: the head's last newline is the marker's.
    assert!(full.starts_with(&format!("{head}\n")) && head.starts_with("1\n2\n"), "{head:?}");
    assert!(full.ends_with(&format!("\n{tail}")) && tail.ends_with("1999\n2000\n"), "{tail:?}");
    assert_eq!(head.len() as u64 + omitted + tail.len() as u64, full.len() as u64);
    assert_eq!(f.stdout.as_deref(), Some(f.log.as_str()));
}

#[tokio::test]
async fn log_handle_reads_positions_after_the_run() {
    let full: String = (1..=2000).map(|i| format!("{i}\n")).collect();
    let running = spawn(Command { log_cap: 300, ..cmd("seq 1 2000") }).unwrap();
    let log = running.log();
    let f = running.wait().await;
    assert!(log.is_closed());
    assert_eq!(log.len_written(), full.len() as u64);
    assert_eq!(log.snapshot(), f.log);
    // Positions are in the stored text.
    let end = f.log.len() as u64;
    let (all, at) = log.read_from(0);
    assert_eq!((String::from_utf8(all).unwrap(), at), (f.log.clone(), end));
    let (rest, _) = log.read_from(100);
    assert_eq!(rest, &f.log.as_bytes()[100..]);
    assert_eq!(log.read_from(end), (Vec::new(), end));
    // Closed: `changed` returns at once.
    tokio::time::timeout(HANG, log.changed(end)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_of_a_chatty_run_gets_the_stored_log() {
    let running = spawn(Command { log_cap: 4096, ..cmd("seq 1 300000") }).unwrap();
    let log = running.log();
    let mut seen = Vec::new();
    follow_to_end(&log, &mut seen, 0).await;
    let f = running.wait().await;
    assert!(f.log_truncated && f.log.len() <= 4096, "{} bytes", f.log.len());
    assert_eq!(String::from_utf8(seen).unwrap(), f.log);
}

#[tokio::test]
async fn nul_and_invalid_utf8_are_stored_as_replacement_chars() {
    let f = run(Command { capture_stdout: true, ..cmd("printf 'a\\000b'") }).await;
    assert_eq!(f.outcome, Outcome::Succeeded);
    assert_eq!(f.log, "a\u{fffd}b");
    assert_eq!(f.stdout.as_deref(), Some("a\u{fffd}b"));
    let f = run(cmd("printf 'c\\377d' >&2")).await;
    assert_eq!(f.log, "c\u{fffd}d");
    // A sequence cut at the end of the output is invalid too.
    let f = run(cmd("printf 'end \\342\\202'")).await;
    assert_eq!(f.log, "end \u{fffd}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_counts_against_the_cap_after_replacement() {
    // 3 MB of 0xff: 9 MB of text once each byte is U+FFFD.
    let f = run(cmd("head -c 3000000 /dev/zero | tr '\\0' '\\377'")).await;
    assert!(f.log_truncated);
    assert!(f.log.len() <= 1 << 20, "{} bytes for a 1 MiB cap", f.log.len());
    let (head, omitted, tail) = split_marker(&f.log);
    assert!(head.chars().chain(tail.chars()).all(|c| c == '\u{fffd}'));
    assert_eq!(head.len() as u64 + omitted + tail.len() as u64, 9_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reading_then_follow_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let running = spawn(with_args(
        r#"echo first; while [ ! -e "$1" ]; do sleep 0.02; done; echo second >&2; echo third; : "#,
        &[go.to_str().unwrap()],
    ))
    .unwrap();
    let log = running.log();
    let (mut seen, mut pos) = (Vec::new(), 0);
    read_until(&log, &mut seen, &mut pos, |s| s == b"first\n").await;
    // The job is blocked until we create the file: this is truly live.
    assert!(!log.is_closed());
    assert_eq!(log.snapshot(), "first\n");
    std::fs::write(&go, b"").unwrap();
    follow_to_end(&log, &mut seen, pos).await;
    assert_eq!(String::from_utf8(seen).unwrap(), "first\nsecond\nthird\n");
    let f = tokio::time::timeout(HANG, running.wait()).await.unwrap();
    assert_eq!((f.outcome, f.log.as_str()), (Outcome::Succeeded, "first\nsecond\nthird\n"));
}

#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let running =
        spawn(Command { timeout: Some(Duration::from_millis(300)), ..cmd("sleep 300 & sleep 300") }).unwrap();
    let pgid = running.pid();
    let f = tokio::time::timeout(HANG, running.wait()).await.expect("hung");
    assert_eq!(f.outcome, Outcome::TimedOut);
    assert!(f.signal.is_some(), "{f:?}");
    assert_group_gone(pgid).await;
}

#[tokio::test]
async fn sigterm_ignored_means_sigkill_after_grace() {
    // Ignored signals are inherited: neither sh nor the sleeps die on TERM.
    let script = "trap '' TERM; sleep 300 & sleep 300; echo not reached";
    for grace in [Duration::from_millis(300), Duration::ZERO] {
        let running =
            spawn(Command { timeout: Some(Duration::from_millis(200)), kill_grace: grace, ..cmd(script) })
                .unwrap();
        let pgid = running.pid();
        let f = tokio::time::timeout(HANG, running.wait()).await.expect("hung");
        assert_eq!((f.outcome, f.signal), (Outcome::TimedOut, Some(9)), "{f:?}");
        assert!(!f.log.contains("not reached"));
        assert_group_gone(pgid).await;
    }
}

#[tokio::test]
async fn grace_lets_the_group_clean_up() {
    // The child handles TERM by printing; the grace gives it time to.
    let script =
        "sh -c 'trap \"echo cleaned; exit 0\" TERM; echo ready; while :; do sleep 0.05; done' & wait";
    let running = spawn(Command { kill_grace: Duration::from_secs(20), ..cmd(script) }).unwrap();
    let pgid = running.pid();
    let log = running.log();
    let (mut seen, mut pos) = (Vec::new(), 0);
    read_until(&log, &mut seen, &mut pos, |s| s == b"ready\n").await;
    running.killer().kill();
    let f = tokio::time::timeout(HANG, running.wait()).await.expect("hung");
    assert_eq!(f.outcome, Outcome::Killed);
    assert!(f.log.contains("cleaned"), "{:?}", f.log);
    assert_group_gone(pgid).await;
}

#[tokio::test]
async fn background_child_does_not_hang_wait_and_is_killed() {
    let start = Instant::now();
    let running = spawn(cmd("sleep 300 & (sleep 1; echo late) & echo started")).unwrap();
    let pgid = running.pid();
    let f = tokio::time::timeout(HANG, running.wait()).await.expect("hung");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!((f.outcome, f.log.as_str()), (Outcome::Succeeded, "started\n"));
    assert_group_gone(pgid).await;
}

#[tokio::test]
async fn process_that_left_the_group_does_not_hang_wait() {
    // `setsid` escapes the group (we cannot kill it) while holding the output
    // pipe open: only the drain limit ends the wait. The file tells the
    // script the escape has happened and carries the escaped pid.
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("escaped");
    let script = r#"setsid sh -c 'echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 30' x "$1" &
        while [ ! -e "$1" ]; do sleep 0.01; done; cat "$1"; true"#;
    let start = Instant::now();
    let f = run(with_args(script, &[flag.to_str().unwrap()])).await;
    let elapsed = start.elapsed();
    let pid: i32 = f.log.trim().parse().expect("escaped pid");
    let still_there = kill(Pid::from_raw(pid), None).is_ok();
    let _ = kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    assert_eq!(f.outcome, Outcome::Succeeded);
    assert!(still_there, "the escaped process should have survived");
    assert!(elapsed < Duration::from_secs(25), "{elapsed:?}");
}

#[tokio::test]
async fn killer_ends_the_run() {
    let running = spawn(cmd("echo ready; sleep 300 & sleep 300")).unwrap();
    let pgid = running.pid();
    let killer = running.killer();
    let log = running.log();
    let (mut seen, mut pos) = (Vec::new(), 0);
    read_until(&log, &mut seen, &mut pos, |s| s == b"ready\n").await;
    killer.kill();
    killer.clone().kill(); // idempotent
    let f = tokio::time::timeout(HANG, running.wait()).await.expect("hung");
    assert_eq!(f.outcome, Outcome::Killed);
    assert_eq!(f.log, "ready\n");
    assert_group_gone(pgid).await;
    killer.kill(); // finished: no-op
}

#[tokio::test]
async fn kill_right_after_spawn_and_after_finish() {
    let running = spawn(cmd("sleep 300")).unwrap();
    running.killer().kill();
    let f = tokio::time::timeout(HANG, running.wait()).await.expect("hung");
    assert_eq!(f.outcome, Outcome::Killed);

    let running = spawn(cmd("true")).unwrap();
    let killer = running.killer();
    let f = running.wait().await;
    killer.kill();
    assert_eq!(f.outcome, Outcome::Succeeded);
}

#[tokio::test]
async fn huge_durations_do_not_overflow() {
    let f = run(Command { timeout: Some(Duration::MAX), kill_grace: Duration::MAX, ..cmd("true") }).await;
    assert_eq!(f.outcome, Outcome::Succeeded);

    // TERM is enough for `sleep`, so the endless grace is never waited out.
    let running = spawn(Command { kill_grace: Duration::MAX, ..cmd("sleep 300") }).unwrap();
    running.killer().kill();
    let f = tokio::time::timeout(HANG, running.wait()).await.expect("hung");
    assert_eq!((f.outcome, f.signal), (Outcome::Killed, Some(15)));

    let f = run(Command { timeout: Some(Duration::ZERO), ..cmd("sleep 300") }).await;
    assert_eq!(f.outcome, Outcome::TimedOut);
}

#[tokio::test]
async fn drop_without_wait_kills_the_group() {
    let running =
        spawn(Command { kill_grace: Duration::from_millis(200), ..cmd("sleep 300 & sleep 300") }).unwrap();
    let pgid = running.pid();
    let log = running.log();
    drop(running);
    assert_group_gone(pgid).await;
    // The driver still finishes the run: followers see the end.
    tokio::time::timeout(HANG, log.changed(u64::MAX)).await.expect("log never closed");
    assert!(log.is_closed());
}

#[tokio::test]
async fn cancelled_wait_kills_the_group() {
    let running = spawn(cmd("sleep 300 & sleep 300")).unwrap();
    let pgid = running.pid();
    let waited = tokio::time::timeout(Duration::from_millis(100), running.wait()).await;
    assert!(waited.is_err());
    assert_group_gone(pgid).await;
}

#[tokio::test]
async fn spawn_errors_are_values() {
    let err =
        spawn(Command { workdir: Some(Path::new("/nonexistent/dir/for/cronstack").into()), ..cmd("true") })
            .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/dir/for/cronstack"), "{err}");

    assert!(spawn(cmd("echo a\0b")).is_err());
    assert!(spawn(with_args("echo", &["a\0b"])).is_err());
    for name in ["", "A=B", "A\0"] {
        let c = Command { env: vec![(name.into(), "v".into())], ..cmd("true") };
        assert!(spawn(c).is_err(), "{name:?}");
    }
    assert!(spawn(Command { env: vec![("A".into(), "v\0".into())], ..cmd("true") }).is_err());
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    assert!(spawn(cmd("true")).is_err());
}

#[tokio::test]
async fn odd_inputs_do_not_panic() {
    let f = run(Command::default()).await;
    assert_eq!(f.outcome, Outcome::Succeeded);
    // A cap below the minimum counts as the minimum.
    let f = run(Command { log_cap: 1, ..cmd("printf 'abc\\377'") }).await;
    assert_eq!((f.log.as_str(), f.log_truncated), ("abc\u{fffd}", false));
    let f = run(cmd("printf 'ok \\377'")).await;
    assert_eq!(f.log, "ok \u{fffd}");
}

#[tokio::test]
async fn timestamps_bracket_the_run() {
    let now =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let before = now();
    let running = spawn(cmd("true")).unwrap();
    let started = running.started_at();
    let f = running.wait().await;
    let after = now();
    assert!(before <= started && started <= f.finished_at && f.finished_at <= after);
    assert_eq!(f.started_at, started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_runs() {
    let runs: Vec<_> = (0..40).map(|i| spawn(with_args("echo", &[&i.to_string()])).unwrap()).collect();
    for (i, r) in runs.into_iter().enumerate() {
        let f = tokio::time::timeout(HANG, r.wait()).await.expect("hung");
        assert_eq!((f.outcome, f.log), (Outcome::Succeeded, format!("{i}\n")));
    }
}

#[test]
fn handles_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<cronstack_exec::Running>();
    send_sync::<cronstack_exec::Log>();
    send_sync::<cronstack_exec::Killer>();
    send_sync::<Finished>();
    send_sync::<Command>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_is_read_fully_and_capped() {
    // 20 MB through a 1 MiB cap: counts every byte, keeps both ends.
    let f = run(cmd("head -c 20000000 /dev/zero | tr '\\0' x; echo END")).await;
    assert_eq!(f.outcome, Outcome::Succeeded);
    assert!(f.log_truncated);
    assert!(f.log.starts_with("xxxx") && f.log.ends_with("xxxxEND\n"));
    let (head, omitted, tail) = split_marker(&f.log);
    assert_eq!(head.len() as u64 + omitted + tail.len() as u64, 20_000_004);
    assert!(f.log.len() <= 1 << 20);
}

// Jobs spawned ahead and held at a gate.

#[tokio::test]
async fn held_jobs_run_nothing_until_their_gate_opens() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let gate = Gate::new().unwrap();
    let script = format!("echo ran >> '{}'; echo out \"$@\"", marker.display());
    let held: Vec<_> =
        (0..3).map(|i| gate.prepare(with_args(&script, &[&format!("{i} x")])).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists(), "a script ran before its gate opened");
    assert!(held.iter().all(|p| !group_gone(p.pid())), "a held process is gone");
    let at = Release::now();
    let running: Vec<_> = held.into_iter().map(|p| p.release(at)).collect();
    gate.open();
    for (i, r) in running.into_iter().enumerate() {
        let f = tokio::time::timeout(HANG, r.wait()).await.expect("run hung");
        assert_eq!(f.outcome, Outcome::Succeeded, "{f:?}");
        assert_eq!(f.log, format!("out {i} x\n"));
        assert_eq!(f.started_at, at.wall());
    }
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\nran\nran\n");
}

#[tokio::test]
async fn a_held_job_dropped_before_the_gate_opens_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, dropped) = (dir.path().join("kept"), dir.path().join("dropped"));
    let gate = Gate::new().unwrap();
    let a = gate.prepare(cmd(&format!("touch '{}'; sleep 300", dropped.display()))).unwrap();
    let b = gate.prepare(cmd(&format!("touch '{}'", kept.display()))).unwrap();
    let pgid = a.pid();
    drop(a);
    assert_group_gone(pgid).await;
    let b = b.release(Release::now());
    gate.open();
    let f = tokio::time::timeout(HANG, b.wait()).await.expect("run hung");
    assert_eq!(f.outcome, Outcome::Succeeded);
    assert!(kept.exists());
    assert!(!dropped.exists(), "a dropped held job ran its script");
}

#[tokio::test]
async fn a_gate_dropped_unopened_ends_its_jobs_without_running_them() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let gate = Gate::new().unwrap();
    let p = gate.prepare(cmd(&format!("touch '{}'", marker.display()))).unwrap();
    let running = p.release(Release::now());
    drop(gate);
    let f = tokio::time::timeout(HANG, running.wait()).await.expect("run hung");
    assert_eq!((f.outcome, f.exit_code), (Outcome::Failed, Some(125)));
    assert!(!marker.exists());
}

#[tokio::test]
async fn a_held_jobs_timeout_counts_from_its_release() {
    let gate = Gate::new().unwrap();
    let p = gate.prepare(Command { timeout: Some(Duration::from_millis(400)), ..cmd("sleep 300") }).unwrap();
    // Held longer than its timeout: the clock must not be running yet.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let running = p.release(Release::now());
    gate.open();
    let f = tokio::time::timeout(HANG, running.wait()).await.expect("run hung");
    assert_eq!(f.outcome, Outcome::TimedOut);
    assert!(
        f.finished_at - f.started_at >= 350,
        "timed out {} ms after release",
        f.finished_at - f.started_at
    );
}

#[tokio::test]
async fn a_held_jobs_stdin_reads_eof_after_the_gate_and_input_is_refused() {
    let gate = Gate::new().unwrap();
    let p = gate.prepare(cmd("cat; echo done")).unwrap();
    let running = p.release(Release::now());
    gate.open();
    let f = tokio::time::timeout(HANG, running.wait()).await.expect("run hung");
    assert_eq!(f.log, "done\n");
    let err = Gate::new().unwrap().prepare(Command { stdin: Some(b"x".to_vec()), ..cmd("cat") }).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_burst_of_held_jobs_all_run_when_the_gate_opens() {
    let gate = Gate::new().unwrap();
    let held: Vec<_> = (0..200).map(|_| gate.prepare(cmd("true")).unwrap()).collect();
    let at = Release::now();
    let running: Vec<_> = held.into_iter().map(|p| p.release(at)).collect();
    gate.open();
    for r in running {
        let f = tokio::time::timeout(HANG, r.wait()).await.expect("run hung");
        assert_eq!(f.outcome, Outcome::Succeeded);
    }
}

/// Jobs prepared at one gate from several threads at once (as the scheduler spawns a group's
/// processes): each waits at the gate, and opening it runs every one of them exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_prepared_at_one_gate_from_several_threads_each_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let gate = Gate::new().unwrap();
    let runtime = tokio::runtime::Handle::current();
    let script = format!("echo \"$1\" >> '{}'", marker.display());
    let held: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (gate, runtime, script) = (&gate, runtime.clone(), &script);
                s.spawn(move || {
                    let _entered = runtime.enter();
                    (0..25)
                        .map(|i| gate.prepare(with_args(script, &[&format!("{t}-{i}")])).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!marker.exists(), "a script ran before its gate opened");
    let at = Release::now();
    let running: Vec<_> = held.into_iter().map(|p| p.release(at)).collect();
    gate.open();
    for r in running {
        let f = tokio::time::timeout(HANG, r.wait()).await.expect("run hung");
        assert_eq!(f.outcome, Outcome::Succeeded, "{f:?}");
    }
    let mut ran: Vec<String> = std::fs::read_to_string(&marker).unwrap().lines().map(String::from).collect();
    ran.sort();
    let mut expected: Vec<String> = (0..4).flat_map(|t| (0..25).map(move |i| format!("{t}-{i}"))).collect();
    expected.sort();
    assert_eq!(ran, expected, "every job ran exactly once");
}

/// A secret written in pieces, with pauses that make each piece its own read, on stdout and
/// on stderr (kept apart, so their halves interleave in the log): the log, a follower and the
/// kept stdout only ever see `***`; a half that never completes is shown once the output ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_are_masked_before_the_log_even_across_reads() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let script = r#"printf 'key=s3cr'; sleep 0.2; printf 'et-XY' >&2; sleep 0.2; printf 'et-XY;'
        printf 'half=s3c' >&2; sleep 0.2; printf 'x\n' >&2
        echo "env=$TOKEN"; while [ ! -e "$1" ]; do sleep 0.02; done; printf 'tail s3cr'"#;
    let running = spawn(Command {
        capture_stdout: true,
        env: vec![("TOKEN".into(), "s3cret-XY".into())],
        redact: vec!["s3cret-XY".into(), String::new()],
        ..with_args(script, &[go.to_str().unwrap()])
    })
    .unwrap();
    let log = running.log();
    let (mut seen, mut pos) = (Vec::new(), 0);
    // Both streams' last lines: their pipes are read apart, in either order.
    let has = |s: &[u8], w: &[u8]| s.windows(w.len()).any(|x| x == w);
    read_until(&log, &mut seen, &mut pos, |s| has(s, b"env=***\n") && has(s, b"s3cx\n")).await;
    // Live: the job waits for `go`; what was followed so far has no secret in it. (How the
    // two streams interleave in the log depends on the machine's load: not asserted.)
    let live = String::from_utf8_lossy(&seen).to_string();
    assert!(!live.contains("s3cret") && live.matches("***").count() == 2, "{live}");
    std::fs::write(&go, b"").unwrap();
    follow_to_end(&log, &mut seen, pos).await;
    let f = tokio::time::timeout(HANG, running.wait()).await.unwrap();
    assert!(!f.log.contains("s3cret") && f.log.matches("***").count() == 2, "{}", f.log);
    assert!(f.log.contains("s3cx\n") && f.log.ends_with("tail s3cr"), "{}", f.log);
    assert_eq!(String::from_utf8(seen).unwrap(), f.log);
    assert_eq!(f.stdout.as_deref(), Some("key=***;env=***\ntail s3cr"));
}
