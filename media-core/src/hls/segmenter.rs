//! The HLS segmenter: turns timestamped AVCC video and raw AAC frames into MPEG-TS segments
//! cut at keyframes.

use super::HlsError;
use crate::aac::{AudioSpecificConfig, ADTS_HEADER_LEN};
use crate::avc::{avcc_nalus, nal_type, AvcConfig, NAL_AUD, START_CODE};
use crate::ts::Muxer;
use bytes::Bytes;
use std::time::Duration;

/// Constant offset added to every output timestamp (1 s at 90 kHz) so that PCR, which runs
/// [`crate::ts::PCR_DELAY_90K`] behind DTS, never goes below zero.
pub const TS_OFFSET_90K: u64 = 90_000;

const AUD_NALU: [u8; 2] = [NAL_AUD, 0xF0];
const AUDIO_FRAMES_PER_PES: usize = 5;
const MAX_ADTS_PAYLOAD: usize = 0x1FFF - ADTS_HEADER_LEN;

/// When segments are cut.
#[derive(Debug, Clone)]
pub struct SegmenterConfig {
    /// A new segment starts at the first keyframe at or after this much time.
    pub target_duration: Duration,
    /// No segment lasts longer: a video stream whose keyframes are further apart is cut at
    /// the first frame past it anyway, and the segment after the cut is marked as not
    /// starting with a keyframe. Audio-only streams (every AAC frame is a sync point) cut at
    /// the first frame past `min(target_duration, max_segment_duration)`.
    pub max_segment_duration: Duration,
    /// No segment grows past this many bytes (a frame that would overflow it starts the next
    /// segment), whatever the timestamps say.
    pub max_segment_bytes: usize,
}

impl Default for SegmenterConfig {
    /// 2 s target, 4 s and 32 MiB maximum.
    fn default() -> Self {
        Self {
            target_duration: Duration::from_secs(2),
            max_segment_duration: Duration::from_secs(4),
            max_segment_bytes: 32 << 20,
        }
    }
}

/// One finished MPEG-TS segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// 0, 1, 2, ... per segmenter.
    pub index: u64,
    /// Duration in seconds.
    pub duration: f64,
    /// DTS of the first frame, in the input's milliseconds.
    pub start_dts_ms: u64,
    /// The segment starts with a video keyframe (or is audio-only, where every frame is one);
    /// false after a cut forced by the maximum duration or size.
    pub keyframe_start: bool,
    /// The TS bytes: PAT, PMT, then the frames.
    pub data: Bytes,
}

/// The segment being written.
struct OpenSegment {
    index: u64,
    keyframe_start: bool,
    start_dts_ms: u64,
    last_dts_ms: u64,
    frame_ms: u64,
    frames: usize,
    data: Vec<u8>,
}

/// ADTS frames waiting to be written as one PES.
#[derive(Default)]
struct AudioBatch {
    data: Vec<u8>,
    pts_90k: u64,
    frames: usize,
}

/// Cuts a live stream into TS segments; see the crate's HLS notes on timing.
pub struct Segmenter {
    config: SegmenterConfig,
    avc: Option<AvcConfig>,
    aac: Option<AudioSpecificConfig>,
    muxer: Muxer,
    current: Option<OpenSegment>,
    next_index: u64,
    audio: AudioBatch,
    last_video_dts_ms: Option<u64>,
    /// A little over the last segment's size: the next one's initial capacity.
    last_len: usize,
}

impl Segmenter {
    /// Creates a segmenter; call the `set_*_config` methods before pushing frames.
    pub fn new(config: SegmenterConfig) -> Self {
        Self {
            config,
            avc: None,
            aac: None,
            muxer: Muxer::new(false, false),
            current: None,
            next_index: 0,
            audio: AudioBatch::default(),
            last_video_dts_ms: None,
            last_len: 0,
        }
    }

    /// Sets the AVC sequence header; the stream then counts as having video.
    pub fn set_avc_config(&mut self, cfg: AvcConfig) {
        self.avc = Some(cfg);
    }

    /// Sets the AAC sequence header; the stream then counts as having audio.
    pub fn set_aac_config(&mut self, cfg: AudioSpecificConfig) {
        self.aac = Some(cfg);
    }

