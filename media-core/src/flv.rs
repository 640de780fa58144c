//! FLV container: file header and tag writing, an incremental tag reader, and parsing of the
//! audio/video tag headers that RTMP messages share with FLV.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Tag type of an audio tag.
pub const TAG_AUDIO: u8 = 8;
/// Tag type of a video tag.
pub const TAG_VIDEO: u8 = 9;
/// Tag type of a script data (metadata) tag.
pub const TAG_SCRIPT: u8 = 18;
/// Length of the AVC video tag header (frame type/codec, packet type, composition time).
pub const VIDEO_HEADER_LEN: usize = 5;
/// Length of the AAC audio tag header (format byte, packet type).
pub const AUDIO_HEADER_LEN: usize = 2;
/// Default largest tag body [`Reader`] accepts: the largest size FLV's 24-bit field can declare.
pub const DEFAULT_MAX_TAG_SIZE: usize = (1 << 24) - 1;
/// Video codec id of H.264/AVC.
pub const CODEC_AVC: u8 = 7;
/// Sound format of AAC.
pub const SOUND_AAC: u8 = 10;

const FILE_HEADER_LEN: usize = 9;
/// Length of an FLV tag header.
pub const TAG_HEADER_LEN: usize = 11;
const PREVIOUS_TAG_SIZE_LEN: usize = 4;
const MAX_HEADER_OFFSET: usize = 1024;

