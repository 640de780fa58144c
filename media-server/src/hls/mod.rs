//! HLS output: segmenter tasks, the in-memory segment store, its HTTP handlers and the
//! adaptive bitrate master playlist.

mod master;
mod output;
mod routes;
mod store;

pub(crate) use master::variant;
pub use master::{master_playlist, render_master, Variant};
pub use output::run;
pub(crate) use routes::{media, PLAYLIST_TYPE};
pub use routes::{playlist, segment};
pub use store::{HlsStore, HlsStream};
