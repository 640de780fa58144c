//! FLV-style audio and video tag bodies, shared by HTTP-FLV and RTMP play: sequence headers,
//! keyframes, SEI stamps, and the continuous media timeline that drives the buffer model.

use std::time::Duration;

use media_core::avc::AvcConfig;
use media_core::flv::{self, VideoPacket, VIDEO_HEADER_LEN};

use crate::latency::stamp_in_avcc;
use crate::stats::{Stats, Track};

/// Frame duration assumed until two frames have been seen.
const DEFAULT_FRAME_MS: i64 = 40;
/// A DTS step larger than this (or backwards) starts a new media timeline.
const MAX_STEP_MS: i64 = 10_000;
/// Steps larger than this are gaps, not frame durations.
const MAX_FRAME_MS: i64 = 1_000;

/// Maps raw DTS values onto one continuous, never decreasing media timeline.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    offset: i64,
    last_raw: Option<i64>,
    frame_ms: i64,
    end: i64,
}

impl Timeline {
    /// The `[start, end)` media range of a frame with DTS `raw`.
    pub(crate) fn map(&mut self, raw: i64) -> (Duration, Duration) {
        if self.frame_ms == 0 {
            self.frame_ms = DEFAULT_FRAME_MS;
        }
        match self.last_raw {
            Some(last) if (0..=MAX_STEP_MS).contains(&(raw - last)) => {
                let step = raw - last;
                if step > 0 && step <= MAX_FRAME_MS {
                    self.frame_ms = step;
                }
            }
            _ => self.offset = self.end - raw,
        }
        self.last_raw = Some(raw);
        let start = (raw + self.offset).max(0);
        self.end = self.end.max(start + self.frame_ms);
        (ms(start), ms(self.end))
    }

    /// The next frame continues from the current end whatever its DTS (a new connection).
    pub(crate) fn rebase(&mut self) {
        self.last_raw = None;
    }
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

/// Per-connection state for FLV tag bodies.
#[derive(Debug, Default)]
pub(crate) struct TagHandler {
    nalu_length_size: u8,
    saw_video: bool,
    saw_keyframe: bool,
    timeline: Timeline,
}

impl TagHandler {
    /// Starts a new connection: sequence headers, the first keyframe and a join burst are
    /// expected again.
    pub(crate) fn new_connection(&mut self, stats: &mut Stats) {
        self.saw_video = false;
        self.saw_keyframe = false;
        self.timeline.rebase();
        stats.new_timeline();
        stats.rejoin();
    }

    /// True once media has played on this connection.
    pub(crate) fn started(&self) -> bool {
        self.saw_keyframe
    }

    /// A video tag body received now.
    pub(crate) fn video(&mut self, stats: &mut Stats, dts: u32, body: &[u8]) {
        self.saw_video = true;
        let info = match flv::parse_video(body) {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(url = stats.url(), "bad video tag: {e}");
                stats.error("bad_video_tag");
                return;
            }
        };
        let payload = body.get(VIDEO_HEADER_LEN..).unwrap_or_default();
        match info.packet {
            VideoPacket::SequenceHeader => match AvcConfig::parse(payload) {
                Ok(config) => self.nalu_length_size = config.nalu_length_size,
                Err(e) => {
                    tracing::debug!(url = stats.url(), "bad AVC sequence header: {e}");
                    stats.error("bad_video_tag");
                }
            },
            VideoPacket::EndOfSequence => {}
            VideoPacket::Nalu => {
                let stamp = (stats.stamps()
                    && info.codec_id == flv::CODEC_AVC
                    && self.nalu_length_size > 0)
                    .then(|| stamp_in_avcc(payload, self.nalu_length_size))
                    .flatten();
                if !self.saw_keyframe && !info.keyframe {
                    stats.error("start_without_keyframe");
                }
                stats.frame(Track::Video, i64::from(dts), info.keyframe, stamp);
                self.saw_keyframe |= info.keyframe;
                if self.saw_keyframe {
                    let (start, end) = self.timeline.map(i64::from(dts));
                    stats.media(start, end);
                }
            }
        }
    }