    /// Adds one AVCC access unit. Returns the finished previous segment when this keyframe
    /// cuts a new one. Frames before the first keyframe are dropped.
    pub fn push_video(
        &mut self,
        dts_ms: u64,
        composition_time_ms: i32,
        keyframe: bool,
        avcc: &[u8],
    ) -> Result<Option<Segment>, HlsError> {
        let avc = self.avc.as_ref().ok_or(HlsError::NoAvcConfig)?;
        let nalus = avcc_nalus(avcc, avc.nalu_length_size)?;
        let mut annexb = Vec::with_capacity(avcc.len() + 64);
        annexb.extend_from_slice(&START_CODE);
        annexb.extend_from_slice(&AUD_NALU);
        if keyframe {
            annexb.extend_from_slice(&avc.annexb_parameter_sets());
        }
        for nalu in nalus.into_iter().filter(|n| nal_type(n) != NAL_AUD) {
            annexb.extend_from_slice(&START_CODE);
            annexb.extend_from_slice(nalu);
        }
        let frame_ms = self
            .last_video_dts_ms
            .map(|last| dts_ms.saturating_sub(last))
            .filter(|&d| d > 0);
        self.last_video_dts_ms = Some(dts_ms);
        if self.current.is_none() && !keyframe {
            return Ok(None);
        }
        // A keyframe cuts once the target is reached; any frame cuts at the maximum.
        let cut = if keyframe {
            self.cut_due(dts_ms, self.config.target_duration)
        } else {
            self.lasted(dts_ms, self.config.max_segment_duration)
        };
        let finished = if cut || self.overflows(annexb.len()) {
            self.finish(Some(dts_ms))
        } else {
            None
        };
        let pts_ms = dts_ms.saturating_add(u64::try_from(composition_time_ms).unwrap_or(0));
        self.open_if_needed(dts_ms, keyframe);
        if let Some(segment) = self.current.as_mut() {
            if let Some(frame_ms) = frame_ms {
                segment.frame_ms = frame_ms;
            }
            segment.last_dts_ms = segment.last_dts_ms.max(dts_ms);
            segment.frames += 1;
            self.muxer.write_video(
                &mut segment.data,
                to_90k(dts_ms),
                to_90k(pts_ms),
                keyframe,
                &annexb,
            );
        }
        Ok(finished)
    }

    /// Adds one raw AAC frame as ADTS. With video, audio before the first keyframe is dropped;
    /// audio-only streams cut by time. Up to five frames share one PES.
    pub fn push_audio(&mut self, dts_ms: u64, raw_aac: &[u8]) -> Result<Option<Segment>, HlsError> {
        let aac = self.aac.ok_or(HlsError::NoAacConfig)?;
        if raw_aac.len() > MAX_ADTS_PAYLOAD {
            return Err(HlsError::AudioFrameTooLarge(raw_aac.len()));
        }
        let mut finished = None;
        if self.avc.is_some() {
            if self.current.is_none() {
                return Ok(None);
            }
        } else {
            let limit = self
                .config
                .target_duration
                .min(self.config.max_segment_duration);
            if self.cut_due(dts_ms, limit) || self.overflows(raw_aac.len()) {
                finished = self.finish(Some(dts_ms));
            }
            self.open_if_needed(dts_ms, true);
        }
        if !self.muxer.has_audio() {
            return Ok(finished);
        }
        if let Some(segment) = self.current.as_mut() {
            segment.last_dts_ms = segment.last_dts_ms.max(dts_ms);
            if self.avc.is_none() {
                segment.frame_ms = aac.frame_duration_ms().round() as u64;
            }
            if self.audio.frames == 0 {
                self.audio.pts_90k = to_90k(dts_ms);
            }
            self.audio
                .data
                .extend_from_slice(&aac.adts_header(raw_aac.len()));
            self.audio.data.extend_from_slice(raw_aac);
            self.audio.frames += 1;
            segment.frames += 1;
            if self.audio.frames >= AUDIO_FRAMES_PER_PES {
                write_audio(&mut self.muxer, &mut self.audio, &mut segment.data);
            }
        }
        Ok(finished)
    }

    /// Finishes the current segment (end of stream or republish); the next segment again
    /// waits for a keyframe.
    pub fn flush(&mut self) -> Option<Segment> {
        self.last_video_dts_ms = None;
        self.finish(None)
    }

    /// True when a segment is open and has lasted `limit`, or the stream layout changed since
    /// its PMT was written.
    fn cut_due(&self, dts_ms: u64, limit: Duration) -> bool {
        let layout_changed = self.muxer.has_video() != self.avc.is_some()
            || self.muxer.has_audio() != self.aac.is_some();
        self.current.is_some() && layout_changed || self.lasted(dts_ms, limit)
    }

