//! media-core's AudioSpecificConfig and ADTS parsers, each checked against its writer.
//! The body is `livepulse_fuzz::aac_config`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::aac_config(data));
