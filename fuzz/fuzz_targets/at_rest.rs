//! Fuzz target `at_rest`: see `seedfed_fuzz::decoders::at_rest` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::at_rest(data));
