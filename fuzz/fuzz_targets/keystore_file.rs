//! Fuzz target `keystore_file`: see `seedfed_fuzz::decoders::keystore_file` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::keystore_file(data));
