//! media-core's FLV file parser and incremental reader, and the video and audio tag headers,
//! sequence headers and frames of every tag read.
//! The body is `livepulse_fuzz::flv_tag`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::flv_tag(data));
