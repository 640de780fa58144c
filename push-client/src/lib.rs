//! RTMP publisher that paces media in real time, loops a file with continuous timestamps,
//! stamps wall-clock time into the video and reconnects by itself.

pub mod cli;
pub mod pace;
#[cfg(feature = "transcode")]
pub mod pattern;
pub mod publish;
pub mod reconnect;
pub mod source;
pub mod stamp;
pub mod stats;
pub mod url;

pub use publish::{publish, PublishOptions};
pub use reconnect::{run, Backoff};
pub use source::{FlvLoop, MediaSource, MediaTag, TagKind, SAMPLE_FLV};
pub use stats::{PublishSnapshot, PublishState, PublishStats};
pub use url::RtmpUrl;
