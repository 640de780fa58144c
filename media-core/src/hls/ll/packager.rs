//! The packager: cuts timestamped H.264 access units and AAC frames into fMP4 parts and
//! segments, keeps the playlist window, and queues events for the server.
//!
//! # Cutting
//! Video drives the boundaries when the stream has it. A frame's duration is known only when
//! the next frame arrives, so each part keeps its last frame open until then:
//! - a keyframe (an access unit with an IDR slice) at least `segment_duration` into the segment
//!   starts the next segment, and so does any frame once the segment has lasted
//!   `target_duration` (a forced cut: the next segment does not start independent);
//! - a frame starts the next part when it would, at the last observed frame interval, carry the
//!   part past `PART-TARGET`;
//! - when a frame arrives later than that estimate, so that the previous frame would end past
//!   `PART-TARGET` or `target_duration`, the previous frame moves to the next part (or segment):
//!   parts close early, never late. A frame that alone lasts longer than `PART-TARGET` (a
//!   timestamp jump), or the only frame of its part, is shortened to the limit instead, which
//!   leaves a gap in the timeline.
//!
//! Audio goes into the part whose time range holds its decode time; audio that arrives after
//! its part closed goes into the next one. Audio-only streams cut parts by whole AAC frames (as
//! many as fit in `PART-TARGET`) and segments at the first part boundary past
//! `segment_duration`, or before one more part would pass `target_duration`.
//!
//! # Chunks
//! A part is written as CMAF chunks (one `moof` + `mdat` each) while it fills, so a server can
//! send the preload-hinted part as it grows. With video, a chunk is written the moment a
//! frame's duration and part are known, that is when the next frame arrives and the rules
//! above have placed it: the chunk holds that one frame and the queued audio that starts before
//! the frame ends (audio arriving after the chunk that covers its time goes into the next
//! chunk, of the same part or the next). Audio-only streams write a chunk every
//! [`AUDIO_CHUNK_FRAMES`] frames and at the end of each part. Each chunk is reported as
//! [`Event::Chunk`]; the part's [`Event::Part`] follows its last chunk and holds the same
//! buffers, so a part's bytes are its chunks back to back, kept once.
//!
//! # Timeline
//! Decode times are the input's milliseconds (video at 90 kHz, audio at its sample rate with
//! a frame counter that follows the input when they drift apart by more than a frame). After
//! [`Packager::restart`] the new publish's timestamps are shifted to continue where the last
//! part ended, and its first segment carries `EXT-X-DISCONTINUITY`. Program date times come
//! from the wall clock passed with the first frame of each publish, advanced by decode time.
//! Timestamps must stay below [`MAX_TIMESTAMP_MS`], which keeps every product in range.

use super::playlist::{self, OpenView, RenditionReport, View};
use super::request::{self, Directives, FetchDecision, LiveEdge, PlaylistDecision, Skip};
use super::{LlHlsConfig, LlHlsError, PartId};
use crate::aac::SAMPLES_PER_FRAME;
use crate::avc::{avcc_nalus, nal_type, AvcConfig, NAL_IDR};
use crate::fmp4::{offset_ms_to_90k, AudioTrack, Movie, Run, Sample, VideoTrack};
use bytes::Bytes;
use std::collections::VecDeque;

/// Largest decode time in milliseconds after the republish shift (about 557 years).
pub const MAX_TIMESTAMP_MS: u64 = 1 << 44;
/// Most audio frames waiting for the video to close their part (about 20 s at 48 kHz).
pub const MAX_QUEUED_AUDIO: usize = 1024;
/// Most events kept for [`Packager::poll_event`]; older ones are dropped when nobody polls.
pub const MAX_QUEUED_EVENTS: usize = 1024;

const AUDIO_FRAME_TICKS: u64 = SAMPLES_PER_FRAME as u64;
/// Frame duration assumed for the last frame of a stream whose frame rate was never seen.
const DEFAULT_FRAME_MS: u64 = 33;
/// AAC frames per chunk of an audio-only stream (93 ms at 44.1 kHz): a chunk per frame would
/// spend a `moof` on every 23 ms of audio.
pub const AUDIO_CHUNK_FRAMES: usize = 4;

