//! Fuzz target `signed_tx`: see `seedfed_fuzz::decoders::signed_tx` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::signed_tx(data));
