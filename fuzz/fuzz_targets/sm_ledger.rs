//! Fuzz target `sm_ledger`: see `seedfed_fuzz::machines::ledger` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::machines::ledger(data));
