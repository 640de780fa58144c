//! The reader against the writer (init segments, fragments, segments of parts), hand-built
//! boxes for what the writer never emits (defaults, version 0, 64-bit sizes, explicit base
//! offsets), refusals of hostile sizes and counts, and arbitrary bytes that never panic.

use proptest::prelude::*;

use super::*;
use crate::fmp4::{AudioTrack, Movie, Run, VideoTrack, VIDEO_TIMESCALE};
use crate::test_sample::fmp4_sample as sample;

/// The built-in sample's AVC record and AudioSpecificConfig.
fn configs() -> (Vec<u8>, Vec<u8>) {
    let s = crate::test_sample::sample_stream();
    (s.record, s.asc)
}

fn movie() -> Movie {
    let (record, asc) = configs();
    Movie::new(
        Some(VideoTrack::new(&record).expect("video")),
        Some(AudioTrack::new(&asc).expect("audio")),
    )
    .expect("movie")
}

/// A box of `kind` around `body`.
fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len() + 8).expect("small box");
    [&size.to_be_bytes()[..], kind, body].concat()
}

/// A full box: version, flags, then `body`.
fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let head = (u32::from(version) << 24) | (flags & 0x00FF_FFFF);
    bx(kind, &[&head.to_be_bytes()[..], body].concat())
}

/// An init segment with one track of `handler` and `timescale`, and a `trex` of `defaults`.
fn one_track_init(id: u32, handler: &[u8; 4], timescale: u32, defaults: [u32; 3]) -> Vec<u8> {
    let trex_body: Vec<u8> = [id, 1, defaults[0], defaults[1], defaults[2]]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let mvex = bx(b"mvex", &full(b"trex", 0, 0, &trex_body));
    bx(b"moov", &[trak(id, handler, timescale), mvex].concat())
}

/// A `trak` without sample entries.
fn trak(id: u32, handler: &[u8; 4], timescale: u32) -> Vec<u8> {
    let tkhd = full(
        b"tkhd",
        0,
        3,
        &[&[0; 8][..], &id.to_be_bytes(), &[0; 68]].concat(),
    );
    let mdhd = full(
        b"mdhd",
        0,
        0,
        &[&[0; 8][..], &timescale.to_be_bytes(), &[0; 8]].concat(),
    );
    let hdlr = full(b"hdlr", 0, 0, &[&[0; 4][..], handler, &[0; 13]].concat());
    bx(
        b"trak",
        &[tkhd, bx(b"mdia", &[mdhd, hdlr].concat())].concat(),
    )
}

#[test]
fn init_segments_of_the_writer_read_back() {
    let init = read_init(&movie().init_segment().expect("init")).expect("reads");
    assert_eq!(init.tracks.len(), 2);
    let video = init.video().expect("a video track");
    assert_eq!(
        (
            video.id,
            video.timescale,
            video.handler,
            video.nalu_length_size
        ),
        (1, VIDEO_TIMESCALE, Handler::Video, Some(4))
    );
    let audio = init.track(2).expect("audio is track 2");
    assert_eq!(
        (audio.handler, audio.timescale, audio.nalu_length_size),
        (Handler::Audio, 44_100, None)
    );
    assert_eq!(audio.defaults, SampleDefaults::default());
    let (_, asc) = configs();
    let only_audio = Movie::new(None, Some(AudioTrack::new(&asc).expect("audio"))).expect("movie");
    let init = read_init(&only_audio.init_segment().expect("init")).expect("reads");
    assert!(init.video().is_none());
    assert_eq!(init.track(1).map(|t| t.handler), Some(Handler::Audio));
}

#[test]
fn fragments_of_the_writer_read_back_and_a_segment_is_its_parts() {
    let movie = movie();
    let init = read_init(&movie.init_segment().expect("init")).expect("reads");
    let video = [
        sample(3000, 6000, true, b"idr"),
        sample(3000, -3000, false, b"p-frame"),
    ];
    let audio = [
        sample(1024, 0, true, b"aac1"),
        sample(1024, 0, true, b"aac2"),
    ];
    let first = movie
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
    let read = read_samples(&first, &init).expect("reads");
    let seen: Vec<_> = read
        .iter()
        .map(|s| {
            (
                s.track_id,
                s.decode_time,
                s.duration,
                s.composition_offset,
                s.is_sync,
                s.data,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, 90_000, 3000, 6000, true, &b"idr"[..]),
            (1, 93_000, 3000, -3000, false, b"p-frame"),
            (2, 44_100, 1024, 0, true, b"aac1"),
            (2, 45_124, 1024, 0, true, b"aac2"),
        ]
    );
    let second = movie
        .fragment(
            2,
            Run {
                base_decode_time: 96_000,
                samples: &video[1..],
            },
            Run::default(),
        )
        .expect("fragment");
    let segment = [&first[..], &second].concat();
    let read = read_samples(&segment, &init).expect("reads");
    assert_eq!(read.len(), 5);
    assert_eq!(
        (read[4].decode_time, read[4].data),
        (96_000, &b"p-frame"[..])
    );
    // An init segment and fragments in one buffer (a whole file) read the same.
    let file = [&movie.init_segment().expect("init")[..], &segment].concat();
    assert_eq!(read_samples(&file, &init).expect("reads"), read);
}

