//! Fuzz target `tx_payload`: see `seedfed_fuzz::decoders::tx_payload` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::tx_payload(data));
