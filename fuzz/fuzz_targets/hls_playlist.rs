//! The player's HLS playlist parsing and validation (EXTINF, EXT-X-TARGETDURATION,
//! EXT-X-MEDIA-SEQUENCE, URI resolution).
//! The body is `livepulse_fuzz::hls_playlist`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::hls_playlist(data));
