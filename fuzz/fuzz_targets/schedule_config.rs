//! A v1 schedule `config` (JSON): validated, compiled, round-tripped, then `next_after`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cronstack::fuzz::schedule_config(data));
