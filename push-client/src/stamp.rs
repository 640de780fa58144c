//! Wall-clock stamping: an SEI NAL with microseconds since the Unix epoch in every video frame,
//! so players downstream can measure end-to-end latency.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use media_core::avc::AvcConfig;
use media_core::flv::{self, VideoPacket};
use media_core::sei;

use crate::source::{MediaTag, TagKind};

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Adds an SEI wall-clock stamp to each H.264 frame it is given.
#[derive(Debug, Default)]
pub struct Stamper {
    nalu_length_size: Option<u8>,
}

impl Stamper {
    /// A stamper that learns the NAL length size from the AVC sequence header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns `tag` with a stamp of `now_micros` prepended to its NAL units; sequence headers
    /// are learned from, and anything that is not an H.264 frame passes through unchanged.
    pub fn stamp(&mut self, tag: MediaTag, now_micros: u64) -> MediaTag {
        if tag.kind != TagKind::Video {
            return tag;
        }
        let Ok(info) = flv::parse_video(&tag.payload) else {
            return tag;
        };
        if info.codec_id != flv::CODEC_AVC {
            return tag;
        }
        let Some(body) = tag.payload.get(flv::VIDEO_HEADER_LEN..) else {
            return tag;
        };
        match info.packet {
            VideoPacket::SequenceHeader => {
                self.nalu_length_size = AvcConfig::parse(body).ok().map(|c| c.nalu_length_size);
                tag
            }
            VideoPacket::Nalu => {
                let Some(size) = self.nalu_length_size else {
                    return tag;
                };
                match sei::insert_stamp(body, size, now_micros) {
                    Ok(stamped) => {
                        let mut payload = Vec::with_capacity(flv::VIDEO_HEADER_LEN + stamped.len());
                        payload.extend_from_slice(&tag.payload[..flv::VIDEO_HEADER_LEN]);
                        payload.extend_from_slice(&stamped);
                        MediaTag {
                            payload: Bytes::from(payload),
                            ..tag
                        }
                    }
                    Err(_) => tag,
                }
            }
            VideoPacket::EndOfSequence => tag,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{FlvLoop, MediaSource};

    #[test]
    fn every_sample_frame_carries_a_readable_stamp() {
        let mut src = FlvLoop::sample().expect("sample");
        let mut stamper = Stamper::new();
        let mut size = None;
        for h in src.headers() {
            if h.kind == TagKind::Video {
                let cfg =
                    AvcConfig::parse(&h.payload[flv::VIDEO_HEADER_LEN..]).expect("avc config");
                size = Some(cfg.nalu_length_size);
            }
            stamper.stamp(h, 0);
        }
        let size = size.expect("sample has an AVC header");
        let mut video = 0;
        for i in 0..400u64 {
            let tag = src.next_tag().expect("sample loops");
            let original = tag.payload.clone();
            let out = stamper.stamp(tag, 1_700_000_000_000_000 + i);
            if out.kind == TagKind::Video {
                video += 1;
                let body = &out.payload[flv::VIDEO_HEADER_LEN..];
                assert_eq!(sei::find_stamp(body, size), Some(1_700_000_000_000_000 + i));
                assert_eq!(
                    out.payload[..flv::VIDEO_HEADER_LEN],
                    original[..flv::VIDEO_HEADER_LEN]
                );
            } else {
                assert_eq!(out.payload, original, "audio passes through");
            }
        }
        assert!(video > 100);
    }
}