/// One H.264 access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Decode time in milliseconds; must increase from frame to frame.
    pub dts_ms: u64,
    /// Presentation minus decode time in milliseconds (B-frames).
    pub cts_ms: i32,
    /// The container's keyframe flag; the frame counts as a sync sample only if it also holds
    /// an IDR slice.
    pub keyframe: bool,
    /// NAL units with the length prefixes of the AVC configuration record.
    pub data: Bytes,
}

/// An init segment (`ftyp` + `moov`), numbered from 0 per packager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    /// The number in its URI; it grows when the codec configuration changes.
    pub id: u64,
    /// The bytes.
    pub data: Bytes,
}

/// A finished part: its chunks (`moof` + `mdat` each), back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Media Sequence Number of its segment.
    pub msn: u64,
    /// Index in its segment, from 0.
    pub index: u64,
    /// Decode time of its start in microseconds.
    pub start_us: u64,
    /// Duration in microseconds, at most `PART-TARGET`.
    pub duration_us: u64,
    /// Its first video sample is an IDR (always true for audio-only streams).
    pub independent: bool,
    /// Its chunks in order, the buffers [`Event::Chunk`] reported; the part's bytes are
    /// theirs, back to back.
    pub chunks: Vec<Bytes>,
}

impl Part {
    /// The part's identity.
    pub fn id(&self) -> PartId {
        PartId {
            msn: self.msn,
            part: self.index,
        }
    }

    /// Its size in bytes: its chunks' sizes summed.
    pub fn size(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// A finished segment: its parts back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Media Sequence Number.
    pub msn: u64,
    /// Decode time of its start in microseconds.
    pub start_us: u64,
    /// Duration in microseconds: the sum of its parts, at most the target duration.
    pub duration_us: u64,
    /// `EXT-X-PROGRAM-DATE-TIME` in unix milliseconds.
    pub program_date_time_ms: u64,
    /// Preceded by `EXT-X-DISCONTINUITY` (a republish or a codec change).
    pub discontinuity: bool,
    /// The init segment its parts need.
    pub init_id: u64,
    /// Its parts; the segment's bytes are theirs, back to back, kept once.
    pub parts: Vec<Part>,
}

impl Segment {
    /// Whether it starts with an IDR (false after a forced cut).
    pub fn independent(&self) -> bool {
        self.parts.first().is_some_and(|p| p.independent)
    }
}

/// What the packager produced, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new init segment; the parts after it need it.
    Init(Init),
    /// A chunk of the part being filled, written as soon as its samples were final; the
    /// part's later chunks and then its [`Event::Part`] follow.
    Chunk {
        /// The part it belongs to.
        id: PartId,
        /// One `moof` + `mdat`.
        data: Bytes,
    },
    /// A finished part (its last chunk was reported just before): wake requests held on it
    /// and on the playlist.
    Part(Part),
    /// A finished segment (its last part was reported just before).
    Segment(Segment),
}

/// A video sample waiting in the open part.
#[derive(Debug)]
struct Frame {
    dts_ms: u64,
    cts_90k: i32,
    sync: bool,
    data: Bytes,
}

/// An audio frame waiting for the video to close its part.
#[derive(Debug)]
struct AudioFrame {
    dts_ms: u64,
    data: Bytes,
}

/// The part being filled.
#[derive(Debug)]
struct OpenPart {
    start_us: u64,
    /// Audio-only streams: decode time of the first frame in audio ticks.
    start_ticks: u64,
    /// Its first video sample is an IDR (true for audio-only parts).
    independent: bool,
    /// Video frames placed in it, written or not.
    frames: usize,
    /// The last video frame, not yet written: the next frame tells its duration.
    pending: Option<Frame>,
    /// Audio-only streams: frames placed in it, written or not.
    audio_frames: u64,
    /// Audio-only streams: frames not yet written.
    audio: Vec<Bytes>,
    /// The chunks written so far.
    chunks: Vec<Bytes>,
}

impl OpenPart {
    /// A video part starting with `first`.
    fn video(start_us: u64, first: Frame) -> Self {
        Self {
            start_us,
            start_ticks: 0,
            independent: first.sync,
            frames: 1,
            pending: Some(first),
            audio_frames: 0,
            audio: Vec::new(),
            chunks: Vec::new(),
        }
    }

    /// An audio-only part starting at `start_ticks`.
    fn audio(start_us: u64, start_ticks: u64) -> Self {
        Self {
            start_us,
            start_ticks,
            independent: true,
            frames: 0,
            pending: None,
            audio_frames: 0,
            audio: Vec::new(),
            chunks: Vec::new(),
        }
    }
}