/// Errors from FLV parsing.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FlvError {
    /// The stream does not start with `FLV`.
    #[error("bad FLV signature")]
    BadSignature,
    /// The file header declares an impossible data offset.
    #[error("bad FLV header data offset {0}")]
    BadHeaderOffset(u32),
    /// A tag declares a body larger than the reader accepts.
    #[error("FLV tag of {size} bytes exceeds the limit of {max}")]
    TagTooLarge {
        /// Declared body size.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// The data ends inside the header or a tag.
    #[error("truncated FLV data")]
    Truncated,
    /// An audio or video tag body is shorter than its header.
    #[error("FLV tag body too short: need {need} bytes, have {have}")]
    TooShort {
        /// Bytes required.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// An AVC packet type other than 0, 1 or 2.
    #[error("unknown AVC packet type {0}")]
    UnknownPacketType(u8),
}

/// Returns the 9-byte FLV file header followed by PreviousTagSize0 (zero).
pub fn file_header(has_audio: bool, has_video: bool) -> [u8; 13] {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// The 11-byte tag header: type, 24-bit size, 24-bit timestamp plus extended byte, stream id 0.
pub fn tag_header(tag_type: u8, timestamp_ms: u32, data_len: u32) -> [u8; TAG_HEADER_LEN] {
    let size = (data_len & 0x00FF_FFFF).to_be_bytes();
    let ts = timestamp_ms.to_be_bytes();
    [
        tag_type & 0x1F,
        size[1],
        size[2],
        size[3],
        ts[1],
        ts[2],
        ts[3],
        ts[0],
        0,
        0,
        0,
    ]
}

/// Appends one tag: the 11-byte header (24-bit timestamp plus extended byte), `data`, and the
/// PreviousTagSize. `data` must be shorter than 16 MiB, which every RTMP message is.
pub fn write_tag(out: &mut BytesMut, tag_type: u8, timestamp_ms: u32, data: &[u8]) {
    let size = data.len() as u32 & 0x00FF_FFFF;
    out.reserve(TAG_HEADER_LEN + data.len() + PREVIOUS_TAG_SIZE_LEN);
    out.put_slice(&tag_header(tag_type, timestamp_ms, size));
    out.put_slice(data);
    out.put_u32(TAG_HEADER_LEN as u32 + size);
}

/// One FLV tag with its full (extended) timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    /// Tag type ([`TAG_AUDIO`], [`TAG_VIDEO`], [`TAG_SCRIPT`], ...).
    pub tag_type: u8,
    /// Timestamp in milliseconds.
    pub timestamp: u32,
    /// Tag body.
    pub data: Bytes,
}

/// Incremental reader of a whole FLV byte stream: the file header first, then tags.
#[derive(Debug)]
pub struct Reader {
    buf: BytesMut,
    header_done: bool,
    max_tag_size: usize,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    /// Creates a reader that accepts tags up to [`DEFAULT_MAX_TAG_SIZE`].
    pub fn new() -> Self {
        Self::with_max_tag_size(DEFAULT_MAX_TAG_SIZE)
    }

    /// Creates a reader that rejects tags whose declared body is larger than `n` bytes.
    pub fn with_max_tag_size(n: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            header_done: false,
            max_tag_size: n,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as part of a tag.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete tag, or `Ok(None)` when more bytes are needed.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, FlvError> {
        if !self.header_done && !self.read_file_header()? {
            return Ok(None);
        }
        let Some(header) = self.buf.get(..TAG_HEADER_LEN) else {
            return Ok(None);
        };
        let tag_type = header[0] & 0x1F;
        let size = be24(&header[1..4]) as usize;
        let timestamp = be24(&header[4..7]) | (u32::from(header[7]) << 24);
        if size > self.max_tag_size {
            return Err(FlvError::TagTooLarge {
                size,
                max: self.max_tag_size,
            });
        }
        if self.buf.len() < TAG_HEADER_LEN + size + PREVIOUS_TAG_SIZE_LEN {
            return Ok(None);
        }
        self.buf.advance(TAG_HEADER_LEN);
        let data = self.buf.split_to(size).freeze();
        self.buf.advance(PREVIOUS_TAG_SIZE_LEN);
        Ok(Some(Tag {
            tag_type,
            timestamp,
            data,
        }))
    }

    /// Consumes the file header and PreviousTagSize0; `Ok(false)` when more bytes are needed.
    fn read_file_header(&mut self) -> Result<bool, FlvError> {
        if self.buf.len() >= 3 && &self.buf[..3] != b"FLV" {
            return Err(FlvError::BadSignature);
        }
        let Some(header) = self.buf.get(..FILE_HEADER_LEN) else {
            return Ok(false);
        };
        let offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
        let offset_len = offset as usize;
        if !(FILE_HEADER_LEN..=MAX_HEADER_OFFSET).contains(&offset_len) {
            return Err(FlvError::BadHeaderOffset(offset));
        }
        if self.buf.len() < offset_len + PREVIOUS_TAG_SIZE_LEN {
            return Ok(false);
        }
        self.buf.advance(offset_len + PREVIOUS_TAG_SIZE_LEN);
        self.header_done = true;
        Ok(true)
    }
}

/// Parses a whole FLV file into its tags; a truncated header or last tag is an error.
pub fn parse_file(data: &[u8]) -> Result<Vec<Tag>, FlvError> {
    let mut reader = Reader::new();
    reader.push(data);
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag()? {
        tags.push(tag);
    }
    if reader.buffered() > 0 || !reader.header_done {
        return Err(FlvError::Truncated);
    }
    Ok(tags)
}

/// AVC packet type of a video tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacket {
    /// AVCDecoderConfigurationRecord.
    SequenceHeader,
    /// One access unit of length-prefixed NALUs.
    Nalu,
    /// End of sequence.
    EndOfSequence,
}

/// The fields of a video tag header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoInfo {
    /// Frame type is 1 (keyframe).
    pub keyframe: bool,
    /// Codec id ([`CODEC_AVC`] for H.264).
    pub codec_id: u8,
    /// AVC packet type; [`VideoPacket::Nalu`] for codecs other than AVC.
    pub packet: VideoPacket,
    /// Composition time offset (PTS − DTS) in ms; 0 for codecs other than AVC.
    pub composition_time: i32,
}

/// The AVC body of a video tag/RTMP video message (after the 5-byte header); empty if short.
pub fn video_body(data: &[u8]) -> &[u8] {
    data.get(VIDEO_HEADER_LEN..).unwrap_or_default()
}

/// The AAC body of an audio tag/RTMP audio message (after the 2-byte header); empty if short.
pub fn audio_body(data: &[u8]) -> &[u8] {
    data.get(AUDIO_HEADER_LEN..).unwrap_or_default()
}