    /// An audio tag body received now.
    pub(crate) fn audio(&mut self, stats: &mut Stats, dts: u32, body: &[u8]) {
        match flv::parse_audio(body) {
            Ok(info) if info.sequence_header => {}
            Ok(_) => {
                stats.frame(Track::Audio, i64::from(dts), false, None);
                if !self.saw_video {
                    let (start, end) = self.timeline.map(i64::from(dts));
                    stats.media(start, end);
                }
            }
            Err(e) => {
                tracing::debug!(url = stats.url(), "bad audio tag: {e}");
                stats.error("bad_audio_tag");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qoe::QoeConfig;
    use crate::summary::Protocol;
    use media_core::sei::insert_stamp;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn stats() -> Stats {
        Stats::new(
            "rtmp://h/a/b",
            Some(Protocol::Rtmp),
            QoeConfig {
                startup_buffer: Duration::ZERO,
                rebuffer: ms(500),
            },
        )
    }

    /// An AVCDecoderConfigurationRecord with 4-byte NALU lengths and one SPS and PPS.
    fn sequence_header() -> Vec<u8> {
        let sps = [0x67, 0x42, 0xC0, 0x1E, 0x8C, 0x68, 0x14, 0x1F, 0x20];
        let pps = [0x68, 0xCE, 0x3C, 0x80];
        let mut record = vec![1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, sps.len() as u8];
        record.extend_from_slice(&sps);
        record.extend_from_slice(&[1, 0, pps.len() as u8]);
        record.extend_from_slice(&pps);
        flv::avc_video_tag(true, VideoPacket::SequenceHeader, 0, &record)
    }

    fn frame(keyframe: bool) -> Vec<u8> {
        let nalu: &[u8] = if keyframe {
            &[0x65, 0x88, 0x84]
        } else {
            &[0x41, 0x9A, 0x02]
        };
        let mut avcc = (nalu.len() as u32).to_be_bytes().to_vec();
        avcc.extend_from_slice(nalu);
        avcc
    }

    #[test]
    fn timeline_is_continuous_across_jumps_and_rebases() {
        let mut t = Timeline::default();
        assert_eq!(t.map(5000), (ms(0), ms(40)));
        assert_eq!(t.map(5033), (ms(33), ms(66)));
        // Backwards: continue from the end.
        assert_eq!(t.map(100), (ms(66), ms(99)));
        // A big jump forward too.
        assert_eq!(t.map(60_000), (ms(99), ms(132)));
        t.rebase();
        assert_eq!(t.map(59_000), (ms(132), ms(165)));
    }

    #[test]
    fn stamped_frames_after_the_sequence_header_give_latency() {
        let mut s = stats();
        let mut h = TagHandler::default();
        h.video(&mut s, 0, &sequence_header());
        let stamped = insert_stamp(&frame(true), 4, crate::latency::unix_micros() - 80_000)
            .expect("valid frame");
        h.video(
            &mut s,
            0,
            &flv::avc_video_tag(true, VideoPacket::Nalu, 0, &stamped),
        );
        h.video(
            &mut s,
            40,
            &flv::avc_video_tag(false, VideoPacket::Nalu, 0, &frame(false)),
        );
        h.audio(&mut s, 10, &flv::aac_audio_tag(true, &[0x12, 0x10]));
        h.audio(&mut s, 20, &flv::aac_audio_tag(false, &[1, 2, 3]));
        assert!(h.started());
        let sum = s.summary();
        assert_eq!((sum.video_frames, sum.audio_frames), (2, 1));
        assert_eq!(sum.latency.samples, 1);
        assert!(sum.latency.p50_ms.expect("a sample") >= 79.0);
        assert_eq!(sum.first_video_keyframe, Some(true));
        assert!(sum.startup_ms.is_some());
    }

    #[test]
    fn playback_waits_for_a_keyframe() {
        let mut s = stats();
        let mut h = TagHandler::default();
        h.video(&mut s, 0, &sequence_header());
        h.video(
            &mut s,
            0,
            &flv::avc_video_tag(false, VideoPacket::Nalu, 0, &frame(false)),
        );
        assert!(!h.started());
        assert!(s.summary().startup_ms.is_none());
        assert_eq!(s.summary().first_video_keyframe, Some(false));
        assert_eq!(s.summary().errors.get("start_without_keyframe"), Some(&1));
        h.video(&mut s, 40, &[0x17]);
        assert_eq!(s.summary().errors.get("bad_video_tag"), Some(&1));
    }
}
