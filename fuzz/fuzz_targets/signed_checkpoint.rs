//! Fuzz target `signed_checkpoint`: see `seedfed_fuzz::decoders::signed_checkpoint` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::signed_checkpoint(data));
