//! The cron/schedule parser: `expression` or `expression\ntime zone`, then `next_after`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cronstack::fuzz::cron(data));