/// Parses a video tag/RTMP video message header. For AVC the body is [`video_body`].
pub fn parse_video(data: &[u8]) -> Result<VideoInfo, FlvError> {
    let first = *data
        .first()
        .ok_or(FlvError::TooShort { need: 1, have: 0 })?;
    let keyframe = first >> 4 == 1;
    let codec_id = first & 0x0F;
    if codec_id != CODEC_AVC {
        return Ok(VideoInfo {
            keyframe,
            codec_id,
            packet: VideoPacket::Nalu,
            composition_time: 0,
        });
    }
    let header = data.get(..VIDEO_HEADER_LEN).ok_or(FlvError::TooShort {
        need: VIDEO_HEADER_LEN,
        have: data.len(),
    })?;
    let packet = match header[1] {
        0 => VideoPacket::SequenceHeader,
        1 => VideoPacket::Nalu,
        2 => VideoPacket::EndOfSequence,
        other => return Err(FlvError::UnknownPacketType(other)),
    };
    let composition_time = ((be24(&header[2..5]) << 8) as i32) >> 8;
    Ok(VideoInfo {
        keyframe,
        codec_id,
        packet,
        composition_time,
    })
}

/// The fields of an audio tag header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioInfo {
    /// Sound format ([`SOUND_AAC`] for AAC).
    pub sound_format: u8,
    /// AAC packet type is 0 (AudioSpecificConfig); always false for other formats.
    pub sequence_header: bool,
}

/// Parses an audio tag/RTMP audio message header. For AAC the body is [`audio_body`].
pub fn parse_audio(data: &[u8]) -> Result<AudioInfo, FlvError> {
    let first = *data
        .first()
        .ok_or(FlvError::TooShort { need: 1, have: 0 })?;
    let sound_format = first >> 4;
    if sound_format != SOUND_AAC {
        return Ok(AudioInfo {
            sound_format,
            sequence_header: false,
        });
    }
    let packet_type = *data.get(1).ok_or(FlvError::TooShort {
        need: AUDIO_HEADER_LEN,
        have: data.len(),
    })?;
    Ok(AudioInfo {
        sound_format,
        sequence_header: packet_type == 0,
    })
}

/// Builds an AVC video tag body: the 5-byte header followed by `body`.
pub fn avc_video_tag(
    keyframe: bool,
    packet: VideoPacket,
    composition_time: i32,
    body: &[u8],
) -> Vec<u8> {
    let frame_type: u8 = if keyframe { 1 } else { 2 };
    let packet_type = match packet {
        VideoPacket::SequenceHeader => 0,
        VideoPacket::Nalu => 1,
        VideoPacket::EndOfSequence => 2,
    };
    let cts = (composition_time as u32).to_be_bytes();
    let mut out = Vec::with_capacity(VIDEO_HEADER_LEN + body.len());
    out.extend_from_slice(&[
        (frame_type << 4) | CODEC_AVC,
        packet_type,
        cts[1],
        cts[2],
        cts[3],
    ]);
    out.extend_from_slice(body);
    out
}

/// Builds an AAC audio tag body: `0xAF`, the packet type, then `body`.
pub fn aac_audio_tag(sequence_header: bool, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(AUDIO_HEADER_LEN + body.len());
    out.extend_from_slice(&[0xAF, u8::from(!sequence_header)]);
    out.extend_from_slice(body);
    out
}