#[test]
fn defaults_version_0_boxes_64_bit_sizes_and_explicit_base_offsets() {
    let init = read_init(&one_track_init(7, b"soun", 48_000, [960, 3, 0x0101_0000])).expect("init");
    let track = init.track(7).expect("track 7");
    assert_eq!(
        track.defaults,
        SampleDefaults {
            duration: 960,
            size: 3,
            flags: 0x0101_0000
        }
    );
    // tfhd overrides the size; a version 0 tfdt; a trun with only a data offset and the first
    // sample's flags; an mdat with a 64-bit size.
    let tfhd = full(
        b"tfhd",
        0,
        0x02_0010,
        &[&7u32.to_be_bytes()[..], &2u32.to_be_bytes()].concat(),
    );
    let tfdt = full(b"tfdt", 0, 0, &5u32.to_be_bytes());
    let trun_len = 8 + 4 + 4 + 4 + 4;
    let moof_len = 8 + 8 + tfhd.len() + tfdt.len() + trun_len;
    let offset = i32::try_from(moof_len + 16).expect("small");
    let trun = full(
        b"trun",
        0,
        0x00_0005,
        &[
            &2u32.to_be_bytes()[..],
            &offset.to_be_bytes(),
            &0x0200_0000u32.to_be_bytes(),
        ]
        .concat(),
    );
    let traf = bx(b"traf", &[tfhd.clone(), tfdt.clone(), trun].concat());
    let moof = bx(b"moof", &traf);
    assert_eq!(moof.len(), moof_len);
    let mdat = [
        &1u32.to_be_bytes()[..],
        b"mdat",
        &20u64.to_be_bytes(),
        b"abcd",
    ]
    .concat();
    let part = [moof, mdat].concat();
    let read = read_samples(&part, &init).expect("reads");
    let seen: Vec<_> = read
        .iter()
        .map(|s| (s.decode_time, s.duration, s.is_sync, s.data))
        .collect();
    assert_eq!(seen, [(5, 960, true, &b"ab"[..]), (965, 960, false, b"cd")]);
    assert_eq!(track.duration(960), Duration::from_millis(20));
    assert_eq!(track.millis(965), 20);

    // A base data offset from the start of the buffer instead of the moof; no tfdt: the
    // decode time continues from the previous fragment in the buffer.
    let tfhd = full(
        b"tfhd",
        0,
        0x00_0001,
        &[&7u32.to_be_bytes()[..], &0u64.to_be_bytes()].concat(),
    );
    let trun = full(
        b"trun",
        0,
        0x00_0201,
        &[
            &1u32.to_be_bytes()[..],
            &(part.len() as i32 - 2).to_be_bytes(),
            &2u32.to_be_bytes(),
        ]
        .concat(),
    );
    let second = bx(b"moof", &bx(b"traf", &[tfhd, trun].concat()));
    let both = [&part[..], &second].concat();
    let read = read_samples(&both, &init).expect("reads");
    assert_eq!(read.len(), 3);
    assert_eq!((read[2].decode_time, read[2].data), (1925, &b"cd"[..]));
}

