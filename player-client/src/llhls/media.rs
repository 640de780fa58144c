//! An fMP4 part turned into what a session counts: its frames (decode time, keyframe, SEI
//! stamp) and the media time it adds to the buffer.

use std::time::Duration;

use media_core::fmp4::read::{read_samples, Handler, InitInfo, ReadError};

use crate::latency::stamp_in_avcc;
use crate::stats::Track;

/// One frame of a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) track: Track,
    pub(crate) dts_ms: i64,
    pub(crate) keyframe: bool,
    pub(crate) stamp: Option<u64>,
    /// Decode time after the part's first frame of the same track.
    pub(crate) offset: Duration,
}

/// What a part holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartMedia {
    /// Video and audio frames in the order the part stores them.
    pub(crate) frames: Vec<Frame>,
    /// The media time it covers: its video samples' durations (its audio's without video), at
    /// most `max_duration`.
    pub(crate) duration: Duration,
}

/// Reads a part (or a segment of parts) with the tracks of `init`; SEI stamps are looked for
/// in video samples when `stamps` is set.
pub(crate) fn read_part(
    init: &InitInfo,
    data: &[u8],
    stamps: bool,
    max_duration: Duration,
) -> Result<PartMedia, ReadError> {
    let samples = read_samples(data, init)?;
    let mut frames = Vec::with_capacity(samples.len());
    let (mut video_ticks, mut audio_ticks) = (0u64, 0u64);
    let (mut video_track, mut audio_track) = (None, None);
    let mut first_times: Vec<(u32, u64)> = Vec::new();
    for sample in &samples {
        let Some(track) = init.track(sample.track_id) else {
            continue;
        };
        let kind = match track.handler {
            Handler::Video => {
                video_ticks = video_ticks.saturating_add(u64::from(sample.duration));
                video_track = Some(track);
                Track::Video
            }
            Handler::Audio => {
                audio_ticks = audio_ticks.saturating_add(u64::from(sample.duration));
                audio_track = Some(track);
                Track::Audio
            }
            Handler::Other => continue,
        };
        let stamp = match (kind, track.nalu_length_size) {
            (Track::Video, Some(size)) if stamps => stamp_in_avcc(sample.data, size),
            _ => None,
        };
        let first = match first_times.iter().find(|(id, _)| *id == track.id) {
            Some(&(_, time)) => time,
            None => {
                first_times.push((track.id, sample.decode_time));
                sample.decode_time
            }
        };
        frames.push(Frame {
            track: kind,
            dts_ms: i64::try_from(track.millis(sample.decode_time)).unwrap_or(i64::MAX),
            keyframe: kind == Track::Video && sample.is_sync,
            stamp,
            offset: track.duration(sample.decode_time.saturating_sub(first)),
        });
    }
    let duration = match (video_track, audio_track) {
        (Some(video), _) => video.duration(video_ticks),
        (None, Some(audio)) => audio.duration(audio_ticks),
        (None, None) => Duration::ZERO,
    };
    Ok(PartMedia {
        frames,
        duration: duration.min(max_duration),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_core::fmp4::read::read_init;
    use media_core::fmp4::{AudioTrack, Movie, Run, Sample, VideoTrack};
    use media_core::sei::insert_stamp;

    /// An SPS of 1280x720 Main profile and a PPS, in an AVC record with 4-byte NALU lengths.
    fn record() -> Vec<u8> {
        let sps = [
            0x67, 0x4d, 0x40, 0x1f, 0xec, 0xa0, 0x28, 0x02, 0xdd, 0x80, 0x88, 0x00, 0x00, 0x03,
            0x00, 0x08, 0x00, 0x00, 0x03, 0x01, 0x90, 0x78, 0xc1, 0x8c, 0xb0,
        ];
        let pps = [0x68, 0xeb, 0xec, 0xb2];
        [
            &[1, 0x4d, 0x40, 0x1f, 0xff, 0xe1, 0, 25][..],
            &sps,
            &[1, 0, 4],
            &pps,
        ]
        .concat()
    }

    fn avcc(nalu: &[u8]) -> Vec<u8> {
        let mut out = (nalu.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(nalu);
        out
    }

    fn movie(video: bool) -> Movie {
        Movie::new(
            video.then(|| VideoTrack::new(&record()).expect("video")),
            Some(AudioTrack::new(&[0x12, 0x10]).expect("audio")),
        )
        .expect("movie")
    }

    #[test]
    fn frames_carry_decode_times_keyframes_and_stamps() {
        let movie = movie(true);
        let init = read_init(&movie.init_segment().expect("init")).expect("reads");
        let idr = insert_stamp(&avcc(&[0x65, 0x88, 0x84, 0x21]), 4, 1_700_000_000_000_000)
            .expect("stamped");
        let p = avcc(&[0x41, 0x9a, 0x02]);
        let video = [
            Sample {
                duration: 3000,
                cts_offset: 0,
                is_sync: true,
                data: &idr,
            },
            Sample {
                duration: 3000,
                cts_offset: 0,
                is_sync: false,
                data: &p,
            },
        ];
        let aac = [1, 2, 3];
        let audio = [Sample {
            duration: 1024,
            cts_offset: 0,
            is_sync: true,
            data: &aac,
        }];
        let part = movie
            .fragment(
                1,
                Run {
                    base_decode_time: 90_000,
                    samples: &video,
                },
                Run {
                    base_decode_time: 44_100,
                    samples: &audio,
                },
            )
            .expect("fragment");
        let media = read_part(&init, &part, true, Duration::from_secs(2)).expect("reads");
        assert_eq!(
            media.frames,
            [
                Frame {
                    track: Track::Video,
                    dts_ms: 1000,
                    keyframe: true,
                    stamp: Some(1_700_000_000_000_000),
                    offset: Duration::ZERO,
                },
                Frame {
                    track: Track::Video,
                    dts_ms: 1033,
                    keyframe: false,
                    stamp: None,
                    offset: Duration::from_nanos(33_333_333),
                },
                Frame {
                    track: Track::Audio,
                    dts_ms: 1000,
                    keyframe: false,
                    stamp: None,
                    offset: Duration::ZERO,
                },
            ]
        );
        assert_eq!(media.duration, Duration::from_nanos(66_666_666));
        let unstamped = read_part(&init, &part, false, Duration::from_millis(50)).expect("reads");
        assert_eq!(unstamped.frames[0].stamp, None);
        assert_eq!(unstamped.duration, Duration::from_millis(50), "capped");
    }

    #[test]
    fn audio_only_parts_last_as_long_as_their_audio() {
        let movie = movie(false);
        let init = read_init(&movie.init_segment().expect("init")).expect("reads");
        let aac = [1, 2, 3];
        let audio: Vec<Sample<'_>> = (0..4)
            .map(|_| Sample {
                duration: 1024,
                cts_offset: 0,
                is_sync: true,
                data: &aac,
            })
            .collect();
        let part = movie
            .fragment(
                1,
                Run::default(),
                Run {
                    base_decode_time: 0,
                    samples: &audio,
                },
            )
            .expect("fragment");
        let media = read_part(&init, &part, true, Duration::from_secs(2)).expect("reads");
        assert_eq!(media.frames.len(), 4);
        assert_eq!(media.duration, Duration::from_nanos(92_879_818));
        assert!(read_part(&init, b"\0\0\0\x10moof", true, Duration::MAX).is_err());
    }
}
