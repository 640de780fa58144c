//! Media sources: an FLV file played in a loop with continuous, monotonic timestamps.

use bytes::Bytes;
use media_core::aac::AudioSpecificConfig;
use media_core::flv::{self, Tag, VideoPacket};
use media_core::rtmp::StreamMetadata;

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

/// Frame duration assumed for a track whose frames say nothing better (a single video frame).
const FALLBACK_FRAME_MS: f64 = 1000.0 / 30.0;

/// Plays an FLV file forever: sequence headers once, then media with timestamps that keep
/// growing across the loop point.
///
/// Every track loops on its own: its first frame of a new loop comes one of its own frame
/// durations after its last frame, so neither track has a gap at the loop point. The tracks
/// stay in sync through one shared loop length, the shortest track's (its frames from first to
/// last plus one frame): a longer track plays, in each loop, the frames that fit into its share
/// of that loop to within half a frame, so its tail is trimmed and the error never accumulates.
/// Messages come out in decode order across tracks.
#[derive(Debug, Clone)]
pub struct FlvLoop {
    headers: Vec<MediaTag>,
    metadata: Option<StreamMetadata>,
    /// In order of first appearance in the file; never empty.
    tracks: Vec<Track>,
    loop_len: f64,
}

/// One track's frames and where its playback stands.
#[derive(Debug, Clone)]
struct Track {
    kind: TagKind,
    /// Frames in file order, dts relative to the file's first media message; never empty.
    frames: Vec<MediaTag>,
    /// Duration of one frame in ms.
    frame_ms: f64,
    /// Index of the next frame to play.
    next: usize,
    /// Loops completed by this track.
    loops: u64,
    /// Added to the file's dts during the current loop, in ms.
    shift: f64,
}

impl Track {
    /// From the first frame to one frame after the last, in ms.
    fn natural_len(&self) -> f64 {
        let first = self.frames.first().map_or(0, |t| t.dts);
        let last = self.frames.last().map_or(0, |t| t.dts);
        last.saturating_sub(first) as f64 + self.frame_ms
    }

    /// The next frame's output dts. Wraps to the first frame when this loop is done: when all
    /// frames were played, or when the next one would end more than half a frame past this
    /// track's start in the next loop (`loop_len` after its start in this one).
    fn peek(&mut self, loop_len: f64) -> u64 {
        let first = self.frames[0].dts as f64;
        let next_start = (self.loops + 1) as f64 * loop_len + first;
        let done = match self.frames.get(self.next) {
            None => true,
            Some(t) => {
                self.next > 0 && self.shift + t.dts as f64 + self.frame_ms / 2.0 > next_start
            }
        };
        if done {
            // `next > 0` here: a loop always plays at least its first frame.
            let last = self.frames[self.next - 1].dts as f64;
            self.shift += last + self.frame_ms - first;
            self.next = 0;
            self.loops += 1;
        }
        (self.frames[self.next].dts as f64 + self.shift).round() as u64
    }
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
                    meta = meta.or_else(|| StreamMetadata::from_script(&data, 8));
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
        let Some(first) = media.first().map(|t| t.dts) else {
            anyhow::bail!("FLV file has no audio or video");
        };
        let mut tracks: Vec<Track> = Vec::new();
        for mut tag in media {
            tag.dts = tag.dts.saturating_sub(first);
            match tracks.iter_mut().find(|t| t.kind == tag.kind) {
                Some(track) => track.frames.push(tag),
                None => tracks.push(Track {
                    kind: tag.kind,
                    frames: vec![tag],
                    frame_ms: 0.0,
                    next: 0,
                    loops: 0,
                    shift: 0.0,
                }),
            }
        }
        let aac_frame_ms = headers
            .iter()
            .find(|h| h.kind == TagKind::Audio)
            .and_then(|h| aac_frame_ms(&h.payload));
        for track in &mut tracks {
            track.frame_ms = match track.kind {
                TagKind::Audio => aac_frame_ms.or_else(|| mean_interval(&track.frames)),
                TagKind::Video => mean_interval(&track.frames),
            }
            .unwrap_or(FALLBACK_FRAME_MS);
        }
        let loop_len = tracks
            .iter()
            .map(Track::natural_len)
            .fold(f64::INFINITY, f64::min);
        Ok(Self {
            headers,
            metadata: meta,
            tracks,
            loop_len,
        })
    }

    /// Length of one loop in ms.
    pub fn loop_len(&self) -> f64 {
        self.loop_len
    }

    /// Loops completed by every track so far.
    pub fn loops(&self) -> u64 {
        self.tracks.iter().map(|t| t.loops).min().unwrap_or(0)
    }

    /// The next media message, forever: the track whose next frame has the lowest dts goes
    /// first, the track that appeared first in the file on a tie.
    pub fn next_media(&mut self) -> MediaTag {
        let loop_len = self.loop_len;
        let (track, dts) = self
            .tracks
            .iter_mut()
            .map(|t| {
                let dts = t.peek(loop_len);
                (t, dts)
            })
            .min_by_key(|&(_, dts)| dts)
            .expect("from_bytes keeps at least one track");
        let mut tag = track.frames[track.next].clone();
        track.next += 1;
        tag.dts = dts;
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
        let has_video = self.tracks.iter().any(|t| t.kind == TagKind::Video);
        loop {
            let tag = self.next_media();
            if !has_video || (tag.kind == TagKind::Video && tag.key) {
                return Ok(tag);
            }
        }
    }
}

