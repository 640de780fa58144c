//! The edge's request path checks, cache key and Range header handling.
//! The body is `livepulse_fuzz::edge_request`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::edge_request(data));
