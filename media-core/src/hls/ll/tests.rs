//! The sample stream and synthetic ones (jitter, long GOPs, audio only, republish, codec
//! change) through the spec checker on every playlist revision, every chunk read back by
//! mp4-atom, ffprobe on the segments, and the request rules at their boundaries.

use super::check::{self, Checker};
use super::*;
use crate::fmp4::SYNC_SAMPLE_FLAGS;
use bytes::Bytes;
use mp4_atom::{Decode, Mdat, Moof};
use std::process::Command;

/// The wall clock at decode time 0: 2024-05-01T12:00:00.000Z.
const WALL_MS: u64 = 1_714_564_800_000;
/// The sample is 300 frames of 30 fps video with a keyframe every 2 s.
const LAP_MS: u64 = 10_000;

enum Input {
    Video(VideoFrame),
    Audio(u64, Bytes),
}

/// The sample's configuration records and its frames in file order.
struct Stream {
    record: Vec<u8>,
    asc: Vec<u8>,
    inputs: Vec<Input>,
}

fn sample() -> Stream {
    let s = crate::test_sample::sample_stream();
    let inputs = s
        .frames
        .into_iter()
        // Audio runs a few ms past the video; laps must not overlap.
        .filter(|f| f.video || f.dts_ms < LAP_MS)
        .map(|f| match f.video {
            true => Input::Video(VideoFrame {
                dts_ms: f.dts_ms,
                cts_ms: f.cts_ms,
                keyframe: f.keyframe,
                data: f.data,
            }),
            false => Input::Audio(f.dts_ms, f.data),
        })
        .collect();
    Stream {
        record: s.record,
        asc: s.asc,
        inputs,
    }
}

/// One track's run in a chunk as mp4-atom reads it.
struct ReadRun {
    track_id: u32,
    base_decode_time: u64,
    /// Each sample's duration and whether it is flagged sync.
    samples: Vec<(u32, bool)>,
}

/// A chunk read back by mp4-atom: exactly one `moof` and one `mdat`, the `mdat` holding
/// every sample the `trun`s size. Returns the sequence number, the runs and the sample bytes.
fn read_chunk(data: &[u8]) -> (u32, Vec<ReadRun>, usize) {
    let mut buf = data;
    let moof = Moof::decode(&mut buf).expect("moof");
    let mdat = Mdat::decode(&mut buf).expect("mdat");
    assert!(buf.is_empty(), "one moof + mdat per chunk");
    let mut sizes = 0;
    let runs = moof
        .traf
        .iter()
        .map(|traf| {
            let [trun] = &traf.trun[..] else {
                panic!("one trun per traf")
            };
            let samples = trun
                .samples
                .iter()
                .map(|e| {
                    sizes += e.size.expect("sample size") as usize;
                    let sync = e.flags.expect("sample flags") == SYNC_SAMPLE_FLAGS;
                    (e.duration.expect("sample duration"), sync)
                })
                .collect();
            ReadRun {
                track_id: traf.tfhd.track_id,
                base_decode_time: traf.tfdt.as_ref().expect("tfdt").base_media_decode_time,
                samples,
            }
        })
        .collect();
    assert_eq!(mdat.data.len(), sizes);
    (moof.mfhd.sequence_number, runs, sizes)
}

/// Samples seen in chunk events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    chunks: usize,
    video: usize,
    sync: usize,
    audio: usize,
    /// Bytes of all chunks, and of their samples alone.
    bytes: usize,
    media: usize,
}

/// A packager whose every event is checked: each chunk read back (sequence numbers, one
/// frame per chunk with video), each part against its chunks (contiguous decode times, its
/// duration, INDEPENDENT) and each playlist revision (full and delta) by the spec checker.
struct Harness {
    packager: Packager,
    checker: Checker,
    reports: Vec<RenditionReport>,
    inits: Vec<Init>,
    parts: Vec<Part>,
    segments: Vec<Segment>,
    most_skipped: u64,
    last_full: String,
    has_video: bool,
    /// The chunks reported for the part being filled.
    filling: Vec<(PartId, Bytes)>,
    last_sequence: u32,
    tally: Tally,
}

impl Harness {
    fn new(config: LlHlsConfig, strict: bool) -> Self {
        let checker = Checker::new(config.uris.clone());
        Self {
            packager: Packager::new(config).unwrap(),
            checker: if strict {
                checker.strict_parts()
            } else {
                checker
            },
            reports: vec![RenditionReport {
                uri: "../low/ll.m3u8".into(),
                last_msn: 3,
                last_part: Some(1),
            }],
            inits: Vec::new(),
            parts: Vec::new(),
            segments: Vec::new(),
            most_skipped: 0,
            last_full: String::new(),
            has_video: false,
            filling: Vec::new(),
            last_sequence: 0,
            tally: Tally::default(),
        }
    }

    fn configure(&mut self, stream: &Stream) {
        self.has_video = true;
        self.packager.set_avc_config(&stream.record).unwrap();
        self.packager.set_aac_config(&stream.asc).unwrap();
    }

    /// Feeds `laps` laps of the stream from `shift_ms` on, dated `wall_ms` at decode time 0.
    fn feed(&mut self, stream: &Stream, laps: u64, shift_ms: u64, wall_ms: u64) {
        for lap in 0..laps {
            for input in &stream.inputs {
                let lap_shift = shift_ms + lap * LAP_MS;
                match input {
                    Input::Video(frame) => {
                        let frame = VideoFrame {
                            dts_ms: frame.dts_ms + lap_shift,
                            ..frame.clone()
                        };
                        self.video(frame, wall_ms);
                    }
                    Input::Audio(dts_ms, data) => {
                        self.audio(dts_ms + lap_shift, data.clone(), wall_ms);
                    }
                }
            }
        }
    }

