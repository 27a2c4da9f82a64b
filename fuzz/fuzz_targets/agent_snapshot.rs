//! Fuzz target `agent_snapshot`: see `seedfed_fuzz::decoders::agent_snapshot` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::agent_snapshot(data));
