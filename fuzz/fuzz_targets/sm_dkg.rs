//! Fuzz target `sm_dkg`: see `seedfed_fuzz::machines::dkg` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::machines::dkg(data));