    fn video(&mut self, frame: VideoFrame, wall_ms: u64) {
        let now = wall_ms + frame.dts_ms;
        self.packager.push_video(frame, now).unwrap();
        self.drain();
    }

    fn audio(&mut self, dts_ms: u64, data: Bytes, wall_ms: u64) {
        self.packager
            .push_audio(dts_ms, data, wall_ms + dts_ms)
            .unwrap();
        self.drain();
    }

    fn restart(&mut self) {
        self.packager.restart().unwrap();
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(event) = self.packager.poll_event() {
            match event {
                Event::Init(init) => self.inits.push(init),
                Event::Chunk { id, data } => self.check_chunk(id, data),
                Event::Part(part) => {
                    self.check_part(&part);
                    self.parts.push(part);
                    self.check_revision();
                }
                Event::Segment(segment) => {
                    let parts: u64 = segment.parts.iter().map(|p| p.duration_us).sum();
                    assert_eq!(segment.duration_us, parts);
                    assert_eq!(Some(&segment), self.packager.segment(segment.msn));
                    self.segments.push(segment);
                }
            }
        }
    }

    /// A chunk reads back as one `moof` + `mdat` with the next sequence number; with video it
    /// holds one frame, audio-only at most [`AUDIO_CHUNK_FRAMES`] frames; audio is all sync.
    /// While its part fills, [`Packager::open_chunks`] lists it.
    fn check_chunk(&mut self, id: PartId, data: Bytes) {
        if let Some((previous, _)) = self.filling.last() {
            assert_eq!(*previous, id, "a part's chunks come before the next part's");
        }
        let (sequence, runs, media) = read_chunk(&data);
        assert_eq!(sequence, self.last_sequence.wrapping_add(1));
        self.last_sequence = sequence;
        let mut video = 0;
        for run in &runs {
            let samples = run.samples.len();
            if self.has_video && run.track_id == 1 {
                video += samples;
                self.tally.sync += run.samples.iter().filter(|s| s.1).count();
            } else {
                assert!(run.samples.iter().all(|&(d, sync)| d == 1024 && sync));
                assert!(self.has_video || samples <= AUDIO_CHUNK_FRAMES);
                self.tally.audio += samples;
            }
        }
        assert_eq!(video, usize::from(self.has_video), "one frame per chunk");
        self.tally.video += video;
        self.tally.chunks += 1;
        self.tally.bytes += data.len();
        self.tally.media += media;
        self.filling.push((id, data));
        if let Some(open) = self.packager.open_chunks(id) {
            let seen: Vec<&Bytes> = self.filling.iter().map(|(_, c)| c).collect();
            assert!(open.len() <= seen.len() && open.iter().zip(&seen).all(|(a, b)| a == *b));
        }
    }

    /// No part is longer than PART-TARGET; INDEPENDENT exactly when the first video sample is
    /// an IDR; its chunks are the buffers reported for it, their decode times contiguous from
    /// the part's start and their video durations summing to the part's.
    fn check_part(&mut self, part: &Part) {
        assert!(part.duration_us <= self.packager.config().part_target_us());
        let reported: Vec<(PartId, Bytes)> = std::mem::take(&mut self.filling);
        assert!(!part.chunks.is_empty());
        assert_eq!(reported.len(), part.chunks.len(), "{:?}", part.id());
        for ((id, data), chunk) in reported.iter().zip(&part.chunks) {
            assert_eq!(*id, part.id());
            assert_eq!(
                data.as_ptr(),
                chunk.as_ptr(),
                "the reported buffer, not a copy"
            );
        }
        let bytes: Vec<u8> = part.chunks.concat();
        assert_eq!(bytes.len(), part.size());
        let init = self.inits.last().unwrap();
        match check::first_video_sample_is_idr(&init.data, &bytes).unwrap() {
            Some(idr) => assert_eq!(part.independent, idr, "{:?}", part.id()),
            None => assert!(part.independent, "audio parts are independent"),
        }
        let mut next: Vec<(u32, u64)> = Vec::new();
        let mut video_ticks = 0u64;
        for (i, chunk) in part.chunks.iter().enumerate() {
            for run in read_chunk(chunk).1 {
                let duration: u64 = run.samples.iter().map(|s| u64::from(s.0)).sum();
                match next.iter_mut().find(|(track, _)| *track == run.track_id) {
                    Some((_, at)) => {
                        assert_eq!(run.base_decode_time, *at, "contiguous in {:?}", part.id());
                        *at += duration;
                    }
                    None => next.push((run.track_id, run.base_decode_time + duration)),
                }
                if self.has_video && run.track_id == 1 {
                    if i == 0 {
                        assert_eq!(run.base_decode_time, part.start_us * 9 / 100);
                        assert_eq!(run.samples[0].1, part.independent);
                    }
                    video_ticks += duration;
                }
            }
        }
        if self.has_video {
            assert_eq!(video_ticks, part.duration_us * 9 / 100, "{:?}", part.id());
        }
    }

    fn check_revision(&mut self) {
        let full = self.packager.render(Skip::No, &self.reports);
        let parsed = self
            .checker
            .check(&full)
            .unwrap_or_else(|e| panic!("{e}\n{full}"));
        let delta_text = self.packager.render(Skip::Yes, &self.reports);
        let delta = self
            .checker
            .check_delta(&parsed, &delta_text)
            .unwrap_or_else(|e| panic!("{e}\n{delta_text}"));
        self.most_skipped = self.most_skipped.max(delta.skipped);
        let uris = &self.packager.config().uris;
        let hint = uris.part(self.packager.live_edge().preload_hint());
        assert_eq!(parsed.preload_hint, Some(hint));
        for segment in parsed.segments.iter().chain(&parsed.open) {
            for (i, listed) in segment.parts.iter().enumerate() {
                let id = PartId {
                    msn: segment.msn,
                    part: i as u64,
                };
                let part = self.packager.part(id).unwrap();
                assert_eq!(listed.independent, part.independent);
                assert_eq!(listed.duration_us, part.duration_us);
            }
        }
        self.last_full = full;
    }
}

