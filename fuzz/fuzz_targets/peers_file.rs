//! Fuzz target `peers_file`: see `seedfed_fuzz::decoders::peers_file` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::peers_file(data));
