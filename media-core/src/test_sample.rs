//! Test vectors shared by the unit tests: the built-in sample (`assets/sample.flv`) decoded into
//! its configuration records and frames in file order, a hand-made 1280x720 AVC record, and
//! fMP4 samples.

use bytes::Bytes;

use crate::flv::{self, VideoPacket};
use crate::fmp4::Sample;

/// An SPS of 1280x720 Main profile, level 3.1.
pub(crate) const SPS_720P: [u8; 25] = [
    0x67, 0x4d, 0x40, 0x1f, 0xec, 0xa0, 0x28, 0x02, 0xdd, 0x80, 0x88, 0x00, 0x00, 0x03, 0x00, 0x08,
    0x00, 0x00, 0x03, 0x01, 0x90, 0x78, 0xc1, 0x8c, 0xb0,
];
/// A PPS to go with [`SPS_720P`].
pub(crate) const PPS_720P: [u8; 4] = [0x68, 0xeb, 0xec, 0xb2];

/// AVCDecoderConfigurationRecord of [`SPS_720P`] and [`PPS_720P`]: version 1,
/// profile/compatibility/level from the SPS, 4-byte NALU lengths (0xFF), one SPS (0xE1), one
/// PPS.
pub(crate) fn record_720p() -> Vec<u8> {
    [
        &[1, 0x4d, 0x40, 0x1f, 0xff, 0xe1, 0, 25][..],
        &SPS_720P,
        &[1, 0, 4],
        &PPS_720P,
    ]
    .concat()
}

/// An fMP4 sample.
pub(crate) fn fmp4_sample(
    duration: u32,
    cts_offset: i32,
    is_sync: bool,
    data: &[u8],
) -> Sample<'_> {
    Sample {
        duration,
        cts_offset,
        is_sync,
        data,
    }
}

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