fn be24(b: &[u8]) -> u32 {
    b.iter()
        .take(3)
        .fold(0, |acc, &x| (acc << 8) | u32::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_bytes() {
        assert_eq!(
            file_header(true, true),
            [b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]
        );
        assert_eq!(file_header(false, true)[4], 1);
    }

    #[test]
    fn tag_bytes_and_round_trip_with_extended_timestamp() {
        let mut out = BytesMut::new();
        write_tag(&mut out, TAG_VIDEO, 0x1234_5678, b"abc");
        assert_eq!(
            &out[..],
            &[9, 0, 0, 3, 0x34, 0x56, 0x78, 0x12, 0, 0, 0, b'a', b'b', b'c', 0, 0, 0, 14]
        );
        let mut file = file_header(false, true).to_vec();
        file.extend_from_slice(&out);
        write_tag(&mut out, TAG_AUDIO, 7, &[]);
        file.extend_from_slice(&out[18..]);
        let tags = parse_file(&file).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(
            tags[0],
            Tag {
                tag_type: TAG_VIDEO,
                timestamp: 0x1234_5678,
                data: Bytes::from_static(b"abc")
            }
        );
        assert_eq!((tags[1].tag_type, tags[1].timestamp), (TAG_AUDIO, 7));
    }

    #[test]
    fn reader_is_incremental() {
        let mut file = file_header(true, false).to_vec();
        let mut tags = BytesMut::new();
        write_tag(&mut tags, TAG_SCRIPT, 1, b"meta");
        write_tag(&mut tags, TAG_AUDIO, 2, b"x");
        file.extend_from_slice(&tags);
        let mut reader = Reader::new();
        let mut got = Vec::new();
        for byte in file {
            reader.push(&[byte]);
            while let Some(tag) = reader.next_tag().unwrap() {
                got.push(tag.timestamp);
            }
        }
        assert_eq!(got, vec![1, 2]);
    }

    #[test]
    fn reader_errors() {
        let mut reader = Reader::new();
        reader.push(b"FLX\x01");
        assert_eq!(reader.next_tag(), Err(FlvError::BadSignature));

        let mut reader = Reader::with_max_tag_size(10);
        reader.push(&file_header(true, true));
        reader.push(&[9, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            reader.next_tag(),
            Err(FlvError::TagTooLarge { size: 11, max: 10 })
        );

        let mut file = file_header(true, true).to_vec();
        file.extend_from_slice(&[9, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(parse_file(&file), Err(FlvError::Truncated));
        assert_eq!(parse_file(b"FL"), Err(FlvError::Truncated));
    }

    #[test]
    fn video_header_round_trip_with_negative_cts() {
        let tag = avc_video_tag(true, VideoPacket::Nalu, -40, &[1, 2]);
        assert_eq!(tag, vec![0x17, 1, 0xFF, 0xFF, 0xD8, 1, 2]);
        let info = parse_video(&tag).unwrap();
        assert_eq!(
            info,
            VideoInfo {
                keyframe: true,
                codec_id: CODEC_AVC,
                packet: VideoPacket::Nalu,
                composition_time: -40
            }
        );
        let inter =
            parse_video(&avc_video_tag(false, VideoPacket::SequenceHeader, 67, &[])).unwrap();
        assert_eq!(
            (inter.keyframe, inter.packet, inter.composition_time),
            (false, VideoPacket::SequenceHeader, 67)
        );
        assert_eq!(
            parse_video(&[0x17, 1]),
            Err(FlvError::TooShort { need: 5, have: 2 })
        );
        assert_eq!(
            parse_video(&[0x17, 9, 0, 0, 0]),
            Err(FlvError::UnknownPacketType(9))
        );
    }

    #[test]
    fn audio_header() {
        let seq = aac_audio_tag(true, &[0x12, 0x10]);
        assert_eq!(seq, vec![0xAF, 0, 0x12, 0x10]);
        assert!(parse_audio(&seq).unwrap().sequence_header);
        let raw = parse_audio(&aac_audio_tag(false, &[1])).unwrap();
        assert_eq!((raw.sound_format, raw.sequence_header), (SOUND_AAC, false));
        assert!(parse_audio(&[0xAF]).is_err());
        assert_eq!(parse_audio(&[0x2F]).unwrap().sound_format, 2);
    }

    #[test]
    fn sample_file_parses() {
        let tags = parse_file(include_bytes!("../../assets/sample.flv")).unwrap();
        assert!(tags.iter().filter(|t| t.tag_type == TAG_VIDEO).count() >= 299);
        assert!(tags.iter().any(|t| t.tag_type == TAG_AUDIO));
    }
}
