//! Fuzz target `repair_message`: see `seedfed_fuzz::decoders::repair_message` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::repair_message(data));
