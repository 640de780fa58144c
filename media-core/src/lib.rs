//! Sans-I/O media code shared by every livepulse crate.
//!
//! Everything here works on byte slices and returns values or errors; nothing touches
//! sockets, files or clocks, so every parser can be unit-tested and fuzzed byte for byte.

#![warn(missing_docs)]

pub mod aac;
pub mod avc;
mod bits;
pub mod fanout;
pub mod flv;
pub mod fmp4;
pub mod hls;
pub mod name;
pub mod rtmp;
pub mod sei;
#[cfg(test)]
mod test_sample;
pub mod timestamp;
pub mod token;
pub mod ts;
