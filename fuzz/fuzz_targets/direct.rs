//! Fuzz target `direct`: see `seedfed_fuzz::decoders::direct` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::direct(data));