/// An access unit of one NALU of the given type.
fn nalu(kind: u8) -> Bytes {
    let mut au = vec![0, 0, 0, 200, kind];
    au.resize(204, 0xAB);
    Bytes::from(au)
}

/// A deterministic pseudo-random number below `bound`.
fn next_random(state: &mut u64, bound: u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 33) % bound.max(1)
}

/// `seconds` of 30 fps video with a keyframe every `gop` frames, each frame late by up to
/// `jitter_ms`, with 44.1 kHz audio interleaved in decode order.
fn synthetic(h: &mut Harness, seconds: u64, gop: u64, jitter_ms: u64) {
    let mut seed = 7;
    let mut audio = 0u64;
    for i in 0..seconds * 30 {
        let dts_ms = i * 1000 / 30 + next_random(&mut seed, jitter_ms + 1);
        loop {
            let audio_ms = audio * 1024 * 1000 / 44_100;
            if audio_ms > dts_ms {
                break;
            }
            h.audio(audio_ms, Bytes::from_static(&[0x21, 0x10, 0x04]), WALL_MS);
            audio += 1;
        }
        let keyframe = i % gop == 0;
        let frame = VideoFrame {
            dts_ms,
            cts_ms: 0,
            keyframe,
            data: nalu(if keyframe { 0x65 } else { 0x41 }),
        };
        h.video(frame, WALL_MS);
    }
}

fn synthetic_harness(strict: bool) -> Harness {
    let mut h = Harness::new(LlHlsConfig::default(), strict);
    h.configure(&sample());
    h
}

#[test]
fn sample_stream_passes_the_checker_on_every_revision() {
    let stream = sample();
    let mut h = Harness::new(LlHlsConfig::default(), true);
    h.configure(&stream);
    h.feed(&stream, 6, 0, WALL_MS);

    assert!(h.checker.revisions() > 2 * 170, "{}", h.checker.revisions());
    assert_eq!(
        h.segments.len(),
        29,
        "60 s in 2 s segments, the last one open"
    );
    for (msn, segment) in h.segments.iter().enumerate() {
        assert_eq!(segment.msn, msn as u64);
        assert_eq!(segment.duration_us, 2_000_000);
        assert_eq!(segment.parts.len(), 6);
        assert!(segment.independent());
        assert!(!segment.discontinuity);
        assert_eq!(
            segment.program_date_time_ms,
            WALL_MS + segment.start_us / 1000
        );
    }
    assert_eq!(h.packager.forced_cuts(), 0);
    assert_eq!(h.inits.len(), 1);
    assert!(h.most_skipped > 0, "delta updates skipped segments");
    assert!(h.last_full.contains("#EXT-X-PART-INF:PART-TARGET=0.334\n"));
    assert!(h.last_full.contains(
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,\
         PART-HOLD-BACK=1.002,HOLD-BACK=6.000\n"
    ));
    assert!(h.last_full.contains("#EXT-X-MAP:URI=\"init0.mp4\"\n"));
    assert!(h
        .last_full
        .contains("#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:58.000Z\n"));
    assert!(h
        .last_full
        .ends_with("#EXT-X-RENDITION-REPORT:URI=\"../low/ll.m3u8\",LAST-MSN=3,LAST-PART=1\n"));
    assert_eq!(h.packager.segment(0), None, "slid out of the window");
    assert_eq!(h.packager.decide_segment(0), FetchDecision::Gone);
    assert_eq!(h.packager.decide_segment(28), FetchDecision::Ready);
    // Every frame but the last, whose duration is still unknown, was written in its own chunk.
    assert_eq!(h.tally.video, 6 * 300 - 1);
    assert_eq!(h.tally.chunks, h.tally.video);
    assert_eq!(h.tally.sync, 30, "a keyframe every 2 s");
}

/// Bytes that are not samples, per second of the sample (30 fps, 44.1 kHz AAC): with a chunk
/// per frame, and as one `moof` + `mdat` per part would have them.
#[test]
fn chunk_overhead_at_30_fps() {
    let stream = sample();
    let mut h = Harness::new(LlHlsConfig::default(), true);
    h.configure(&stream);
    h.feed(&stream, 1, 0, WALL_MS);
    h.restart();
    let seconds = LAP_MS as usize / 1000;
    let chunked = (h.tally.bytes - h.tally.media) / seconds;
    // One fragment per part: moof, mfhd and mdat headers (32 bytes) and a traf without its
    // entries per track (64 each); the 16-byte trun entry per sample costs the same both ways.
    let samples = h.tally.video + h.tally.audio;
    let whole = (h.parts.len() * (32 + 2 * 64) + samples * 16) / seconds;
    eprintln!(
        "{} chunks in {} parts over {seconds} s: {chunked} B/s beside the samples, \
         {whole} B/s with one fragment per part, {} B/s ({} kbit/s) more",
        h.tally.chunks,
        h.parts.len(),
        chunked - whole,
        (chunked - whole) * 8 / 1000
    );
    assert_eq!(h.tally.video, 300);
    assert!(chunked - whole <= 30 * 160, "{chunked} vs {whole}");
}

