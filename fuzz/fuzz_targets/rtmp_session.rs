//! The RTMP chunk decoder and command decoder, through both session ends, on arbitrary bytes
//! delivered in arbitrary pieces. Requests are accepted as they come, so the fuzzer reaches
//! publish, play and media handling. Nothing may panic, and memory stays within the limits.
//! The body is `livepulse_fuzz::rtmp_session`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::rtmp_session(data));
