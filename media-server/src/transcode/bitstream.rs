//! Encoder output to hub payloads: Annex B access units to AVCC, SPS/PPS to a sequence header.

use bytes::Bytes;
use media_core::avc::{self, AvcConfig};
use media_core::flv::{self, VideoPacket};

/// One encoded access unit, split for the hub.
#[derive(Debug, PartialEq)]
pub struct AccessUnit {
    /// The decoder configuration, when the unit carried SPS and PPS.
    pub config: Option<AvcConfig>,
    /// The remaining NAL units (no SPS, PPS or AUD) with 4-byte length prefixes.
    pub avcc: Vec<u8>,
}

/// Splits an Annex B access unit from the encoder.
pub fn split_annexb(data: &[u8]) -> AccessUnit {
    let nalus = avc::annexb_nalus(data);
    let sets = |kind: u8| -> Vec<Bytes> {
        nalus
            .iter()
            .filter(|n| avc::nal_type(n) == kind)
            .map(|n| Bytes::copy_from_slice(n))
            .collect()
    };
    let (sps, pps) = (sets(avc::NAL_SPS), sets(avc::NAL_PPS));
    let config = match (sps.first(), pps.is_empty()) {
        (Some(first), false) if first.len() >= 4 => Some(AvcConfig {
            profile: first[1],
            compatibility: first[2],
            level: first[3],
            nalu_length_size: 4,
            sps,
            pps,
        }),
        _ => None,
    };
    let mut avcc = Vec::with_capacity(data.len());
    for n in nalus
        .iter()
        .filter(|n| !matches!(avc::nal_type(n), avc::NAL_SPS | avc::NAL_PPS | avc::NAL_AUD))
    {
        avcc.extend_from_slice(&(n.len() as u32).to_be_bytes());
        avcc.extend_from_slice(n);
    }
    AccessUnit { config, avcc }
}

/// The FLV video body of an AVC sequence header.
pub fn sequence_header(config: &AvcConfig) -> Bytes {
    Bytes::from(flv::avc_video_tag(
        true,
        VideoPacket::SequenceHeader,
        0,
        &config.to_bytes(),
    ))
}

/// The FLV video body of one coded frame.
pub fn video_frame(keyframe: bool, composition_time: i32, avcc: &[u8]) -> Bytes {
    Bytes::from(flv::avc_video_tag(
        keyframe,
        VideoPacket::Nalu,
        composition_time,
        avcc,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_sets_become_the_config_and_leave_the_frame() {
        let sps = [0x67, 0x64, 0x00, 0x1f, 0xac];
        let pps = [0x68, 0xee, 0x3c, 0xb0];
        let idr = [0x65, 0x88, 0x84];
        let mut data = vec![0, 0, 0, 1, 0x09, 0xf0];
        for n in [&sps[..], &pps, &idr] {
            data.extend_from_slice(&[0, 0, 0, 1]);
            data.extend_from_slice(n);
        }
        let au = split_annexb(&data);
        let cfg = au.config.expect("config");
        assert_eq!(cfg.codec_string(), "avc1.64001f");
        assert_eq!(cfg.sps, vec![Bytes::copy_from_slice(&sps)]);
        assert_eq!(au.avcc, [0, 0, 0, 3, 0x65, 0x88, 0x84]);
        let plain = split_annexb(&[0, 0, 1, 0x41, 0x9a]);
        assert_eq!(plain.config, None);
        assert_eq!(plain.avcc, [0, 0, 0, 2, 0x41, 0x9a]);
    }
}