/// The frames of [`synthetic`] one by one: each frame's arrival writes the previous frame, and
/// the audio before it, as one chunk of the part the cutting rules put it in, reported at once;
/// a finished part's event follows its last chunk.
#[test]
fn each_frame_is_written_as_a_chunk_when_the_next_arrives() {
    let stream = sample();
    let mut packager = Packager::new(LlHlsConfig::default()).unwrap();
    packager.set_avc_config(&stream.record).unwrap();
    packager.set_aac_config(&stream.asc).unwrap();
    let (mut audio, mut audio_written, mut parts) = (0u64, 0, 0);
    let mut previous_ms = 0;
    for i in 0..120u64 {
        let dts_ms = i * 1000 / 30;
        while audio * 1024 * 1000 / 44_100 <= dts_ms {
            let audio_ms = audio * 1024 * 1000 / 44_100;
            let data = Bytes::from_static(&[0x21, 0x10, 0x04]);
            packager.push_audio(audio_ms, data, WALL_MS).unwrap();
            assert_eq!(packager.poll_event(), None, "audio waits for its frame");
            audio += 1;
        }
        let hint = packager.live_edge().preload_hint();
        let keyframe = i % 60 == 0;
        let frame = VideoFrame {
            dts_ms,
            cts_ms: 0,
            keyframe,
            data: nalu(if keyframe { 0x65 } else { 0x41 }),
        };
        packager.push_video(frame, WALL_MS).unwrap();
        let events: Vec<Event> = std::iter::from_fn(|| packager.poll_event()).collect();
        if i == 0 {
            assert!(matches!(events[..], [Event::Init(_)]), "{events:?}");
            assert_eq!(
                packager.open_chunks(hint),
                Some(&[][..]),
                "open, no chunk yet"
            );
            previous_ms = dts_ms;
            continue;
        }
        let Some(Event::Chunk { id, data }) = events.first() else {
            panic!("frame {i}: {events:?}")
        };
        assert_eq!(*id, hint, "frame {}'s part", i - 1);
        let (_, runs, _) = read_chunk(data);
        let video = &runs[0];
        assert_eq!(video.base_decode_time, previous_ms * 90);
        let duration = u32::try_from((dts_ms - previous_ms) * 90).unwrap();
        assert_eq!(video.samples, [(duration, (i - 1) % 60 == 0)]);
        let due = (1..audio)
            .filter(|k| k * 1024 * 1000 / 44_100 < dts_ms)
            .count();
        audio_written += runs.get(1).map_or(0, |r| r.samples.len());
        assert_eq!(audio_written, due, "the audio before the frame's end");
        match &events[1..] {
            [] => {
                let open = packager.open_chunks(*id).expect("still filling");
                assert_eq!(open.last(), Some(data));
            }
            [Event::Part(part), rest @ ..] => {
                assert_eq!(part.id(), *id);
                assert_eq!(part.chunks.last(), Some(data));
                assert_eq!(packager.open_chunks(*id), None);
                assert_eq!(packager.part(*id), Some(part));
                let next = packager.live_edge().preload_hint();
                assert_eq!(packager.open_chunks(next), Some(&[][..]));
                assert!(matches!(rest, [] | [Event::Segment(_)]), "{rest:?}");
                parts += 1;
            }
            other => panic!("frame {i}: {other:?}"),
        }
        previous_ms = dts_ms;
    }
    assert_eq!(parts, 11, "4 s of 334 ms parts, the last still filling");
}

/// A republish writes the open part's last frame (lasting one frame interval) as its last
/// chunk and finishes the part, so a reader of the part being filled always sees it end.
#[test]
fn a_republish_writes_the_last_chunk_and_finishes_the_part() {
    let mut h = synthetic_harness(true);
    for i in 0..5u64 {
        let frame = VideoFrame {
            dts_ms: i * 40,
            cts_ms: 0,
            keyframe: i == 0,
            data: nalu(if i == 0 { 0x65 } else { 0x41 }),
        };
        h.video(frame, WALL_MS);
    }
    let id = PartId { msn: 0, part: 0 };
    assert_eq!(h.packager.open_chunks(id).map(<[Bytes]>::len), Some(4));
    assert!(h.parts.is_empty());
    h.restart();
    assert_eq!(h.packager.open_chunks(id), None);
    let part = h.packager.part(id).expect("finished");
    assert_eq!((part.chunks.len(), part.duration_us), (5, 200_000));
    assert_eq!(h.tally.chunks, 5);
}

/// Audio-only parts of 14 frames are written as chunks of 4, 4, 4 and 2 frames.
#[test]
fn audio_only_chunks_group_frames() {
    let mut h = Harness::new(LlHlsConfig::default(), true);
    h.packager.set_aac_config(&sample().asc).unwrap();
    let mut sizes = Vec::new();
    for k in 0..28u64 {
        let dts_ms = k * 1024 * 1000 / 44_100;
        let data = Bytes::from_static(&[0x21, 0x10, 0x04]);
        h.packager.push_audio(dts_ms, data, WALL_MS).unwrap();
        while let Some(event) = h.packager.poll_event() {
            if let Event::Chunk { data, .. } = event {
                sizes.push(read_chunk(&data).1[0].samples.len());
            }
        }
    }
    assert_eq!(sizes, [4, 4, 4, 2, 4, 4, 4, 2]);
}

#[test]
fn ffprobe_reads_init_and_segments() {
    if Command::new("ffprobe").arg("-version").output().is_err() {
        println!("skipped: ffprobe is not installed");
        return;
    }
    let stream = sample();
    let mut h = Harness::new(LlHlsConfig::default(), true);
    h.configure(&stream);
    h.feed(&stream, 1, 0, WALL_MS);
    h.restart();
    assert_eq!(h.segments.len(), 5);
    let mut file = h.inits[0].data.to_vec();
    for segment in &h.segments {
        for part in &segment.parts {
            for chunk in &part.chunks {
                file.extend_from_slice(chunk);
            }
        }
    }
    let path = std::env::temp_dir().join(format!("livepulse-llhls-{}.mp4", std::process::id()));
    std::fs::write(&path, &file).unwrap();
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-of", "csv=p=0", "-show_entries"])
        .arg("stream=codec_name")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "h264\naac\n");
}

