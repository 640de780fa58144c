//! The built-in sample (`assets/sample.flv`) decoded for unit tests: its configuration records
//! and its frames in file order.

use bytes::Bytes;

use crate::flv::{self, VideoPacket};

/// One audio or video frame of the sample; times in ms, the body without its FLV header.
pub(crate) struct SampleFrame {
    pub video: bool,
    pub dts_ms: u64,
    pub cts_ms: i32,
    /// A video keyframe; true for every audio frame.
    pub keyframe: bool,
    pub data: Bytes,
}

/// The sample's AVC record, AudioSpecificConfig and frames in file order.
pub(crate) struct SampleStream {
    pub record: Vec<u8>,
    pub asc: Vec<u8>,
    pub frames: Vec<SampleFrame>,
}

/// Decodes the built-in sample.
pub(crate) fn sample_stream() -> SampleStream {
    let tags = flv::parse_file(include_bytes!("../../assets/sample.flv")).unwrap();
    let (mut record, mut asc, mut frames) = (Vec::new(), Vec::new(), Vec::new());
    for tag in tags {
        let dts_ms = u64::from(tag.timestamp);
        if tag.tag_type == flv::TAG_VIDEO {
            let info = flv::parse_video(&tag.data).unwrap();
            let body = tag.data.slice(flv::VIDEO_HEADER_LEN..);
            match info.packet {
                VideoPacket::SequenceHeader => record = body.to_vec(),
                VideoPacket::Nalu => frames.push(SampleFrame {
                    video: true,
                    dts_ms,
                    cts_ms: info.composition_time,
                    keyframe: info.keyframe,
                    data: body,
                }),
                VideoPacket::EndOfSequence => {}
            }
        } else if tag.tag_type == flv::TAG_AUDIO {
            let body = tag.data.slice(flv::AUDIO_HEADER_LEN..);
            if flv::parse_audio(&tag.data).unwrap().sequence_header {
                asc = body.to_vec();
            } else {
                frames.push(SampleFrame {
                    video: false,
                    dts_ms,
                    cts_ms: 0,
                    keyframe: true,
                    data: body,
                });
            }
        }
    }
    SampleStream {
        record,
        asc,
        frames,
    }
}
