//! HLS: cutting the live stream into MPEG-TS segments and rendering the sliding-window playlist;
//! [`ll`] packages low-latency HLS in fMP4 parts.

pub mod ll;
mod playlist;
mod segmenter;

pub use playlist::{ListedSegment, Playlist};
pub use segmenter::{Segment, Segmenter, SegmenterConfig, TS_OFFSET_90K};

use crate::avc::AvcError;
use thiserror::Error;

/// Errors from segmenting.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HlsError {
    /// Video arrived before [`Segmenter::set_avc_config`].
    #[error("video frame before the AVC sequence header")]
    NoAvcConfig,
    /// Audio arrived before [`Segmenter::set_aac_config`].
    #[error("audio frame before the AAC sequence header")]
    NoAacConfig,
    /// A raw AAC frame too large for an ADTS header.
    #[error("AAC frame of {0} bytes is too large for ADTS")]
    AudioFrameTooLarge(usize),
    /// The video frame's NALU framing is broken.
    #[error(transparent)]
    Avc(#[from] AvcError),
}
