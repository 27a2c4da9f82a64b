//! Fuzz target `consensus_message`: see `seedfed_fuzz::decoders::consensus_message` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::consensus_message(data));
