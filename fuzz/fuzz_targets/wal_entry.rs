//! Fuzz target `wal_entry`: see `seedfed_fuzz::decoders::wal_entry` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::wal_entry(data));
