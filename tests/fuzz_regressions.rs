//! The fuzz targets' checks (`cronstack::fuzz`, run by `fuzz/run` under libFuzzer) replayed in
//! the normal test suite on the committed seed corpus (`fuzz/seeds/<target>/`) and on every
//! input that ever crashed a target (`fuzz/regressions/<target>/`): a fixed bug stays fixed
//! without a nightly compiler.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 3] = [
    ("cron", cronstack::fuzz::cron),
    ("schedule_config", cronstack::fuzz::schedule_config),
    ("request_bodies", cronstack::fuzz::request_bodies),
];

fn replay(dir: &Path, target: Target) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|f| f.to_string_lossy().starts_with('.')) {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(outcome.is_ok(), "{} fails its fuzz checks", path.display());
        n += 1;
    }
    n
}

#[test]
fn seed_corpus_and_past_crashes_pass_the_fuzz_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in TARGETS {
        let seeds = replay(&root.join("seeds").join(name), target);
        assert!(seeds >= 10, "fuzz/seeds/{name} holds {seeds} inputs");
        replay(&root.join("regressions").join(name), target);
    }
}

#[test]
fn hostile_bodies_are_refused_without_a_panic() {
    let deep_array = "[".repeat(100_000);
    let deep_object = "{\"a\":".repeat(50_000);
    let deep_config = format!("{{\"config\": {}}}", "[".repeat(100_000));
    let long_string = format!("{{\"name\": \"{}\"}}", "x".repeat(300 * 1024));
    let inputs: Vec<&[u8]> = vec![
        deep_array.as_bytes(),
        deep_object.as_bytes(),
        deep_config.as_bytes(),
        long_string.as_bytes(),
        b"\xff\xfe\xfd",
        b"{\"name\": \"\\ud800\"}",
        b"{\"stack_id\": 1e400}",
        b"{\"args\": \"\\u0000\"}",
        b"\0",
    ];
    for data in inputs {
        for (_, target) in TARGETS {
            target(data);
        }
    }
}
