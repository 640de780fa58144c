//! The unit the hub moves: one audio, video or script message, shared by reference, with its
//! wire forms built once for every viewer.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use media_core::fanout::{Class, Unit};
use media_core::flv;
use media_core::rtmp::{ChunkEncoder, MediaKind, MessageHeader};

/// Message stream id of the shared RTMP form: the id a play session's first `createStream`
/// gets.
pub const RTMP_STREAM_ID: u32 = 1;

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

impl FrameKind {
    /// The RTMP message kind.
    pub fn rtmp(self) -> MediaKind {
        match self {
            Self::Video => MediaKind::Video,
            Self::Audio => MediaKind::Audio,
            Self::Script => MediaKind::Data,
        }
    }

    /// The FLV tag type.
    pub fn tag_type(self) -> u8 {
        match self {
            Self::Video => flv::TAG_VIDEO,
            Self::Audio => flv::TAG_AUDIO,
            Self::Script => flv::TAG_SCRIPT,
        }
    }
}

/// A frame's bytes as each protocol sends them, built by the first viewer that needs them.
#[derive(Debug, Default)]
struct WireForms {
    rtmp: OnceLock<(u32, Bytes)>,
    flv: OnceLock<Bytes>,
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
    /// Wire forms shared by every viewer of this frame.
    wire: Arc<WireForms>,
}

impl Frame {
    /// A frame with no wire form built yet.
    pub fn new(
        kind: FrameKind,
        dts: u64,
        cts: i32,
        keyframe: bool,
        header: bool,
        epoch: u32,
        payload: Bytes,
    ) -> Self {
        Self {
            kind,
            dts,
            cts,
            keyframe,
            header,
            epoch,
            payload,
            wire: Arc::default(),
        }
    }

    /// The 32-bit RTMP/FLV timestamp of this frame.
    pub fn timestamp32(&self) -> u32 {
        (self.dts & 0xFFFF_FFFF) as u32
    }

    /// True for a video keyframe that is not a sequence header: a point a viewer may start at.
    pub fn is_sync_point(&self) -> bool {
        self.kind == FrameKind::Video && self.keyframe && !self.header
    }

    /// This frame chunked at `chunk_size` on [`RTMP_STREAM_ID`], with an absolute-timestamp
    /// header, built once. `None` if it was built at another chunk size.
    pub fn rtmp_wire(&self, chunk_size: u32) -> Option<Bytes> {
        let (size, bytes) = self.wire.rtmp.get_or_init(|| {
            let enc = ChunkEncoder::new(chunk_size);
            let header = MessageHeader {
                type_id: self.kind.rtmp().type_id(),
                stream_id: RTMP_STREAM_ID,
                timestamp: self.timestamp32(),
            };
            let bytes = enc.to_bytes(self.kind.rtmp().csid(), &header, &self.payload);
            (chunk_size, bytes)
        });
        (*size == chunk_size).then(|| bytes.clone())
    }

    /// This frame as a whole FLV tag (header, body, previous-tag-size), built once.
    pub fn flv_tag(&self) -> Bytes {
        self.wire
            .flv
            .get_or_init(|| {
                let mut out = BytesMut::with_capacity(flv::TAG_HEADER_LEN + self.payload.len() + 4);
                flv::write_tag(
                    &mut out,
                    self.kind.tag_type(),
                    self.timestamp32(),
                    &self.payload,
                );
                out.freeze()
            })
            .clone()
    }
}

impl Unit for Frame {
    fn class(&self) -> Class {
        match (self.kind, self.header) {
            (FrameKind::Script, _) => Class::Script,
            (FrameKind::Video, true) => Class::VideoHeader,
            (FrameKind::Audio, true) => Class::AudioHeader,
            (FrameKind::Audio, false) => Class::Audio,
            _ if self.is_sync_point() => Class::Keyframe,
            _ => Class::Video,
        }
    }

    fn size(&self) -> usize {
        self.payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms_are_built_once_and_shared() {
        let f = Frame::new(
            FrameKind::Video,
            40,
            0,
            true,
            false,
            1,
            Bytes::from(vec![0x17; 9000]),
        );
        let a = f.rtmp_wire(4096).expect("built");
        let b = f.clone().rtmp_wire(4096).expect("shared");
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert!(f.rtmp_wire(128).is_none(), "another chunk size falls back");
        let tag = f.flv_tag();
        assert_eq!(tag.len(), 11 + 9000 + 4);
        assert_eq!(tag[0], flv::TAG_VIDEO);
        assert_eq!(&tag[tag.len() - 4..], &(11u32 + 9000).to_be_bytes());
        assert_eq!(f.clone().flv_tag().as_ptr(), tag.as_ptr());
    }
}
