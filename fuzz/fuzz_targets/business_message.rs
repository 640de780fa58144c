//! The business server's decoder of WebSocket text frames into client messages, with its size
//! and depth limits.
//! The body is `livepulse_fuzz::business_message`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::business_message(data));