/// The segment receiving parts.
#[derive(Debug)]
struct OpenSegment {
    msn: u64,
    start_us: u64,
    pdt_ms: u64,
    discontinuity: bool,
    init_id: u64,
    movie: Movie,
    has_video: bool,
    parts: Vec<Part>,
    part: Option<OpenPart>,
}

/// Per-publish timing state.
#[derive(Debug, Default)]
struct Timeline {
    /// Input to output decode time, set by the first frame of a publish.
    offset_ms: Option<i64>,
    /// Output decode time (µs) and wall clock (unix ms) of the publish's first segment.
    anchor: Option<(u64, u64)>,
    last_video_ms: Option<u64>,
    interval_ms: Option<u64>,
    last_audio_ms: Option<u64>,
    /// Decode time of the next audio frame, in audio ticks.
    audio_ticks: Option<u64>,
}

/// The LL-HLS packager of one rendition; see the module notes.
#[derive(Debug)]
pub struct Packager {
    config: LlHlsConfig,
    part_target_us: u64,
    target_us: u64,
    segment_us: u64,
    video: Option<(VideoTrack, u8)>,
    audio: Option<AudioTrack>,
    movie: Option<Movie>,
    layout_changed: bool,
    inits: VecDeque<Init>,
    next_init_id: u64,
    segments: VecDeque<Segment>,
    open: Option<OpenSegment>,
    next_msn: u64,
    discontinuity_sequence: u64,
    pending_discontinuity: bool,
    fragment_sequence: u32,
    /// End of the last part written, in µs; survives republishes.
    end_us: Option<u64>,
    timeline: Timeline,
    audio_queue: VecDeque<AudioFrame>,
    events: VecDeque<Event>,
    forced_cuts: u64,
}

