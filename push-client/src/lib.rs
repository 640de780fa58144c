//! RTMP publisher that paces media in real time, looping a file with continuous timestamps.

pub mod metadata;
pub mod pace;
pub mod publish;
pub mod source;
pub mod url;

pub use publish::{publish, PublishStats};
pub use source::{FlvLoop, MediaTag, TagKind, SAMPLE_FLV};
pub use url::RtmpUrl;
