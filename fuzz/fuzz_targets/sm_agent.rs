//! Fuzz target `sm_agent`: see `seedfed_fuzz::machines::agent` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::machines::agent(data));
