//! Fuzz target `api_body`: see `seedfed_fuzz::decoders::api_body` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::api_body(data));
