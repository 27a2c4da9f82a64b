//! Fuzz target `dkg_codec`: see `seedfed_fuzz::decoders::dkg_codec` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedfed_fuzz::decoders::dkg_codec(data));
