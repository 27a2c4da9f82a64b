//! Fuzz target `admission`: see `seedfed_fuzz::decoders::admission` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::admission(data));
