//! Every JSON request body type of both API dialects, through their extractors.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cronstack::fuzz::request_bodies(data));