impl Packager {
    /// A packager with a checked configuration.
    pub fn new(config: LlHlsConfig) -> Result<Self, LlHlsError> {
        config.validate()?;
        Ok(Self {
            part_target_us: config.part_target_us(),
            target_us: config.target_duration_us(),
            segment_us: super::duration_us(config.segment_duration),
            config,
            video: None,
            audio: None,
            movie: None,
            layout_changed: false,
            inits: VecDeque::new(),
            next_init_id: 0,
            segments: VecDeque::new(),
            open: None,
            next_msn: 0,
            discontinuity_sequence: 0,
            pending_discontinuity: false,
            fragment_sequence: 1,
            end_us: None,
            timeline: Timeline::default(),
            audio_queue: VecDeque::new(),
            events: VecDeque::new(),
            forced_cuts: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LlHlsConfig {
        &self.config
    }

    /// Sets the AVCDecoderConfigurationRecord. A different one from the current ends the open
    /// segment; the next starts with a new init segment and a discontinuity.
    pub fn set_avc_config(&mut self, record: &[u8]) -> Result<(), LlHlsError> {
        let track = VideoTrack::new(record)?;
        let nalu_length_size = AvcConfig::parse(record)?.nalu_length_size;
        if self.video.as_ref().is_some_and(|(t, _)| *t == track) {
            return Ok(());
        }
        self.video = Some((track, nalu_length_size));
        self.config_changed()
    }

    /// Sets the AudioSpecificConfig; a change acts as in [`Self::set_avc_config`].
    pub fn set_aac_config(&mut self, config: &[u8]) -> Result<(), LlHlsError> {
        let track = AudioTrack::new(config)?;
        if self.audio.as_ref() == Some(&track) {
            return Ok(());
        }
        self.audio = Some(track);
        self.config_changed()
    }

    /// Adds one access unit. Frames before the first keyframe of a publish (or after a codec
    /// change) are dropped. `now_unix_ms` is the wall clock, read only to date the publish.
    pub fn push_video(&mut self, frame: VideoFrame, now_unix_ms: u64) -> Result<(), LlHlsError> {
        let (_, nalu_length_size) = self.video.as_ref().ok_or(LlHlsError::NoAvcConfig)?;
        let nalus = avcc_nalus(&frame.data, *nalu_length_size)?;
        let sync = frame.keyframe && nalus.iter().any(|n| nal_type(n) == NAL_IDR);
        let cts_90k = offset_ms_to_90k(frame.cts_ms)?;
        if let Some(last_ms) = self.timeline.last_video_ms {
            if frame.dts_ms <= last_ms {
                return Err(LlHlsError::VideoDtsNotIncreasing {
                    dts_ms: frame.dts_ms,
                    last_ms,
                });
            }
            self.timeline.interval_ms = Some(frame.dts_ms - last_ms);
        }
        self.timeline.last_video_ms = Some(frame.dts_ms);
        if self.open.is_none() && !sync {
            return Ok(());
        }
        let Some(dts_ms) = self.output_ms(frame.dts_ms)? else {
            return Ok(());
        };
        let frame = Frame {
            dts_ms,
            cts_90k,
            sync,
            data: frame.data,
        };
        self.place_video(frame, now_unix_ms)
    }

    /// Adds one raw AAC frame. With video, audio before the first keyframe is dropped.
    pub fn push_audio(
        &mut self,
        dts_ms: u64,
        data: Bytes,
        now_unix_ms: u64,
    ) -> Result<(), LlHlsError> {
        let rate = self
            .audio
            .as_ref()
            .ok_or(LlHlsError::NoAacConfig)?
            .timescale();
        if let Some(last_ms) = self.timeline.last_audio_ms {
            if dts_ms < last_ms {
                return Err(LlHlsError::AudioDtsWentBack { dts_ms, last_ms });
            }
        }
        self.timeline.last_audio_ms = Some(dts_ms);
        if self.video.is_some() {
            if self.open.is_none() {
                return Ok(());
            }
            let Some(dts_ms) = self.output_ms(dts_ms)? else {
                return Ok(());
            };
            if self.audio_queue.len() >= MAX_QUEUED_AUDIO {
                return Err(LlHlsError::AudioBacklog);
            }
            self.audio_queue.push_back(AudioFrame { dts_ms, data });
            return Ok(());
        }
        let Some(dts_ms) = self.output_ms(dts_ms)? else {
            return Ok(());
        };
        self.place_audio_only(dts_ms, rate, data, now_unix_ms)
    }

    /// Republish: finishes the open part and segment; the next publish's timestamps continue
    /// the timeline, its first segment is marked as a discontinuity, and the sequence numbers
    /// go on.
    pub fn restart(&mut self) -> Result<(), LlHlsError> {
        let flushed = self.flush();
        if self.end_us.is_some() {
            self.pending_discontinuity = true;
        }
        self.timeline = Timeline::default();
        flushed
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// An init segment still referenced by the window.
    pub fn init(&self, id: u64) -> Option<&Init> {
        self.inits.iter().find(|init| init.id == id)
    }

    /// The newest init segment.
    pub fn current_init(&self) -> Option<&Init> {
        self.inits.back()
    }

    /// A finished part still in the window.
    pub fn part(&self, id: PartId) -> Option<&Part> {
        let index = usize::try_from(id.part).ok()?;
        match &self.open {
            Some(open) if open.msn == id.msn => open.parts.get(index),
            _ => self.segment(id.msn)?.parts.get(index),
        }
    }

    /// The chunks written so far of the part being filled, when `id` names it (possibly none
    /// yet: its first frame waits for the next one). `None` for a part that is finished, not
    /// started or unknown. A part being filled always finishes, at the latest when the
    /// publish ends ([`Self::restart`]), with these chunks first.
    pub fn open_chunks(&self, id: PartId) -> Option<&[Bytes]> {
        let open = self.open.as_ref().filter(|open| open.msn == id.msn)?;
        let part = open.part.as_ref()?;
        (id.part == open.parts.len() as u64).then_some(&part.chunks[..])
    }

    /// A finished segment still in the window.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.front()?.msn;
        let index = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(index)
    }

    /// Where the stream stands, for the request decisions.
    pub fn live_edge(&self) -> LiveEdge {
        let (open_msn, next_part, open_last) = match &self.open {
            Some(open) => (
                open.msn,
                open.parts.len() as u64,
                open.parts.last().map(Part::id),
            ),
            None => (self.next_msn, 0, None),
        };
        let last_part = open_last.or_else(|| {
            let segment = self.segments.back()?;
            segment.parts.last().map(Part::id)
        });
        LiveEdge {
            first_msn: self.segments.front().map_or(open_msn, |s| s.msn),
            open_msn,
            next_part,
            last_part,
            part_target_us: self.part_target_us,
        }
    }

    /// [`request::decide_playlist`] at the current live edge.
    pub fn decide_playlist(&self, directives: &Directives) -> PlaylistDecision {
        request::decide_playlist(directives, &self.live_edge())
    }

    /// [`request::decide_part`] at the current live edge.
    pub fn decide_part(&self, id: PartId) -> FetchDecision {
        request::decide_part(&self.live_edge(), id, self.part(id).is_some())
    }

    /// [`request::decide_segment`] at the current live edge.
    pub fn decide_segment(&self, msn: u64) -> FetchDecision {
        request::decide_segment(&self.live_edge(), msn, self.segment(msn).is_some())
    }

    /// This rendition's report for the playlists of its siblings: its last part.
    pub fn rendition_report(&self, uri: &str) -> Option<RenditionReport> {
        let last = self.live_edge().last_part?;
        Some(RenditionReport {
            uri: uri.to_owned(),
            last_msn: last.msn,
            last_part: Some(last.part),
        })
    }

    /// Segments started by a forced cut (not on a keyframe) so far.
    pub fn forced_cuts(&self) -> u64 {
        self.forced_cuts
    }

    /// The media playlist; with `skip` other than [`Skip::No`], a delta update
    /// (`EXT-X-SKIP`) when some segments are older than `CAN-SKIP-UNTIL`. `reports` become
    /// `EXT-X-RENDITION-REPORT` lines.
    pub fn render(&self, skip: Skip, reports: &[RenditionReport]) -> String {
        let open = self
            .open
            .as_ref()
            .filter(|open| !open.parts.is_empty())
            .map(|open| OpenView {
                pdt_ms: open.pdt_ms,
                discontinuity: open.discontinuity,
                init_id: open.init_id,
                parts: &open.parts,
            });
        let view = View {
            config: &self.config,
            segments: &self.segments,
            open,
            discontinuity_sequence: self.discontinuity_sequence,
            hint: self.live_edge().preload_hint(),
        };
        playlist::render(&view, skip, reports)
    }

    /// Ends the open segment, marks a codec change, and lets the next segment build a new
    /// init segment.
    fn config_changed(&mut self) -> Result<(), LlHlsError> {
        if self.movie.is_none() {
            return Ok(());
        }
        self.layout_changed = true;
        let flushed = self.flush();
        if self.end_us.is_some() {
            self.pending_discontinuity = true;
        }
        flushed
    }

    /// Maps an input decode time onto the output timeline; the first frame of a publish sets
    /// the shift. `None` for a frame that would land before zero.
    fn output_ms(&mut self, input_ms: u64) -> Result<Option<u64>, LlHlsError> {
        let offset = match self.timeline.offset_ms {
            Some(offset) => offset,
            None => {
                let resume_ms = self
                    .end_us
                    .map_or(i128::from(input_ms), |us| i128::from(us.div_ceil(1000)));
                let offset = i64::try_from(resume_ms - i128::from(input_ms))
                    .map_err(|_| LlHlsError::TimestampOverflow)?;
                *self.timeline.offset_ms.insert(offset)
            }
        };
        let output = i128::from(input_ms) + i128::from(offset);
        if output < 0 {
            return Ok(None);
        }
        match u64::try_from(output) {
            Ok(ms) if ms <= MAX_TIMESTAMP_MS => Ok(Some(ms)),
            _ => Err(LlHlsError::TimestampOverflow),
        }
    }

    /// Decides where a video frame goes and closes what it completes.
    fn place_video(&mut self, frame: Frame, now_unix_ms: u64) -> Result<(), LlHlsError> {
        let x_us = frame.dts_ms * 1000;
        self.settle(x_us, now_unix_ms)?;
        let interval_us = self.timeline.interval_ms.unwrap_or(0).saturating_mul(1000);
        let (cut_segment, cut_part) = match &self.open {
            None => (false, false),
            Some(open) => {
                let part = open.part.as_ref().filter(|p| p.frames > 0);
                let has_content = part.is_some() || !open.parts.is_empty();
                let length = x_us.saturating_sub(open.start_us);
                let cut_segment = has_content
                    && ((frame.sync && length >= self.segment_us) || length >= self.target_us);
                let cut_part = part.is_some_and(|p| {
                    x_us.saturating_add(interval_us.max(1))
                        > p.start_us.saturating_add(self.part_target_us)
                });
                (cut_segment, cut_part)
            }
        };
        if cut_segment {
            self.close_part(x_us)?;
            self.close_segment();
        } else if cut_part {
            self.close_part(x_us)?;
        } else {
            self.write_chunk(x_us)?;
        }
        if self.open.is_none() {
            self.open_segment(x_us, now_unix_ms, frame.sync)?;
        }
        if let Some(open) = self.open.as_mut() {
            match open.part.as_mut() {
                Some(part) => {
                    part.frames += 1;
                    part.pending = Some(frame);
                }
                None => open.part = Some(OpenPart::video(x_us, frame)),
            }
        }
        Ok(())
    }

    /// A frame at `x_us` fixes the duration of the open part's last frame: if that ends past
    /// `PART-TARGET` or the target duration, the frame moves to a new part (or segment), or,
    /// when it alone lasts longer than `PART-TARGET` (a timestamp jump) or is the part's only
    /// frame, it is shortened to the limit. The last frame is the only one not yet written, so
    /// moving it touches no chunk.
    fn settle(&mut self, x_us: u64, now_unix_ms: u64) -> Result<(), LlHlsError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let Some(part) = open.part.as_mut() else {
            return Ok(());
        };
        let Some(last_us) = part.pending.as_ref().map(|f| f.dts_ms * 1000) else {
            return Ok(());
        };
        let segment_end = open.start_us.saturating_add(self.target_us);
        let limit = part
            .start_us
            .saturating_add(self.part_target_us)
            .min(segment_end);
        if x_us <= limit {
            return Ok(());
        }
        let movable = part.frames >= 2 && x_us - last_us <= self.part_target_us;
        let last = if movable { part.pending.take() } else { None };
        let Some(last) = last else {
            self.close_part(limit)?;
            if x_us > segment_end {
                self.close_segment();
            }
            return Ok(());
        };
        // The moved frame fits its new part: it lasts at most PART-TARGET, and a new segment
        // starts with it whenever the old one cannot hold it.
        self.close_part(last_us)?;
        if x_us > segment_end {
            self.close_segment();
            self.open_segment(last_us, now_unix_ms, last.sync)?;
        }
        if let Some(open) = self.open.as_mut() {
            open.part = Some(OpenPart::video(last_us, last));
        }
        Ok(())
    }

    /// Adds an audio frame to an audio-only stream; parts hold whole frames.
    fn place_audio_only(
        &mut self,
        dts_ms: u64,
        rate: u32,
        data: Bytes,
        now_unix_ms: u64,
    ) -> Result<(), LlHlsError> {
        let actual = dts_ms * u64::from(rate) / 1000;
        let ticks = match self.timeline.audio_ticks {
            Some(next) if next.abs_diff(actual) <= AUDIO_FRAME_TICKS => next,
            Some(next) => {
                self.close_part(ticks_to_us(next, rate))?;
                self.close_segment();
                actual
            }
            None => actual,
        };
        if self.open.is_none() {
            self.open_segment(ticks_to_us(ticks, rate), now_unix_ms, true)?;
        }
        let per_part = audio_frames_per_part(self.part_target_us, rate);
        let mut part_end = None;
        let mut chunk_full = false;
        if let Some(open) = self.open.as_mut() {
            let part = open
                .part
                .get_or_insert_with(|| OpenPart::audio(ticks_to_us(ticks, rate), ticks));
            part.audio.push(data);
            part.audio_frames += 1;
            if part.audio_frames >= per_part {
                part_end = Some(part.start_ticks + part.audio_frames * AUDIO_FRAME_TICKS);
            }
            chunk_full = part.audio.len() >= AUDIO_CHUNK_FRAMES;
        }
        self.timeline.audio_ticks = Some(ticks + AUDIO_FRAME_TICKS);
        let Some(end_ticks) = part_end else {
            return match chunk_full {
                true => self.write_chunk(ticks_to_us(ticks + AUDIO_FRAME_TICKS, rate)),
                false => Ok(()),
            };
        };
        let end_us = ticks_to_us(end_ticks, rate);
        self.close_part(end_us)?;
        let longest_part_us = ticks_to_us(per_part * AUDIO_FRAME_TICKS, rate) + 1;
        let full = self.open.as_ref().is_some_and(|open| {
            let length = end_us.saturating_sub(open.start_us);
            length >= self.segment_us || length + longest_part_us > self.target_us
        });
        if full {
            self.close_segment();
        }
        Ok(())
    }

    /// Starts a segment at `start_us`, building a new init segment first if the codec
    /// configuration changed.
    fn open_segment(
        &mut self,
        start_us: u64,
        now_unix_ms: u64,
        independent: bool,
    ) -> Result<(), LlHlsError> {
        let movie = match self.movie.as_ref().filter(|_| !self.layout_changed) {
            Some(movie) => movie.clone(),
            None => {
                let video = self.video.as_ref().map(|(track, _)| track.clone());
                let movie = Movie::new(video, self.audio.clone())?;
                let init = Init {
                    id: self.next_init_id,
                    data: movie.init_segment()?,
                };
                self.next_init_id += 1;
                self.inits.push_back(init.clone());
                self.prune_inits();
                self.push_event(Event::Init(init));
                self.layout_changed = false;
                self.movie.insert(movie).clone()
            }
        };
        let (anchor_us, anchor_ms) = *self.timeline.anchor.get_or_insert((start_us, now_unix_ms));
        let pdt_ms = anchor_ms.saturating_add(start_us.saturating_sub(anchor_us) / 1000);
        let has_video = self.video.is_some();
        if has_video && !independent {
            self.forced_cuts += 1;
        }
        let msn = self.next_msn;
        self.next_msn = msn.saturating_add(1);
        self.open = Some(OpenSegment {
            msn,
            start_us,
            pdt_ms,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            init_id: self.next_init_id.saturating_sub(1),
            movie,
            has_video,
            parts: Vec::new(),
            part: None,
        });
        Ok(())
    }

    /// Writes what the open part holds unwritten as one chunk ending at `end_us` and reports
    /// it. With video: the pending frame, lasting until `end_us`, and the queued audio that
    /// starts before `end_us` (nothing without a pending frame: late audio waits for the next
    /// chunk). Audio-only: the frames not yet written.
    fn write_chunk(&mut self, end_us: u64) -> Result<(), LlHlsError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let Some(part) = open.part.as_mut() else {
            return Ok(());
        };
        let frame = part.pending.take();
        let mut video = Vec::with_capacity(1);
        if let Some(frame) = &frame {
            let ticks = end_us.saturating_sub(frame.dts_ms * 1000) * 9 / 100;
            video.push(Sample {
                duration: u32::try_from(ticks).map_err(|_| LlHlsError::TimestampOverflow)?,
                cts_offset: frame.cts_90k,
                is_sync: frame.sync,
                data: &frame.data,
            });
        }
        let video_run = Run {
            base_decode_time: frame.as_ref().map_or(0, |f| f.dts_ms * 90),
            samples: &video,
        };
        let rate = self.audio.as_ref().map_or(1, AudioTrack::timescale);
        let queued: Vec<AudioFrame> = if open.has_video && frame.is_some() {
            let due = self
                .audio_queue
                .iter()
                .take_while(|a| a.dts_ms * 1000 < end_us)
                .count();
            self.audio_queue.drain(..due).collect()
        } else {
            Vec::new()
        };
        let unwritten = std::mem::take(&mut part.audio);
        let (audio_base, audio_data): (u64, Vec<&[u8]>) = match queued.first() {
            Some(first) => {
                let actual = first.dts_ms * u64::from(rate) / 1000;
                let base = match self.timeline.audio_ticks {
                    Some(next) if next.abs_diff(actual) <= AUDIO_FRAME_TICKS => next,
                    _ => actual,
                };
                let end = base + queued.len() as u64 * AUDIO_FRAME_TICKS;
                self.timeline.audio_ticks = Some(end);
                (base, queued.iter().map(|a| &a.data[..]).collect())
            }
            None => {
                let written = part.audio_frames.saturating_sub(unwritten.len() as u64);
                let base = part.start_ticks + written * AUDIO_FRAME_TICKS;
                (base, unwritten.iter().map(|a| &a[..]).collect())
            }
        };
        if video.is_empty() && audio_data.is_empty() {
            return Ok(());
        }
        let audio: Vec<Sample<'_>> = audio_data
            .into_iter()
            .map(|data| Sample {
                duration: SAMPLES_PER_FRAME,
                cts_offset: 0,
                is_sync: true,
                data,
            })
            .collect();
        let audio_run = Run {
            base_decode_time: audio_base,
            samples: &audio,
        };
        let data = open
            .movie
            .fragment(self.fragment_sequence, video_run, audio_run)?;
        self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
        part.chunks.push(data.clone());
        let id = PartId {
            msn: open.msn,
            part: open.parts.len() as u64,
        };
        self.push_event(Event::Chunk { id, data });
        Ok(())
    }

    /// Writes the open part's last chunk and finishes the part at `end_us`. A chunk that fails
    /// to write loses its samples, not the part.
    fn close_part(&mut self, end_us: u64) -> Result<(), LlHlsError> {
        let written = self.write_chunk(end_us);
        let Some(open) = self.open.as_mut() else {
            return written;
        };
        let Some(part) = open.part.take() else {
            return written;
        };
        if part.chunks.is_empty() {
            return written;
        }
        let done = Part {
            msn: open.msn,
            index: open.parts.len() as u64,
            start_us: part.start_us,
            duration_us: end_us.saturating_sub(part.start_us),
            independent: part.independent,
            chunks: part.chunks,
        };
        open.parts.push(done.clone());
        self.end_us = Some(end_us);
        self.push_event(Event::Part(done));
        written
    }

    /// Finishes the open segment (whose part is closed) and slides the window. A segment
    /// without parts is dropped and its number reused.
    fn close_segment(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        if open.parts.is_empty() {
            self.next_msn = open.msn;
            self.pending_discontinuity |= open.discontinuity;
            return;
        }
        let duration_us = open.parts.iter().map(|p| p.duration_us).sum();
        let segment = Segment {
            msn: open.msn,
            start_us: open.start_us,
            duration_us,
            program_date_time_ms: open.pdt_ms,
            discontinuity: open.discontinuity,
            init_id: open.init_id,
            parts: open.parts,
        };
        self.segments.push_back(segment.clone());
        self.push_event(Event::Segment(segment));
        while self.segments.len() > self.config.window {
            if self.segments.pop_front().is_some_and(|s| s.discontinuity) {
                self.discontinuity_sequence += 1;
            }
        }
        self.prune_inits();
    }

    /// Keeps the newest init segment and those the window's segments need.
    fn prune_inits(&mut self) {
        let newest = self.next_init_id.saturating_sub(1);
        let segments = &self.segments;
        self.inits
            .retain(|init| init.id == newest || segments.iter().any(|s| s.init_id == init.id));
    }

    /// Closes the open part and segment at the end of their last frame.
    fn flush(&mut self) -> Result<(), LlHlsError> {
        let end_us = self.open.as_ref().and_then(|open| {
            let part = open.part.as_ref()?;
            if open.has_video {
                let last = part.pending.as_ref()?;
                let frame_us = self.timeline.interval_ms.unwrap_or(DEFAULT_FRAME_MS) * 1000;
                let limit = part
                    .start_us
                    .saturating_add(self.part_target_us)
                    .min(open.start_us.saturating_add(self.target_us));
                return Some((last.dts_ms * 1000).saturating_add(frame_us).min(limit));
            }
            let rate = self.audio.as_ref().map_or(1, AudioTrack::timescale);
            Some(ticks_to_us(
                part.start_ticks + part.audio_frames * AUDIO_FRAME_TICKS,
                rate,
            ))
        });
        let closed = end_us.map_or(Ok(()), |end_us| self.close_part(end_us));
        self.close_segment();
        self.audio_queue.clear();
        closed
    }

    /// Queues an event, dropping the oldest beyond [`MAX_QUEUED_EVENTS`].
    fn push_event(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

/// Audio ticks at `rate` to whole microseconds, rounded down.
fn ticks_to_us(ticks: u64, rate: u32) -> u64 {
    let us = u128::from(ticks) * 1_000_000 / u128::from(rate.max(1));
    u64::try_from(us).unwrap_or(u64::MAX)
}

/// How many AAC frames fit in `PART-TARGET` (at least one).
fn audio_frames_per_part(part_target_us: u64, rate: u32) -> u64 {
    let ticks = u128::from(part_target_us) * u128::from(rate) / 1_000_000;
    u64::try_from(ticks / u128::from(AUDIO_FRAME_TICKS))
        .unwrap_or(1)
        .max(1)
}
