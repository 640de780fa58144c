//! The fuzz targets' bodies, shared with the stable test that replays the corpora
//! (`tests/tests/fuzz_corpora.rs`).

mod targets;

pub use targets::*;