#[test]
fn jittered_timestamps_never_overflow_part_target() {
    let mut h = synthetic_harness(false);
    synthetic(&mut h, 60, 45, 20);
    assert!(h.segments.len() > 30, "{}", h.segments.len());
    assert!(h.segments.iter().all(Segment::independent));
    assert_eq!(h.packager.forced_cuts(), 0);
    let short = h.parts.iter().filter(|p| p.duration_us < 284_000).count();
    assert!(short < h.parts.len() / 2, "{short} short parts");
}

#[test]
fn a_timestamp_jump_shortens_the_frame_before_it() {
    let mut h = synthetic_harness(true);
    for i in 0..180u64 {
        // Frame 89 (2966 ms) is followed by a 3 s hole.
        let dts_ms = i * 1000 / 30 + if i >= 90 { 3000 } else { 0 };
        let keyframe = i % 30 == 0;
        let data = nalu(if keyframe { 0x65 } else { 0x41 });
        let frame = VideoFrame {
            dts_ms,
            cts_ms: 0,
            keyframe,
            data,
        };
        h.video(frame, WALL_MS);
    }
    assert_eq!(h.packager.forced_cuts(), 0);
    let before = &h.segments[2];
    let shortened = before.parts.last().unwrap();
    assert_eq!(before.start_us, 2_000_000);
    assert_eq!(
        shortened.start_us + shortened.duration_us,
        3_000_000,
        "PART-TARGET"
    );
    let after = &h.segments[3];
    assert_eq!((after.start_us, after.independent()), (6_000_000, true));
    assert_eq!(
        after.program_date_time_ms,
        WALL_MS + 6000,
        "dated across the hole"
    );
}

#[test]
fn long_gop_forces_cuts_within_target_duration() {
    let mut h = synthetic_harness(true);
    synthetic(&mut h, 30, 150, 0);
    assert_eq!(h.packager.forced_cuts(), 12, "two per 5 s GOP");
    let starts: Vec<(u64, bool)> = h
        .segments
        .iter()
        .take(4)
        .map(|s| (s.duration_us, s.independent()))
        .collect();
    assert_eq!(
        starts,
        [
            (2_000_000, true),
            (2_000_000, false),
            (1_000_000, false),
            (2_000_000, true)
        ]
    );
    assert!(h.last_full.contains("#EXT-X-PART:DURATION=0.334,URI="));
}

#[test]
fn audio_only_parts_hold_whole_frames() {
    let mut h = Harness::new(LlHlsConfig::default(), true);
    h.packager.set_aac_config(&sample().asc).unwrap();
    for k in 0..900u64 {
        let dts_ms = k * 1024 * 1000 / 44_100;
        h.audio(dts_ms, Bytes::from_static(&[0x21, 0x10, 0x04]), WALL_MS);
    }
    assert!(h.segments.len() >= 15);
    for segment in &h.segments {
        assert_eq!(
            segment.parts.len(),
            4,
            "1.3 s: past the 1 s segment duration"
        );
        assert!(segment.independent());
        for part in &segment.parts {
            // 14 frames of 1024 samples at 44.1 kHz, in whole microseconds.
            assert!((325_079..=325_080).contains(&part.duration_us));
        }
    }
    assert_eq!(h.packager.forced_cuts(), 0);
}

