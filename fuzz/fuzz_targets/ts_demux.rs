//! media-core's TS demuxer on arbitrary bytes in arbitrary pieces, and a mux/demux round trip.
//! The body is `livepulse_fuzz::ts_demux`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livepulse_fuzz::ts_demux(data));
