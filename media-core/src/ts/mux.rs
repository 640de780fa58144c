//! The MPEG-TS muxer: PAT/PMT, H.264 and AAC PES packets with per-PID continuity counters.

use super::packet::{write_section, write_unit, Adaptation, Continuity};
use super::pes::{self, STREAM_ID_AUDIO, STREAM_ID_VIDEO};
use super::psi;
use super::{PID_AUDIO, PID_PAT, PID_PMT, PID_VIDEO, STREAM_TYPE_AAC, STREAM_TYPE_H264};
use crate::avc::NAL_AUD;

/// How far the PCR runs behind the DTS of the PES carrying it (0.7 s, as ffmpeg does).
pub const PCR_DELAY_90K: u64 = 63_000;

const AUD: [u8; 6] = [0, 0, 0, 1, NAL_AUD, 0xF0];

/// Writes a single-program transport stream with one H.264 and/or one AAC stream.
///
/// Timestamps are 90 kHz values written as given (modulo 2^33). Every video PES carries a PCR
/// of `dts - PCR_DELAY_90K` on the video PID (on the audio PID when there is no video).
#[derive(Debug, Clone)]
pub struct Muxer {
    has_video: bool,
    has_audio: bool,
    cc_pat: Continuity,
    cc_pmt: Continuity,
    cc_video: Continuity,
    cc_audio: Continuity,
}

impl Muxer {
    /// Creates a muxer for the given streams; continuity counters start at 0.
    pub fn new(has_video: bool, has_audio: bool) -> Self {
        Self {
            has_video,
            has_audio,
            cc_pat: Continuity::default(),
            cc_pmt: Continuity::default(),
            cc_video: Continuity::default(),
            cc_audio: Continuity::default(),
        }
    }

    /// Whether the PMT declares a video stream.
    pub fn has_video(&self) -> bool {
        self.has_video
    }

    /// Whether the PMT declares an audio stream.
    pub fn has_audio(&self) -> bool {
        self.has_audio
    }

    /// Appends one PAT and one PMT packet (H.264 as 0x1B, AAC ADTS as 0x0F).
    pub fn write_tables(&mut self, out: &mut Vec<u8>) {
        write_section(out, PID_PAT, &mut self.cc_pat, &psi::pat());
        let mut streams = Vec::with_capacity(2);
        if self.has_video {
            streams.push((STREAM_TYPE_H264, PID_VIDEO));
        }
        if self.has_audio {
            streams.push((STREAM_TYPE_AAC, PID_AUDIO));
        }
        let pmt = psi::pmt(self.pcr_pid(), &streams);
        write_section(out, PID_PMT, &mut self.cc_pmt, &pmt);
    }

    /// Appends one access unit in Annex B form as a video PES (stream id 0xE0). An AUD is
    /// prepended when the unit does not start with one; keyframes set random_access_indicator.
    pub fn write_video(
        &mut self,
        out: &mut Vec<u8>,
        dts_90k: u64,
        pts_90k: u64,
        keyframe: bool,
        annexb: &[u8],
    ) {
        let aud: &[u8] = if starts_with_aud(annexb) { &[] } else { &AUD };
        let mut header = pes::header(
            STREAM_ID_VIDEO,
            pts_90k,
            Some(dts_90k),
            aud.len() + annexb.len(),
        );
        header.extend_from_slice(aud);
        let adaptation = Adaptation {
            random_access: keyframe,
            pcr: Some(dts_90k.saturating_sub(PCR_DELAY_90K)),
        };
        write_unit(
            out,
            PID_VIDEO,
            &mut self.cc_video,
            adaptation,
            &header,
            annexb,
        );
    }

    /// Appends one audio PES (stream id 0xC0) holding one or more ADTS frames. Without video,
    /// each audio PES carries the PCR and random_access_indicator.
    pub fn write_audio(&mut self, out: &mut Vec<u8>, pts_90k: u64, adts: &[u8]) {
        let header = pes::header(STREAM_ID_AUDIO, pts_90k, None, adts.len());
        let adaptation = if self.has_video {
            Adaptation::default()
        } else {
            Adaptation {
                random_access: true,
                pcr: Some(pts_90k.saturating_sub(PCR_DELAY_90K)),
            }
        };
        write_unit(
            out,
            PID_AUDIO,
            &mut self.cc_audio,
            adaptation,
            &header,
            adts,
        );
    }

    fn pcr_pid(&self) -> Option<u16> {
        if self.has_video {
            Some(PID_VIDEO)
        } else if self.has_audio {
            Some(PID_AUDIO)
        } else {
            None
        }
    }
}

/// True when the first NAL unit after a leading start code is an access unit delimiter.
fn starts_with_aud(annexb: &[u8]) -> bool {
    let rest = annexb
        .strip_prefix(&[0, 0, 0, 1][..])
        .or_else(|| annexb.strip_prefix(&[0, 0, 1][..]));
    rest.and_then(|r| r.first())
        .is_some_and(|b| b & 0x1F == NAL_AUD)
}