#[test]
fn republish_continues_the_sequence_after_a_discontinuity() {
    let stream = sample();
    let mut h = Harness::new(LlHlsConfig::default(), true);
    h.configure(&stream);
    h.feed(&stream, 1, 0, WALL_MS);
    h.restart();
    let before = h.segments.len();
    let end_us = h.parts.last().map(|p| p.start_us + p.duration_us).unwrap();
    assert_eq!(end_us, 10_000_000);
    // The encoder comes back 5 s later with timestamps from 0 and the same configuration.
    h.configure(&stream);
    h.feed(&stream, 1, 0, WALL_MS + 15_000);
    let resumed = &h.segments[before];
    assert_eq!(resumed.msn, h.segments[before - 1].msn + 1);
    assert!(resumed.discontinuity);
    assert_eq!(resumed.start_us, end_us, "decode times continue");
    assert_eq!(resumed.program_date_time_ms, WALL_MS + 15_000);
    assert_eq!(resumed.init_id, 0, "same configuration, same init");
    assert!(h.last_full.contains("#EXT-X-DISCONTINUITY\n"));
    assert!(!h.last_full.contains("#EXT-X-DISCONTINUITY-SEQUENCE"));
    h.feed(&stream, 2, LAP_MS, WALL_MS + 15_000);
    assert!(h.last_full.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
    assert!(!h.last_full.contains("#EXT-X-DISCONTINUITY\n"));
    assert_eq!(h.inits.len(), 1);
}

#[test]
fn a_codec_change_brings_a_new_init_and_a_discontinuity() {
    let stream = sample();
    let mut h = Harness::new(LlHlsConfig::default(), false);
    h.configure(&stream);
    let half = stream.inputs.len() / 2;
    let feed = |h: &mut Harness, inputs: &[Input]| {
        for input in inputs {
            match input {
                Input::Video(frame) => h.video(frame.clone(), WALL_MS),
                Input::Audio(dts_ms, data) => h.audio(*dts_ms, data.clone(), WALL_MS),
            }
        }
    };
    feed(&mut h, &stream.inputs[..half]);
    let before = h.segments.len();
    h.packager
        .set_avc_config(&crate::test_sample::record_720p())
        .unwrap();
    h.drain();
    assert_eq!(h.segments.len(), before + 1, "the open segment ends");
    h.packager
        .set_avc_config(&crate::test_sample::record_720p())
        .unwrap();
    assert_eq!(
        h.packager.poll_event(),
        None,
        "the same record changes nothing"
    );
    feed(&mut h, &stream.inputs[half..]);
    assert_eq!(h.inits.len(), 2);
    let changed = &h.segments[before + 1];
    assert!(changed.discontinuity && changed.independent());
    assert_eq!(changed.init_id, 1);
    assert!(h
        .last_full
        .contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n"));
    assert!(h.packager.init(0).is_some(), "still needed by the window");
    assert_eq!(h.packager.current_init().map(|i| i.id), Some(1));
}

#[test]
fn directives_parse_or_fail_with_a_reason() {
    let good: [(&str, Option<u64>, Option<u64>, Skip); 8] = [
        ("", None, None, Skip::No),
        ("_HLS_msn=5", Some(5), None, Skip::No),
        ("?_HLS_msn=5&_HLS_part=2", Some(5), Some(2), Skip::No),
        ("_HLS_skip=YES", None, None, Skip::Yes),
        ("_HLS_skip=v2&_HLS_msn=0", Some(0), None, Skip::V2),
        (
            "token=a=b&_HLS_msn=18446744073709551615",
            Some(u64::MAX),
            None,
            Skip::No,
        ),
        (
            "_HLS_msn=007&_HLS_part=0000000000000000000000001",
            Some(7),
            Some(1),
            Skip::No,
        ),
        ("&&_HLS_part=3&_HLS_msn=1&", Some(1), Some(3), Skip::No),
    ];
    for (query, msn, part, skip) in good {
        let parsed = Directives::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(parsed, Directives { msn, part, skip }, "{query}");
    }
    use DirectiveError::*;
    let bad = [
        ("_HLS_msn=-1", NotDigits("_HLS_msn")),
        ("_HLS_msn=1&_HLS_part=abc", NotDigits("_HLS_part")),
        ("_HLS_msn=+1", NotDigits("_HLS_msn")),
        ("_HLS_msn=1.0", NotDigits("_HLS_msn")),
        ("_HLS_msn=%31", NotDigits("_HLS_msn")),
        ("_HLS_msn=%201", NotDigits("_HLS_msn")),
        ("_HLS_msn=18446744073709551616", TooLarge("_HLS_msn")),
        (
            "_HLS_msn=1&_HLS_part=99999999999999999999999",
            TooLarge("_HLS_part"),
        ),
        ("_HLS_msn=1&_HLS_msn=1", Repeated("_HLS_msn")),
        ("_HLS_msn=1&_HLS_part=0&_HLS_part=0", Repeated("_HLS_part")),
        ("_HLS_skip=YES&_HLS_skip=YES", Repeated("_HLS_skip")),
        ("_HLS_part=1", PartWithoutMsn),
        ("_HLS_msn=", Empty("_HLS_msn")),
        ("_HLS_msn", Empty("_HLS_msn")),
        ("_HLS_skip=", Empty("_HLS_skip")),
        ("_HLS_skip=NO", BadSkip),
        ("_HLS_skip=yes", BadSkip),
    ];
    for (query, error) in bad {
        assert_eq!(Directives::parse(query), Err(error), "{query}");
    }
}

/// Segment 10 has parts 0 and 1; part 2 is hinted. PART-TARGET 334 ms: the Advance Part Limit
/// is 3 / 0.334 = 8.98 parts.
fn edge() -> LiveEdge {
    LiveEdge {
        first_msn: 4,
        open_msn: 10,
        next_part: 2,
        last_part: Some(PartId { msn: 10, part: 1 }),
        part_target_us: 334_000,
    }
}

fn blocking(msn: u64, part: Option<u64>) -> Directives {
    Directives {
        msn: Some(msn),
        part,
        skip: Skip::No,
    }
}

#[test]
fn playlist_decisions_at_the_advance_limits() {
    use PlaylistDecision::*;
    let id = |msn, part| PartId { msn, part };
    let edge = edge();
    let cases = [
        (blocking(10, Some(1)), Ready),
        (blocking(9, Some(99)), Ready),
        (blocking(3, None), Ready),
        (blocking(10, None), Ready),
        (blocking(10, Some(2)), Wait(id(10, 2))),
        (blocking(10, Some(9)), Wait(id(10, 9))),
        (blocking(10, Some(10)), BadRequest(TooFar::Part)),
        (blocking(11, None), Wait(id(11, 0))),
        (blocking(11, Some(7)), Wait(id(11, 7))),
        (blocking(11, Some(8)), BadRequest(TooFar::Part)),
        (blocking(12, None), Wait(id(12, 0))),
        (blocking(12, Some(6)), Wait(id(12, 6))),
        (blocking(12, Some(7)), BadRequest(TooFar::Part)),
        (blocking(13, None), BadRequest(TooFar::Msn)),
        (blocking(u64::MAX, Some(u64::MAX)), BadRequest(TooFar::Msn)),
        (blocking(10, Some(u64::MAX)), BadRequest(TooFar::Part)),
        (Directives::default(), Ready),
    ];
    for (directives, decision) in cases {
        assert_eq!(
            decide_playlist(&directives, &edge),
            decision,
            "{directives:?}"
        );
    }
    // The limit follows PART-TARGET: 15 parts at 0.2 s, 6 at 0.5 s.
    for (part_target_us, last_ok) in [(200_000, 16), (500_000, 7)] {
        let edge = LiveEdge {
            part_target_us,
            ..edge
        };
        let wait = decide_playlist(&blocking(10, Some(last_ok)), &edge);
        assert_eq!(wait, Wait(id(10, last_ok)));
        let refused = decide_playlist(&blocking(10, Some(last_ok + 1)), &edge);
        assert_eq!(refused, BadRequest(TooFar::Part));
    }
    // A segment just closed: its next part may never come, so wait for anything later.
    let closed = LiveEdge {
        open_msn: 11,
        next_part: 0,
        ..edge
    };
    assert_eq!(
        decide_playlist(&blocking(10, Some(2)), &closed),
        Wait(id(10, 2))
    );
    assert_eq!(
        decide_playlist(&blocking(13, None), &closed),
        BadRequest(TooFar::Msn)
    );
    assert_eq!(
        decide_playlist(&blocking(12, None), &closed),
        Wait(id(12, 0))
    );
    let empty = LiveEdge {
        first_msn: 0,
        open_msn: 0,
        next_part: 0,
        last_part: None,
        part_target_us: 334_000,
    };
    assert_eq!(
        decide_playlist(&Directives::default(), &empty),
        Wait(id(0, 0))
    );
    assert_eq!(decide_playlist(&blocking(2, None), &empty), Wait(id(2, 0)));
    assert_eq!(
        decide_playlist(&blocking(3, None), &empty),
        BadRequest(TooFar::Msn)
    );
}

#[test]
fn fetch_decisions() {
    use FetchDecision::*;
    let id = |msn, part| PartId { msn, part };
    let edge = edge();
    assert_eq!(decide_part(&edge, id(10, 1), true), Ready);
    assert_eq!(decide_part(&edge, id(3, 0), false), Gone);
    assert_eq!(
        decide_part(&edge, id(9, 6), false),
        NotFound,
        "past its segment's parts"
    );
    assert_eq!(
        decide_part(&edge, id(10, 2), false),
        Wait,
        "the hinted part"
    );
    assert_eq!(
        decide_part(&edge, id(11, 0), false),
        Wait,
        "or the next segment's first"
    );
    assert_eq!(
        decide_part(&edge, id(10, 10), false),
        NotFound,
        "beyond the limit"
    );
    assert_eq!(decide_segment(&edge, 9, true), Ready);
    assert_eq!(decide_segment(&edge, 3, false), Gone);
    assert_eq!(decide_segment(&edge, 10, false), Wait);
    assert_eq!(decide_segment(&edge, 11, false), NotFound);

    // Against a live packager: the hinted part is held until it is cut, and it always is:
    // the frame that closes a segment's last part also opens the next segment.
    let stream = sample();
    let mut h = Harness::new(LlHlsConfig::default(), true);
    h.configure(&stream);
    let mut waiting: Option<PartId> = None;
    let mut answered = 0;
    for input in &stream.inputs {
        match input {
            Input::Video(frame) => h.video(frame.clone(), WALL_MS),
            Input::Audio(dts_ms, data) => h.audio(*dts_ms, data.clone(), WALL_MS),
        }
        if let Some(held) = waiting {
            match h.packager.decide_part(held) {
                Ready => {
                    answered += 1;
                    waiting = None;
                }
                other => assert_eq!(other, Wait, "{held:?}"),
            }
        }
        let hint = h.packager.live_edge().preload_hint();
        if waiting.is_none() {
            assert_eq!(h.packager.decide_part(hint), Wait);
            waiting = Some(hint);
        }
    }
    assert_eq!(answered, h.parts.len());
    // A republish ends the segment: the hinted part is cut from what there is, the one after
    // it will never exist, and the hint moves to the next segment.
    let hint = h.packager.live_edge().preload_hint();
    h.restart();
    assert_eq!(h.packager.decide_part(hint), Ready);
    let after = PartId {
        part: hint.part + 1,
        ..hint
    };
    assert_eq!(h.packager.decide_part(after), NotFound);
    let next = h.packager.live_edge().preload_hint();
    assert_eq!(next, id(hint.msn + 1, 0));
    assert_eq!(h.packager.decide_part(next), Wait);
    assert_eq!(h.packager.decide_segment(hint.msn), Ready);
    assert_eq!(h.packager.decide_segment(hint.msn + 1), Wait);
}

#[test]
fn config_and_templates_are_checked() {
    let base = LlHlsConfig::default();
    assert_eq!(base.validate(), Ok(()));
    assert_eq!(base.hold_timeout(), Duration::from_secs(6));
    let bad = [
        LlHlsConfig {
            part_target: Duration::from_millis(199),
            ..base.clone()
        },
        LlHlsConfig {
            part_target: Duration::from_micros(333_500),
            ..base.clone()
        },
        LlHlsConfig {
            target_duration: 0,
            ..base.clone()
        },
        LlHlsConfig {
            segment_duration: Duration::from_secs(3),
            ..base.clone()
        },
        LlHlsConfig {
            window: 5,
            ..base.clone()
        },
        LlHlsConfig {
            window: MAX_WINDOW + 1,
            ..base.clone()
        },
    ];
    let fields = [
        "part_target",
        "part_target",
        "target_duration",
        "segment_duration",
        "window",
        "window",
    ];
    for (config, field) in bad.iter().zip(fields) {
        assert_eq!(config.validate(), Err(LlHlsError::Config(field)));
        assert!(Packager::new(config.clone()).is_err());
    }
    let template = UriTemplate::new(
        "s/ll/{msn}.{part}.m4s",
        "s/ll/{msn}.m4s",
        "s/ll/i{init}.mp4",
    );
    let template = template.unwrap();
    assert_eq!(template.part(PartId { msn: 3, part: 4 }), "s/ll/3.4.m4s");
    assert_eq!(template.segment(3), "s/ll/3.m4s");
    assert_eq!(template.init(0), "s/ll/i0.mp4");
    for (part, segment, init) in [
        ("{msn}.m4s", "{msn}.m4s", "{init}.mp4"),
        ("{msn}.{part}.m4s", "x.m4s", "{init}.mp4"),
        ("{msn}.{part}.m4s", "{msn}.m4s", "init.mp4"),
        ("\"{msn}.{part}", "{msn}.m4s", "{init}.mp4"),
        ("{msn}.{part}\n", "{msn}.m4s", "{init}.mp4"),
    ] {
        assert!(
            UriTemplate::new(part, segment, init).is_err(),
            "{part} {segment} {init}"
        );
    }
}

#[test]
fn numbers_and_dates_render_exactly() {
    use super::playlist::{date_time, seconds};
    assert_eq!(seconds(2_000_000), "2.000");
    assert_eq!(seconds(334_000), "0.334");
    assert_eq!(seconds(325_079), "0.325079");
    assert_eq!(seconds(1_000_100), "1.0001");
    assert_eq!(date_time(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(date_time(WALL_MS + 123), "2024-05-01T12:00:00.123Z");
    assert_eq!(date_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(date_time(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
}

#[test]
fn the_checker_catches_violations() {
    let stream = sample();
    let mut h = Harness::new(LlHlsConfig::default(), true);
    h.configure(&stream);
    h.feed(&stream, 2, 0, WALL_MS);
    let full = h.last_full.clone();
    let fresh = || Checker::new(UriTemplate::default()).strict_parts();
    assert!(fresh().check(&full).is_ok());
    let broken = [
        full.replacen("DURATION=0.334", "DURATION=0.335", 1),
        full.replacen("#EXTINF:2.000", "#EXTINF:2.001", 1),
        full.replacen("PART-HOLD-BACK=1.002", "PART-HOLD-BACK=0.900", 1),
        full.replacen("HOLD-BACK=6.000", "HOLD-BACK=5.000", 1),
        full.replacen("CAN-BLOCK-RELOAD=YES", "CAN-BLOCK-RELOAD=NO", 1),
        full.replacen("#EXT-X-VERSION:9", "#EXT-X-VERSION:5", 1),
        full.replacen(".m4s\"\n#EXT-X-RENDITION", "x.m4s\"\n#EXT-X-RENDITION", 1),
        full.clone() + "#EXT-X-BOGUS\n",
    ];
    for text in &broken {
        assert_ne!(text, &full);
        assert!(fresh().check(text).is_err(), "accepted:\n{text}");
    }
    let mut checker = fresh();
    checker.check(&full).unwrap();
    let changed = full.replacen("PART-TARGET=0.334", "PART-TARGET=0.335", 1);
    assert!(checker.check(&changed).is_err(), "PART-TARGET changed");
    let older = full.replacen("#EXT-X-MEDIA-SEQUENCE:2", "#EXT-X-MEDIA-SEQUENCE:1", 1);
    assert_ne!(older, full);
    assert!(checker.check(&older).is_err(), "media sequence went back");
    let dependent = full.replacen(",INDEPENDENT=YES", "", 1);
    assert!(fresh().check(&dependent).is_ok());
    assert!(checker.check(&dependent).is_err(), "a part changed");
    let mut checker = fresh();
    let parsed = checker.check(&full).unwrap();
    let delta = h.packager.render(Skip::Yes, &h.reports);
    assert!(checker.check_delta(&parsed, &delta).is_ok());
    let wrong = delta.replacen("SKIPPED-SEGMENTS=1", "SKIPPED-SEGMENTS=2", 1);
    assert_ne!(wrong, delta);
    assert!(checker.check_delta(&parsed, &wrong).is_err());
}

#[test]
fn errors_instead_of_panics() {
    let stream = sample();
    let mut packager = Packager::new(LlHlsConfig::default()).unwrap();
    let frame = |dts_ms, keyframe: bool, data: Bytes| VideoFrame {
        dts_ms,
        cts_ms: 0,
        keyframe,
        data,
    };
    assert_eq!(
        packager.push_video(frame(0, true, nalu(0x65)), WALL_MS),
        Err(LlHlsError::NoAvcConfig)
    );
    assert_eq!(
        packager.push_audio(0, Bytes::new(), WALL_MS),
        Err(LlHlsError::NoAacConfig)
    );
    assert!(packager.set_avc_config(&[1, 2, 3]).is_err());
    assert!(packager.set_aac_config(&[0x12]).is_err());
    packager.set_avc_config(&stream.record).unwrap();
    packager.set_aac_config(&stream.asc).unwrap();
    let broken = Bytes::from_static(&[0, 0, 0, 9, 0x65]);
    assert!(matches!(
        packager.push_video(frame(0, true, broken), WALL_MS),
        Err(LlHlsError::Avc(_))
    ));
    assert_eq!(
        packager.push_video(frame(u64::MAX, true, nalu(0x65)), WALL_MS),
        Err(LlHlsError::TimestampOverflow)
    );
    let mut packager = Packager::new(LlHlsConfig::default()).unwrap();
    packager.set_avc_config(&stream.record).unwrap();
    packager.set_aac_config(&stream.asc).unwrap();
    packager
        .push_video(frame(40, true, nalu(0x65)), WALL_MS)
        .unwrap();
    assert_eq!(
        packager.push_video(frame(40, false, nalu(0x41)), WALL_MS),
        Err(LlHlsError::VideoDtsNotIncreasing {
            dts_ms: 40,
            last_ms: 40
        })
    );
    packager.push_audio(50, Bytes::new(), WALL_MS).unwrap();
    assert_eq!(
        packager.push_audio(49, Bytes::new(), WALL_MS),
        Err(LlHlsError::AudioDtsWentBack {
            dts_ms: 49,
            last_ms: 50
        })
    );
    let queued = (1..MAX_QUEUED_AUDIO as u64)
        .map(|i| packager.push_audio(50 + i, Bytes::new(), WALL_MS))
        .collect::<Result<Vec<()>, _>>();
    assert!(queued.is_ok());
    assert_eq!(
        packager.push_audio(5000, Bytes::new(), WALL_MS),
        Err(LlHlsError::AudioBacklog)
    );
}