    /// True when a segment is open and has lasted `limit` at `dts_ms`.
    fn lasted(&self, dts_ms: u64, limit: Duration) -> bool {
        self.current.as_ref().is_some_and(|segment| {
            Duration::from_millis(dts_ms.saturating_sub(segment.start_dts_ms)) >= limit
        })
    }

    /// True when adding `len` more bytes would take the open segment, which already holds a
    /// frame, past the size limit.
    fn overflows(&self, len: usize) -> bool {
        self.current.as_ref().is_some_and(|segment| {
            segment.frames > 0
                && segment.data.len().saturating_add(len) > self.config.max_segment_bytes
        })
    }

    /// Starts a segment (PAT + PMT) at `dts_ms` unless one is open.
    fn open_if_needed(&mut self, dts_ms: u64, keyframe_start: bool) {
        let (video, audio) = (self.avc.is_some(), self.aac.is_some());
        self.current.get_or_insert_with(|| {
            if self.muxer.has_video() != video || self.muxer.has_audio() != audio {
                self.muxer = Muxer::new(video, audio);
            }
            let mut data = Vec::with_capacity(self.last_len.clamp(64 << 10, 8 << 20));
            self.muxer.write_tables(&mut data);
            self.audio = AudioBatch::default();
            let index = self.next_index;
            self.next_index += 1;
            OpenSegment {
                index,
                keyframe_start,
                start_dts_ms: dts_ms,
                last_dts_ms: dts_ms,
                frame_ms: 0,
                frames: 0,
                data,
            }
        });
    }

    /// Closes the open segment; its duration runs to `next_start_ms`, or past its last frame.
    fn finish(&mut self, next_start_ms: Option<u64>) -> Option<Segment> {
        let mut segment = self.current.take()?;
        write_audio(&mut self.muxer, &mut self.audio, &mut segment.data);
        // The bytes are kept for the whole playlist window: no spare capacity with them.
        segment.data.shrink_to_fit();
        self.last_len = segment.data.len() + segment.data.len() / 8;
        let end_ms = next_start_ms.unwrap_or(segment.last_dts_ms.saturating_add(segment.frame_ms));
        Some(Segment {
            index: segment.index,
            duration: end_ms.saturating_sub(segment.start_dts_ms) as f64 / 1000.0,
            start_dts_ms: segment.start_dts_ms,
            keyframe_start: segment.keyframe_start,
            data: Bytes::from(segment.data),
        })
    }
}

/// Writes the batched ADTS frames, if any, as one audio PES.
fn write_audio(muxer: &mut Muxer, batch: &mut AudioBatch, out: &mut Vec<u8>) {
    if batch.frames > 0 {
        muxer.write_audio(out, batch.pts_90k, &batch.data);
        batch.data.clear();
        batch.frames = 0;
    }
}

