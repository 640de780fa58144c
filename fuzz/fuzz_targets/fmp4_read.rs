//! The fMP4 reader (init segments and `moof` + `mdat` fragments), as the LL-HLS player reads
//! parts from the network.
//! The body is `livepulse_fuzz::fmp4_read`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::fmp4_read(data));