#[test]
fn hostile_sizes_counts_and_offsets_are_refused() {
    let init = read_init(&one_track_init(1, b"vide", 90_000, [0; 3])).expect("init");
    assert_eq!(init.video().and_then(|v| v.nalu_length_size), None);
    let tfhd = full(b"tfhd", 0, 0x02_0000, &1u32.to_be_bytes());
    let fragment = |trun: Vec<u8>| bx(b"moof", &bx(b"traf", &[tfhd.clone(), trun].concat()));
    // Four billion samples claimed by a 20-byte trun.
    let huge = full(
        b"trun",
        1,
        0x00_0301,
        &[&u32::MAX.to_be_bytes()[..], &[0; 12]].concat(),
    );
    assert_eq!(
        read_samples(&fragment(huge), &init),
        Err(ReadError::Short("trun"))
    );
    // Samples without per-sample fields are bounded by the sample cap.
    let empty = full(b"trun", 0, 0, &u32::MAX.to_be_bytes());
    assert_eq!(
        read_samples(&fragment(empty), &init),
        Err(ReadError::TooManySamples)
    );
    // A sample running past the buffer; a negative offset before it.
    for (offset, size) in [(0i32, 1_000_000u32), (-100, 1)] {
        let trun = full(
            b"trun",
            0,
            0x00_0201,
            &[
                &1u32.to_be_bytes()[..],
                &offset.to_be_bytes(),
                &size.to_be_bytes(),
            ]
            .concat(),
        );
        assert_eq!(
            read_samples(&fragment(trun), &init),
            Err(ReadError::DataOutOfRange)
        );
    }
    // A box claiming more than its parent holds, a 64-bit size past the end, a tiny size.
    for bad in [
        [&100u32.to_be_bytes()[..], b"moof"].concat(),
        [&1u32.to_be_bytes()[..], b"moof", &u64::MAX.to_be_bytes()].concat(),
        [&4u32.to_be_bytes()[..], b"moof"].concat(),
        b"moo".to_vec(),
    ] {
        assert!(
            matches!(
                read_samples(&bad, &init),
                Err(ReadError::BadBoxSize(_) | ReadError::Short(_))
            ),
            "{bad:?}"
        );
    }
    let other = bx(
        b"moof",
        &bx(b"traf", &full(b"tfhd", 0, 0, &9u32.to_be_bytes())),
    );
    assert_eq!(read_samples(&other, &init), Err(ReadError::UnknownTrack(9)));
    // A decode time past u64::MAX.
    let tfdt = full(b"tfdt", 1, 0, &u64::MAX.to_be_bytes());
    let trun = full(
        b"trun",
        0,
        0x00_0100,
        &[&1u32.to_be_bytes()[..], &5u32.to_be_bytes()].concat(),
    );
    let late = bx(b"moof", &bx(b"traf", &[tfhd.clone(), tfdt, trun].concat()));
    assert_eq!(read_samples(&late, &init), Err(ReadError::TimeOverflow));
    assert_eq!(
        read_init(&one_track_init(1, b"vide", 0, [0; 3])),
        Err(ReadError::ZeroTimescale(1))
    );
    assert_eq!(read_init(b""), Err(ReadError::Missing("moov")));
    let many = bx(
        b"moov",
        &(0..=MAX_TRACKS as u32)
            .flat_map(|id| trak(id, b"text", 1000))
            .collect::<Vec<u8>>(),
    );
    assert_eq!(read_init(&many), Err(ReadError::TooManyTracks));
}

#[test]
fn timescale_conversions_are_exact_and_saturate() {
    let track = TrackInfo {
        id: 1,
        timescale: 90_000,
        handler: Handler::Video,
        nalu_length_size: Some(4),
        defaults: SampleDefaults::default(),
    };
    assert_eq!(track.duration(3003), Duration::from_nanos(33_366_666));
    assert_eq!(track.millis(90_000 * 5 + 45_000), 5500);
    assert_eq!(track.millis(u64::MAX), u64::MAX / 90);
    let fast = TrackInfo {
        timescale: 1,
        ..track
    };
    assert_eq!(fast.millis(u64::MAX), u64::MAX);
    assert_eq!(fast.duration(u64::MAX), Duration::from_secs(u64::MAX));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let init = read_init(&movie().init_segment().expect("init")).expect("reads");
        let _ = read_init(&data);
        if let Ok(samples) = read_samples(&data, &init) {
            prop_assert!(samples.len() <= MAX_SAMPLES);
        }
    }

    #[test]
    fn damaged_fragments_never_panic(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let movie = movie();
        let init = read_init(&movie.init_segment().expect("init")).expect("reads");
        let video = [sample(3000, 0, true, b"frame one"), sample(3000, 0, false, b"two")];
        let mut fragment = movie
            .fragment(1, Run { base_decode_time: 0, samples: &video }, Run::default())
            .expect("fragment")
            .to_vec();
        let i = at.index(fragment.len());
        fragment[i] = byte;
        let _ = read_samples(&fragment, &init);
        let _ = read_samples(&fragment[..cut.index(fragment.len())], &init);
    }
}
