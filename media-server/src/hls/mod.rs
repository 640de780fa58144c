//! HLS output: segmenter tasks, the in-memory segment store and its HTTP handlers.

mod output;
mod routes;
mod store;

pub use output::run;
pub use routes::{playlist, segment};
pub use store::{HlsStore, HlsStream};