/// Converts input milliseconds to output 90 kHz ticks, including [`TS_OFFSET_90K`].
fn to_90k(ms: u64) -> u64 {
    ms.wrapping_mul(90).wrapping_add(TS_OFFSET_90K)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avc::NAL_IDR;
    use crate::flv::{self, Tag, VideoPacket};
    use crate::ts::{Demuxer, StreamKind, PACKET_SIZE, PID_PAT, PID_PMT, PID_VIDEO};

    fn sample_tags() -> Vec<Tag> {
        flv::parse_file(include_bytes!("../../../assets/sample.flv")).unwrap()
    }

    /// Feeds the sample `laps` times with continuous timestamps and flushes.
    fn segment_sample(laps: u64) -> Vec<Segment> {
        let tags = sample_tags();
        let lap_ms = tags.iter().map(|t| u64::from(t.timestamp)).max().unwrap() + 33;
        let mut segmenter = Segmenter::new(SegmenterConfig::default());
        let mut segments = Vec::new();
        for lap in 0..laps {
            for tag in &tags {
                let ts = u64::from(tag.timestamp) + lap * lap_ms;
                let finished = match tag.tag_type {
                    flv::TAG_VIDEO => {
                        let info = flv::parse_video(&tag.data).unwrap();
                        let body = flv::video_body(&tag.data);
                        match info.packet {
                            VideoPacket::SequenceHeader => {
                                segmenter.set_avc_config(AvcConfig::parse(body).unwrap());
                                None
                            }
                            VideoPacket::Nalu => segmenter
                                .push_video(ts, info.composition_time, info.keyframe, body)
                                .unwrap(),
                            VideoPacket::EndOfSequence => None,
                        }
                    }
                    flv::TAG_AUDIO => {
                        let info = flv::parse_audio(&tag.data).unwrap();
                        let body = flv::audio_body(&tag.data);
                        if info.sequence_header {
                            segmenter.set_aac_config(AudioSpecificConfig::parse(body).unwrap());
                            None
                        } else {
                            segmenter.push_audio(ts, body).unwrap()
                        }
                    }
                    _ => None,
                };
                segments.extend(finished);
            }
        }
        segments.extend(segmenter.flush());
        segments
    }

    fn pid(packet: &[u8]) -> u16 {
        (u16::from(packet[1] & 0x1F) << 8) | u16::from(packet[2])
    }

    #[test]
    fn sample_looped_three_times() {
        let segments = segment_sample(3);
        assert_eq!(segments.len(), 15);
        let mut all = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            assert_eq!(segment.index, i as u64);
            assert!(segment.keyframe_start);
            assert!(
                (1.9..=2.2).contains(&segment.duration),
                "{}",
                segment.duration
            );
            let data = &segment.data;
            assert_eq!(data.len() % PACKET_SIZE, 0);
            assert_eq!(pid(&data[..]), PID_PAT);
            assert_eq!(pid(&data[PACKET_SIZE..]), PID_PMT);
            let first_es = &data[2 * PACKET_SIZE..];
            assert_eq!(pid(first_es), PID_VIDEO);
            assert_eq!(first_es[5] & 0x40, 0x40, "random access");

            let mut demuxer = Demuxer::new();
            let mut packets = demuxer.push(data).unwrap();
            packets.extend(demuxer.flush());
            let first = &packets[0];
            assert_eq!(first.kind, StreamKind::Video);
            let nal_types: Vec<u8> = crate::avc::annexb_nalus(&first.data)
                .iter()
                .map(|n| nal_type(n))
                .collect();
            assert_eq!(&nal_types[..3], &[NAL_AUD, 7, 8]);
            assert!(nal_types.contains(&NAL_IDR));
            assert_eq!(first.dts, segment.start_dts_ms * 90 + TS_OFFSET_90K);
            all.extend_from_slice(data);
        }
        for pair in segments.windows(2) {
            let expected = (pair[1].start_dts_ms - pair[0].start_dts_ms) as f64 / 1000.0;
            assert_eq!(pair[0].duration, expected);
        }

        let mut demuxer = Demuxer::new();
        let mut packets = demuxer.push(&all).unwrap();
        packets.extend(demuxer.flush());
        assert_eq!(demuxer.continuity_errors(), 0);
        for kind in [StreamKind::Video, StreamKind::Audio] {
            let dts: Vec<u64> = packets
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| p.dts)
                .collect();
            assert!(dts.len() > 100);
            assert!(
                dts.windows(2).all(|w| w[0] < w[1]),
                "{kind:?} DTS not monotonic"
            );
        }
        let video = packets.iter().filter(|p| p.kind == StreamKind::Video);
        assert!(video
            .clone()
            .all(|p| p.pts >= p.dts && p.dts >= TS_OFFSET_90K));
        assert!(
            video.clone().any(|p| p.pts > p.dts),
            "B-frames keep their offsets"
        );
    }

    #[test]
    fn frames_before_first_keyframe_and_configs_are_required() {
        let mut segmenter = Segmenter::new(SegmenterConfig::default());
        assert_eq!(
            segmenter.push_video(0, 0, true, &[]).unwrap_err(),
            HlsError::NoAvcConfig
        );
        assert_eq!(
            segmenter.push_audio(0, &[1]).unwrap_err(),
            HlsError::NoAacConfig
        );
        segmenter.set_avc_config(tiny_avc());
        segmenter.set_aac_config(AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap());
        assert!(segmenter.push_audio(0, &[1, 2]).unwrap().is_none());
        assert!(segmenter
            .push_video(0, 0, false, &[0, 0, 0, 1, 0x41])
            .unwrap()
            .is_none());
        assert!(
            segmenter.flush().is_none(),
            "nothing before the first keyframe"
        );
        assert!(matches!(
            segmenter.push_video(0, 0, true, &[0, 0, 0, 9, 0x65]),
            Err(HlsError::Avc(_))
        ));
        assert!(segmenter
            .push_video(40, 0, true, &[0, 0, 0, 1, 0x65])
            .unwrap()
            .is_none());
        assert!(segmenter
            .push_video(80, 0, false, &[0, 0, 0, 1, 0x41])
            .unwrap()
            .is_none());
        let segment = segmenter.flush().unwrap();
        assert_eq!(
            (segment.index, segment.start_dts_ms, segment.duration),
            (0, 40, 0.08)
        );
    }

    fn tiny_avc() -> AvcConfig {
        AvcConfig {
            profile: 66,
            compatibility: 0,
            level: 30,
            nalu_length_size: 4,
            sps: vec![],
            pps: vec![],
        }
    }

    /// An access unit of one NALU of `len` bytes.
    fn nalu(kind: u8, len: usize) -> Vec<u8> {
        let mut au = u32::try_from(len).unwrap().to_be_bytes().to_vec();
        au.push(kind);
        au.resize(4 + len, 0xAB);
        au
    }

    /// Pushes `frames` video frames of `len` bytes, `step_ms` apart: one keyframe, then none.
    fn one_keyframe_then_none(
        segmenter: &mut Segmenter,
        frames: u64,
        step_ms: u64,
        len: usize,
    ) -> Vec<Segment> {
        segmenter.set_avc_config(tiny_avc());
        (0..frames)
            .filter_map(|i| {
                let kind = if i == 0 { 0x65 } else { 0x41 };
                segmenter
                    .push_video(i * step_ms, 0, i == 0, &nalu(kind, len))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_stream_without_keyframes_is_cut_at_the_maximum_anyway() {
        let mut segmenter = Segmenter::new(SegmenterConfig::default());
        let segments = one_keyframe_then_none(&mut segmenter, 300, 40, 100);
        // 12 s of 25 fps video with one keyframe: cuts at 4 s, 8 s.
        let cuts: Vec<(u64, f64, bool)> = segments
            .iter()
            .map(|s| (s.start_dts_ms, s.duration, s.keyframe_start))
            .collect();
        assert_eq!(cuts, [(0, 4.0, true), (4000, 4.0, false)]);
        let mut demuxer = Demuxer::new();
        let packets = demuxer.push(&segments[1].data).unwrap();
        assert!(
            !packets[0].random_access,
            "the forced cut is not a keyframe"
        );
        let next = segmenter.push_video(12_000, 0, true, &nalu(0x65, 100));
        let resumed = next.unwrap().unwrap();
        assert_eq!(
            (resumed.start_dts_ms, resumed.keyframe_start),
            (8000, false)
        );
        let after = segmenter.flush().unwrap();
        assert!(after.keyframe_start, "a keyframe cut is marked as one");
    }

    #[test]
    fn no_segment_grows_past_the_byte_limit() {
        let mut segmenter = Segmenter::new(SegmenterConfig {
            max_segment_bytes: 100_000,
            ..SegmenterConfig::default()
        });
        let mut segments = one_keyframe_then_none(&mut segmenter, 40, 1, 10_000);
        segments.extend(segmenter.flush());
        assert!(segments.len() >= 4, "{}", segments.len());
        assert!(segments.iter().all(|s| s.data.len() <= 100_000));
        assert!(segments[1..].iter().all(|s| !s.keyframe_start));
        let total: usize = segments.iter().map(|s| s.data.len()).sum();
        assert!(total > 400_000, "nothing lost: {total}");
    }

    #[test]
    fn audio_only_cuts_by_time() {
        let mut segmenter = Segmenter::new(SegmenterConfig {
            target_duration: Duration::from_secs(2),
            max_segment_duration: Duration::from_secs(1),
            ..SegmenterConfig::default()
        });
        segmenter.set_aac_config(AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap());
        let segments: Vec<Segment> = (0..100u64)
            .filter_map(|i| {
                segmenter
                    .push_audio(i * 1024 * 1000 / 44100, &[0x21, 0x10])
                    .unwrap()
            })
            .collect();
        assert_eq!(segments.len(), 2);
        assert!(segments.iter().all(|s| (1.0..1.05).contains(&s.duration)));
        let mut demuxer = Demuxer::new();
        let packets = demuxer.push(&segments[0].data).unwrap();
        assert!(packets
            .iter()
            .all(|p| p.kind == StreamKind::Audio && p.random_access));
        let frames: usize = packets
            .iter()
            .map(|p| crate::aac::parse_adts(&p.data).unwrap().len())
            .sum();
        assert_eq!(frames, 44);
    }
}