/// One AAC frame (1024 samples) at the sample rate of an AAC sequence header, in ms.
fn aac_frame_ms(header: &[u8]) -> Option<f64> {
    let info = flv::parse_audio(header).ok()?;
    if info.sound_format != flv::SOUND_AAC {
        return None;
    }
    let config = AudioSpecificConfig::parse(flv::audio_body(header)).ok()?;
    Some(config.frame_duration_ms())
}

/// Mean dts step between consecutive frames, in ms; `None` for fewer than two frames.
fn mean_interval(frames: &[MediaTag]) -> Option<f64> {
    let (first, last) = (frames.first()?, frames.last()?);
    let steps = frames.len().checked_sub(1).filter(|n| *n > 0)?;
    Some(last.dts.saturating_sub(first.dts) as f64 / steps as f64)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    /// Plays `src` until every track has completed `loops` loops and returns, per track, the
    /// output dts of each frame and whether it was the first frame of a new loop.
    fn play(src: &mut FlvLoop, loops: u64) -> Vec<(TagKind, Vec<(u64, bool)>)> {
        let mut out: Vec<(TagKind, Vec<(u64, bool)>)> =
            src.tracks.iter().map(|t| (t.kind, Vec::new())).collect();
        let mut last_dts = 0;
        while src.loops() < loops {
            let tag = src.next_media();
            assert!(tag.dts >= last_dts, "dts {} after {last_dts}", tag.dts);
            last_dts = tag.dts;
            let i = src
                .tracks
                .iter()
                .position(|t| t.kind == tag.kind)
                .expect("track of the tag");
            out[i].1.push((tag.dts, src.tracks[i].next == 1));
        }
        out
    }

    /// The most common dts step between consecutive frames of a track in the file.
    fn ordinary_step(track: &Track) -> u64 {
        let mut steps: Vec<u64> = track
            .frames
            .windows(2)
            .map(|w| w[1].dts - w[0].dts)
            .collect();
        steps.sort_unstable();
        steps[steps.len() / 2]
    }

    /// Asserts that each track's steps at loop points are its ordinary step (±1 ms) and that the
    /// tracks' loop starts keep the file's offset between them to within one frame.
    fn assert_continuous_and_in_sync(src: &FlvLoop, played: &[(TagKind, Vec<(u64, bool)>)]) {
        let mut starts = Vec::new();
        for (track, (kind, frames)) in src.tracks.iter().zip(played) {
            let step = ordinary_step(track);
            let mut track_starts = vec![frames[0].0];
            for w in frames.windows(2) {
                if w[1].1 {
                    let gap = w[1].0 - w[0].0;
                    assert!(
                        gap.abs_diff(step) <= 1,
                        "{kind:?} steps {gap} ms at the loop point at {}, its frames step {step} ms",
                        w[1].0
                    );
                    track_starts.push(w[1].0);
                }
            }
            starts.push((track.frames[0].dts, track.frame_ms, track_starts));
        }
        let ((v_first, v_frame, v), (a_first, a_frame, a)) = (&starts[0], &starts[1]);
        assert!(
            v.len() > 10 && a.len() > 10,
            "{} and {} loops",
            v.len(),
            a.len()
        );
        let frame = v_frame.max(*a_frame);
        for (n, (v, a)) in v.iter().zip(a).enumerate() {
            let skew = (*a as f64 - *v as f64) - (*a_first as f64 - *v_first as f64);
            assert!(
                skew.abs() <= frame,
                "loop {n}: tracks {skew} ms apart from their offset in the file"
            );
        }
    }

    #[test]
    fn sample_loops_with_monotonic_timestamps() {
        let mut src = FlvLoop::sample().expect("sample parses");
        assert_eq!(src.headers.len(), 2, "AVC and AAC sequence headers");
        assert!(src.metadata.is_some());
        assert_eq!(src.tracks[0].kind, TagKind::Video);
        assert!(src.next_media().key, "the first frame is a keyframe");
        play(&mut src, 3);
        assert_eq!(src.loops(), 3);
        assert!((9_900.0..10_200.0).contains(&src.loop_len()));
    }

    #[test]
    fn sample_tracks_stay_continuous_and_in_sync_across_loops() {
        let mut src = FlvLoop::sample().expect("sample parses");
        let audio = &src.tracks[1];
        assert_eq!(audio.kind, TagKind::Audio);
        assert!(
            (audio.frame_ms - 1024.0 * 1000.0 / 44_100.0).abs() < 1e-9,
            "AAC at 44.1 kHz"
        );
        let played = play(&mut src, 12);
        assert_continuous_and_in_sync(&src, &played);
    }

    #[test]
    fn a_longer_video_track_is_trimmed_to_the_audio_loop() {
        // 25 fps video for 1 s against 48 kHz AAC for 40 frames (853 ms).
        let mut file = BytesMut::from(&flv::file_header(true, true)[..]);
        let avc_config = [1, 0x64, 0, 0x1F, 0xFF, 0xE0, 0];
        let avc_header = flv::avc_video_tag(true, VideoPacket::SequenceHeader, 0, &avc_config);
        flv::write_tag(&mut file, flv::TAG_VIDEO, 0, &avc_header);
        let asc = AudioSpecificConfig {
            object_type: 2,
            sampling_index: 3,
            sample_rate: 48_000,
            channels: 2,
        };
        flv::write_tag(
            &mut file,
            flv::TAG_AUDIO,
            0,
            &flv::aac_audio_tag(true, &asc.to_bytes()),
        );
        let mut frames: Vec<(u32, u8, Vec<u8>)> = (0..25u32)
            .map(|i| {
                let tag = flv::avc_video_tag(i % 10 == 0, VideoPacket::Nalu, 0, &[0, 0, 0, 1, 9]);
                (i * 40, flv::TAG_VIDEO, tag)
            })
            .collect();
        frames.extend((0..40u32).map(|i| {
            let ts = (f64::from(i) * asc.frame_duration_ms()).round() as u32;
            (ts, flv::TAG_AUDIO, flv::aac_audio_tag(false, &[0x21]))
        }));
        frames.sort_by_key(|f| f.0);
        for (ts, tag_type, body) in &frames {
            flv::write_tag(&mut file, *tag_type, *ts, body);
        }
        let mut src = FlvLoop::from_bytes(&file).expect("synthetic file parses");
        assert!((src.loop_len() - 40.0 * asc.frame_duration_ms()).abs() < 1e-9);
        let played = play(&mut src, 12);
        assert_continuous_and_in_sync(&src, &played);
    }
}
