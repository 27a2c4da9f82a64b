//! Fuzz target `ledger_state`: see `seedfed_fuzz::decoders::ledger_state` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::ledger_state(data));
