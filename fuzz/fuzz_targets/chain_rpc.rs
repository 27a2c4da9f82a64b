//! Fuzz target `chain_rpc`: see `seedfed_fuzz::decoders::chain_rpc` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::chain_rpc(data));
