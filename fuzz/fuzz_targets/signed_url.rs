//! Signed-URL tokens and the paths they guard, on the origin and the edge.
//! The body is `livepulse_fuzz::signed_url`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::signed_url(data));
