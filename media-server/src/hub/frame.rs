//! The unit the hub moves: one audio, video or script message, shared by reference.

use bytes::Bytes;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// FLV/RTMP video payload (5-byte AVC header + body for H.264).
    Video,
    /// FLV/RTMP audio payload (2-byte AAC header + body for AAC).
    Audio,
    /// AMF0 `onMetaData` script data.
    Script,
}

/// One media message on a stream's continuous timeline.
///
/// `payload` is the RTMP message body exactly as FLV carries it, so every output
/// forwards it without re-encoding and every viewer shares the same buffer.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Audio, video or script.
    pub kind: FrameKind,
    /// Decode timestamp in milliseconds, continuous across republishes.
    pub dts: u64,
    /// Composition time offset in milliseconds (PTS - DTS), video only.
    pub cts: i32,
    /// True for a video keyframe.
    pub keyframe: bool,
    /// True for a codec sequence header (AVC or AAC config).
    pub header: bool,
    /// Publish session this frame belongs to; changes on republish or takeover.
    pub epoch: u32,
    /// The message body.
    pub payload: Bytes,
}

impl Frame {
    /// The 32-bit RTMP/FLV timestamp of this frame.
    pub fn timestamp32(&self) -> u32 {
        (self.dts & 0xFFFF_FFFF) as u32
    }

    /// True for a video keyframe that is not a sequence header: a point a viewer may start at.
    pub fn is_sync_point(&self) -> bool {
        self.kind == FrameKind::Video && self.keyframe && !self.header
    }
}
