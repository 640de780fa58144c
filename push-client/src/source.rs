//! Media sources: an FLV file played in a loop with continuous, monotonic timestamps.

use bytes::Bytes;
use media_core::flv::{self, Tag, VideoPacket};
use rml_rtmp::sessions::StreamMetadata;

use crate::metadata;

/// The built-in sample: 10 s of 640x360@30 H.264 High + AAC stereo (see `assets/make-sample.sh`).
pub static SAMPLE_FLV: &[u8] = include_bytes!("../../assets/sample.flv");

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    /// Video message.
    Video,
    /// Audio message.
    Audio,
}

/// One media message to publish.
#[derive(Debug, Clone)]
pub struct MediaTag {
    /// Audio or video.
    pub kind: TagKind,
    /// Decode timestamp in ms, monotonic across loops.
    pub dts: u64,
    /// True for a video keyframe or a sequence header.
    pub key: bool,
    /// RTMP/FLV message body.
    pub payload: Bytes,
}

/// Where published media comes from.
pub trait MediaSource: Send {
    /// Sequence headers, sent once at the start of every publish session.
    fn headers(&self) -> Vec<MediaTag>;
    /// Stream metadata to announce, if any.
    fn metadata(&self) -> Option<StreamMetadata>;
    /// The next media message; timestamps never go back.
    fn next_tag(&mut self) -> anyhow::Result<MediaTag>;
    /// Skips to the next video keyframe and returns it (the next message for audio-only media).
    fn next_keyframe(&mut self) -> anyhow::Result<MediaTag>;
}

/// Plays an FLV file forever: sequence headers once, then media with timestamps that keep
/// growing across the loop point.
#[derive(Debug, Clone)]
pub struct FlvLoop {
    headers: Vec<MediaTag>,
    media: Vec<MediaTag>,
    metadata: Option<StreamMetadata>,
    loop_len: u64,
    next: usize,
    loops: u64,
}

impl FlvLoop {
    /// The built-in sample.
    pub fn sample() -> anyhow::Result<Self> {
        Self::from_bytes(SAMPLE_FLV)
    }

    /// Parses a whole FLV file.
    pub fn from_bytes(data: &[u8]) -> anyhow::Result<Self> {
        let tags = flv::parse_file(data)?;
        let mut headers = Vec::new();
        let mut media = Vec::new();
        let mut meta = None;
        for Tag {
            tag_type,
            timestamp,
            data,
        } in tags
        {
            let (kind, header, key) = match tag_type {
                flv::TAG_VIDEO => {
                    let info = flv::parse_video(&data)?;
                    if info.packet == VideoPacket::EndOfSequence {
                        // A loop continues past the file's end; its end-of-sequence marker would not.
                        continue;
                    }
                    let header = info.packet == VideoPacket::SequenceHeader;
                    (TagKind::Video, header, info.keyframe)
                }
                flv::TAG_AUDIO => {
                    let info = flv::parse_audio(&data)?;
                    (TagKind::Audio, info.sequence_header, false)
                }
                flv::TAG_SCRIPT => {
                    meta = meta.or_else(|| metadata::from_script(&data));
                    continue;
                }
                _ => continue,
            };
            let tag = MediaTag {
                kind,
                dts: u64::from(timestamp),
                key: key || header,
                payload: data,
            };
            if header {
                headers.push(tag);
            } else {
                media.push(tag);
            }
        }
        let first = media.first().map_or(0, |t| t.dts);
        for t in &mut media {
            t.dts = t.dts.saturating_sub(first);
        }
        let last = media.iter().map(|t| t.dts).max().unwrap_or(0);
        let frame = average_video_interval(&media).unwrap_or(33);
        if media.is_empty() {
            anyhow::bail!("FLV file has no audio or video");
        }
        Ok(Self {
            headers,
            media,
            metadata: meta,
            loop_len: last + frame,
            next: 0,
            loops: 0,
        })
    }

    /// Length of one loop in ms.
    pub fn loop_len(&self) -> u64 {
        self.loop_len
    }

    /// Completed loops so far.
    pub fn loops(&self) -> u64 {
        self.loops
    }

    /// The next media message, forever.
    pub fn next_media(&mut self) -> MediaTag {
        if self.next >= self.media.len() {
            self.next = 0;
            self.loops += 1;
        }
        let mut tag = self.media[self.next].clone();
        self.next += 1;
        tag.dts += self.loops * self.loop_len;
        tag
    }
}

impl MediaSource for FlvLoop {
    fn headers(&self) -> Vec<MediaTag> {
        self.headers.clone()
    }

    fn metadata(&self) -> Option<StreamMetadata> {
        self.metadata.clone()
    }

    fn next_tag(&mut self) -> anyhow::Result<MediaTag> {
        Ok(self.next_media())
    }

    fn next_keyframe(&mut self) -> anyhow::Result<MediaTag> {
        let has_video = self.media.iter().any(|t| t.kind == TagKind::Video);
        loop {
            let tag = self.next_media();
            if !has_video || (tag.kind == TagKind::Video && tag.key) {
                return Ok(tag);
            }
        }
    }
}

fn average_video_interval(media: &[MediaTag]) -> Option<u64> {
    let video: Vec<u64> = media
        .iter()
        .filter(|t| t.kind == TagKind::Video)
        .map(|t| t.dts)
        .collect();
    let (first, last) = (video.first()?, video.last()?);
    let n = video.len().checked_sub(1).filter(|n| *n > 0)? as u64;
    Some((last - first) / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_loops_with_monotonic_timestamps() {
        let mut src = FlvLoop::sample().expect("sample parses");
        assert_eq!(src.headers.len(), 2, "AVC and AAC sequence headers");
        assert!(src.metadata.is_some());
        let per_loop = src.media.len();
        let mut last_video = None;
        let mut first_is_key = false;
        for i in 0..per_loop * 3 + 5 {
            let t = src.next_media();
            if i == 0 {
                first_is_key = t.key;
            }
            if t.kind == TagKind::Video {
                if let Some(prev) = last_video {
                    assert!(t.dts > prev, "video dts {} after {prev}", t.dts);
                }
                last_video = Some(t.dts);
            }
        }
        assert!(first_is_key || src.media[0].kind == TagKind::Audio);
        assert_eq!(src.loops(), 3);
        assert!((9_900..10_200).contains(&src.loop_len()));
    }
}
