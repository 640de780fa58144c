//! media-core's AVCDecoderConfigurationRecord and SPS parsers, AVCC and Annex B framing in both
//! directions, and SEI clock stamps found and inserted.
//! The body is `livepulse_fuzz::avc_config`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::avc_config(data));
