//! The LL-HLS media playlist reader, strict (the spec checker's) and lenient (the player's).
//! The body is `livepulse_fuzz::llhls_playlist`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::llhls_playlist(data));
