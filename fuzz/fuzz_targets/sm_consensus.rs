//! Fuzz target `sm_consensus`: see `seedfed_fuzz::machines::consensus` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::machines::consensus(data));
