//! Fuzz target `light_client`: see `seedfed_fuzz::decoders::light_client` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::light_client(data));
