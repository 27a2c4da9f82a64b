//! Fuzz target `lms_codec`: see `seedfed_fuzz::decoders::lms_codec` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::lms_codec(data));
