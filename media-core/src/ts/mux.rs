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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::{crc32_mpeg2, PACKET_SIZE, SYNC_BYTE};

    fn packets(data: &[u8]) -> Vec<&[u8]> {
        assert_eq!(data.len() % PACKET_SIZE, 0);
        let packets: Vec<&[u8]> = data.chunks(PACKET_SIZE).collect();
        assert!(packets.iter().all(|p| p[0] == SYNC_BYTE));
        packets
    }

    fn pid(p: &[u8]) -> u16 {
        (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2])
    }

    #[test]
    fn pat_and_pmt_bytes() {
        let mut out = Vec::new();
        Muxer::new(true, true).write_tables(&mut out);
        let p = packets(&out);
        assert_eq!(p.len(), 2);
        let pat = [
            0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00,
            0x01, 0xF0, 0x00, 0x2A, 0xB1, 0x04, 0xB2,
        ];
        assert_eq!(&p[0][..pat.len()], &pat);
        assert!(p[0][pat.len()..].iter().all(|&b| b == 0xFF));
        let pmt_len = 3 + 0x17;
        assert_eq!(
            &p[1][..5 + pmt_len - 4],
            &[
                0x47, 0x50, 0x00, 0x10, 0x00, 0x02, 0xB0, 0x17, 0x00, 0x01, 0xC1, 0x00, 0x00, 0xE1,
                0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x00, 0x0F, 0xE1, 0x01, 0xF0, 0x00,
            ][..]
        );
        assert_eq!(crc32_mpeg2(&p[1][5..5 + pmt_len]), 0);
    }

    #[test]
    fn continuity_counters_wrap_mod_16() {
        let mut muxer = Muxer::new(true, false);
        let mut out = Vec::new();
        for _ in 0..20 {
            muxer.write_tables(&mut out);
            muxer.write_video(&mut out, 0, 0, false, &[0, 0, 0, 1, 0x41, 1]);
        }
        for target in [PID_PAT, PID_PMT, PID_VIDEO] {
            let ccs: Vec<u8> = packets(&out)
                .into_iter()
                .filter(|p| pid(p) == target)
                .map(|p| p[3] & 0x0F)
                .collect();
            let expected: Vec<u8> = (0..20).map(|i| i % 16).collect();
            assert_eq!(ccs, expected, "pid {target:#x}");
        }
    }

    #[test]
    fn keyframe_has_random_access_pcr_and_stuffed_last_packet() {
        let frame: Vec<u8> = [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x65]
            .into_iter()
            .chain((0..400).map(|i| (i % 200 + 1) as u8))
            .collect();
        let mut out = Vec::new();
        Muxer::new(true, true).write_video(
            &mut out,
            90_000 + 63_000,
            96_000 + 63_000,
            true,
            &frame,
        );
        let p = packets(&out);
        assert_eq!(p.len(), 3);
        let first = p[0];
        assert_eq!(first[1] & 0x40, 0x40, "PUSI");
        assert_eq!(first[3] & 0x30, 0x30, "adaptation + payload");
        assert_eq!(&first[4..6], &[7, 0x50], "length 7, random access + PCR");
        assert_eq!(
            &first[6..12],
            &[0x00, 0x00, 0xAF, 0xC8, 0x7E, 0x00],
            "PCR base 90000"
        );
        assert_eq!(&first[12..16], &[0, 0, 1, 0xE0]);
        assert_eq!(
            &first[12 + 19..12 + 25],
            &frame[..6],
            "AUD already present, not repeated"
        );
        let middle = p[1];
        assert_eq!(middle[3] & 0x30, 0x10, "payload only");
        let last = p[2];
        assert_eq!(last[3] & 0x30, 0x30);
        let af_len = usize::from(last[4]);
        assert_eq!(last[5], 0, "no flags");
        assert!(last[6..5 + af_len].iter().all(|&b| b == 0xFF));
        assert!(last.ends_with(&frame[frame.len() - (PACKET_SIZE - 5 - af_len)..]));
    }

    #[test]
    fn aud_is_prepended_only_when_missing() {
        let mut with_aud = Vec::new();
        Muxer::new(true, false).write_video(
            &mut with_aud,
            0,
            0,
            false,
            &[0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x41],
        );
        let mut without = Vec::new();
        Muxer::new(true, false).write_video(&mut without, 0, 0, false, &[0, 0, 1, 0x41]);
        let payload = |p: &[u8]| {
            let start = 5 + usize::from(p[4]);
            p[start + 14..].to_vec()
        };
        assert_eq!(payload(&with_aud), vec![0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x41]);
        assert_eq!(
            payload(&without),
            vec![0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x41]
        );
    }
}
