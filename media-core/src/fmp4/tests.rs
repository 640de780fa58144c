//! Golden bytes checked by hand against ISO/IEC 14496-1/-12/-14, round trips through mp4-atom
//! (an independent reader), the sample stream as parts of a chunk per frame, and ffprobe when
//! installed.

use std::process::Command;

use mp4_atom::{Codec, Decode, Ftyp, Mdat, Moof, Moov};
use proptest::prelude::*;

use super::*;
use crate::test_sample::{fmp4_sample as sample, record_720p as record, SampleFrame};

/// AAC LC, 44.1 kHz, stereo.
const ASC: [u8; 2] = [0x12, 0x10];

fn movie(video: bool, audio: bool) -> Movie {
    Movie::new(
        video.then(|| VideoTrack::new(&record()).unwrap()),
        audio.then(|| AudioTrack::new(&ASC).unwrap()),
    )
    .unwrap()
}

/// The boxes laid end to end in `data`.
fn boxes(mut data: &[u8]) -> Vec<&[u8]> {
    let mut found = Vec::new();
    while !data.is_empty() {
        let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        found.push(&data[..size]);
        data = &data[size..];
    }
    found
}

/// The box at `path`, each step a child of the previous, header included.
fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
    let mut scope = data;
    let mut found = data;
    for kind in path {
        found = boxes(scope)
            .into_iter()
            .find(|b| &b[4..8] == *kind)
            .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(*kind)));
        // Children follow the header, a full box's entry count, or a sample entry's fields.
        let children = match *kind {
            b"stsd" | b"dref" => 16,
            b"avc1" => 86,
            b"mp4a" => 36,
            _ => 8,
        };
        scope = &found[children.min(found.len())..];
    }
    found
}

/// The children of the `n`th `trak`.
fn nth_trak(init: &[u8], n: usize) -> &[u8] {
    let moov = find(init, &[b"moov"]);
    let trak = boxes(&moov[8..])
        .into_iter()
        .filter(|b| &b[4..8] == b"trak")
        .nth(n)
        .unwrap();
    &trak[8..]
}

#[test]
fn init_segment_golden_boxes() {
    let init = movie(true, true).init_segment().unwrap();
    assert_eq!(
        find(&init, &[b"ftyp"]),
        [
            &[0, 0, 0, 0x18][..],
            b"ftyp",
            b"iso6",
            &[0; 4],
            b"iso6",
            b"mp41"
        ]
        .concat()
    );
    let mvhd = find(&init, &[b"moov", b"mvhd"]);
    assert_eq!(mvhd.len(), 108);
    assert_eq!(
        &mvhd[8..24],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]
    );
    assert_eq!(&mvhd[104..], &[0, 0, 0, 3], "next_track_ID");

    let video = nth_trak(&init, 0);
    let tkhd = find(video, &[b"tkhd"]);
    assert_eq!(
        &tkhd[..12],
        &[&[0, 0, 0, 0x5c][..], b"tkhd", &[0, 0, 0, 3]].concat()
    );
    assert_eq!(&tkhd[20..24], &[0, 0, 0, 1], "track_ID");
    assert_eq!(&tkhd[44..46], &[0, 0], "volume");
    assert_eq!(
        &tkhd[84..],
        &[0x05, 0x00, 0, 0, 0x02, 0xd0, 0, 0],
        "1280x720 in 16.16"
    );
    let mdhd = find(video, &[b"mdia", b"mdhd"]);
    assert_eq!(mdhd.len(), 32);
    assert_eq!(&mdhd[20..24], &[0, 0x01, 0x5f, 0x90], "90000");
    assert_eq!(&mdhd[28..], &[0x55, 0xc4, 0, 0], "und");
    assert_eq!(
        find(video, &[b"mdia", b"hdlr"]),
        [
            &[0, 0, 0, 45][..],
            b"hdlr",
            &[0; 8],
            b"vide",
            &[0; 12],
            b"VideoHandler\0"
        ]
        .concat()
    );
    assert_eq!(
        find(video, &[b"mdia", b"minf", b"vmhd"]),
        [&[0, 0, 0, 0x14][..], b"vmhd", &[0, 0, 0, 1], &[0; 8]].concat()
    );
    assert_eq!(
        find(video, &[b"mdia", b"minf", b"dinf", b"dref"]),
        [
            &[0, 0, 0, 0x1c][..],
            b"dref",
            &[0, 0, 0, 0, 0, 0, 0, 1], // entry_count 1
            &[0, 0, 0, 0x0c],
            b"url ",
            &[0, 0, 0, 1], // flags: media data in the same file
        ]
        .concat()
    );
    let stbl = [b"mdia", b"minf", b"stbl"];
    let avc1 = find(video, &[stbl[0], stbl[1], stbl[2], b"stsd", b"avc1"]);
    assert_eq!(avc1.len(), 8 + 78 + 8 + 40);
    assert_eq!(&avc1[14..16], &[0, 1], "data_reference_index");
    assert_eq!(&avc1[32..36], &[0x05, 0x00, 0x02, 0xd0], "1280x720");
    assert_eq!(
        &avc1[74..86],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0x18, 0xff, 0xff]
    );
    assert_eq!(
        &avc1[86..],
        [&[0, 0, 0, 48][..], b"avcC", &record()].concat(),
        "avcC holds the record as given"
    );
    for kind in [b"stts", b"stsc", b"stco"] {
        let empty = [&[0, 0, 0, 0x10][..], kind, &[0; 8]].concat();
        assert_eq!(find(video, &[stbl[0], stbl[1], stbl[2], kind]), empty);
    }
    assert_eq!(
        find(video, &[stbl[0], stbl[1], stbl[2], b"stsz"]),
        [&[0, 0, 0, 0x14][..], b"stsz", &[0; 12]].concat()
    );

    let audio = nth_trak(&init, 1);
    assert_eq!(&find(audio, &[b"tkhd"])[20..24], &[0, 0, 0, 2]);
    assert_eq!(&find(audio, &[b"tkhd"])[44..46], &[1, 0], "volume 1.0");
    assert_eq!(
        &find(audio, &[b"mdia", b"mdhd"])[20..24],
        &[0, 0, 0xac, 0x44],
        "44100"
    );
    assert_eq!(
        find(audio, &[b"mdia", b"minf", b"smhd"]),
        [&[0, 0, 0, 0x10][..], b"smhd", &[0; 8]].concat()
    );
    let mp4a = find(audio, &[stbl[0], stbl[1], stbl[2], b"stsd", b"mp4a"]);
    assert_eq!(
        &mp4a[..36],
        &[
            &[0, 0, 0, 75][..],
            b"mp4a",
            &[0, 0, 0, 0, 0, 0, 0, 1], // reserved, data_reference_index
            &[0; 8],
            &[0, 2, 0, 16, 0, 0, 0, 0], // channelcount, samplesize, pre_defined, reserved
            &[0xac, 0x44, 0, 0],        // 44100 in 16.16
        ]
        .concat()[..]
    );
    assert_eq!(
        &mp4a[36..],
        &[
            &[0, 0, 0, 39][..],
            b"esds",
            &[0, 0, 0, 0],
            &[0x03, 25, 0, 0, 0], // ES_Descriptor: 25 bytes, ES_ID 0, no flags
            &[0x04, 17, 0x40, 0x15], // DecoderConfig: 17 bytes, MPEG-4 Audio, audio stream
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // bufferSizeDB, maxBitrate, avgBitrate
            &[0x05, 2, 0x12, 0x10], // DecoderSpecificInfo: the AudioSpecificConfig
            &[0x06, 1, 2],        // SLConfig: predefined 2
        ]
        .concat()[..]
    );

    let mvex = find(&init, &[b"moov", b"mvex"]);
    for (trex, id) in boxes(&mvex[8..]).into_iter().zip(1u8..) {
        let expected = [
            &[0, 0, 0, 0x20][..],
            b"trex",
            &[0; 4],
            &[0, 0, 0, id],
            &[0, 0, 0, 1],
        ];
        assert_eq!(trex, [&expected[..], &[&[0; 12][..]]].concat().concat());
    }
    assert_eq!(boxes(&mvex[8..]).len(), 2);
}

#[test]
fn single_track_movies_are_cmaf_tracks() {
    for (video, audio, handler) in [(true, false, b"vide"), (false, true, b"soun")] {
        let init = movie(video, audio).init_segment().unwrap();
        let ftyp = [
            &[0, 0, 0, 0x1c][..],
            b"ftyp",
            b"iso6",
            &[0; 4],
            b"iso6",
            b"cmfc",
            b"mp41",
        ];
        assert_eq!(find(&init, &[b"ftyp"]), ftyp.concat());
        let trak = nth_trak(&init, 0);
        assert_eq!(&find(trak, &[b"tkhd"])[20..24], &[0, 0, 0, 1]);
        assert_eq!(&find(trak, &[b"mdia", b"hdlr"])[16..20], handler);
        assert_eq!(&find(&init, &[b"moov", b"mvhd"])[104..], &[0, 0, 0, 2]);
    }
}

#[test]
fn fragment_golden_bytes() {
    let video = [
        sample(3000, 3000, true, &[0xaa, 0xbb, 0xcc]),
        sample(3000, -3000, false, &[0xdd]),
    ];
    let audio = [sample(1024, 0, false, &[0x21, 0x42])];
    let fragment = movie(true, true)
        .fragment(
            7,
            Run {
                base_decode_time: 180_000,
                samples: &video,
            },
            Run {
                base_decode_time: 88_200,
                samples: &audio,
            },
        )
        .unwrap();
    // moof = 8 + mfhd 16 + video traf (8 + 16 + 20 + 20 + 2 * 16) + audio traf (64 + 16) = 200;
    // video data starts after moof and the mdat header at 208, audio 4 bytes later at 212.
    let expected: Vec<u8> = [
        &[0, 0, 0, 200][..],
        b"moof",
        &[0, 0, 0, 16],
        b"mfhd",
        &[0, 0, 0, 0, 0, 0, 0, 7],
        &[0, 0, 0, 96],
        b"traf",
        &[0, 0, 0, 16],
        b"tfhd",
        &[0x00, 0x02, 0x00, 0x00, 0, 0, 0, 1], // default-base-is-moof, track 1
        &[0, 0, 0, 20],
        b"tfdt",
        &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0xbf, 0x20], // version 1, 180000
        &[0, 0, 0, 52],
        b"trun",
        &[1, 0x00, 0x0f, 0x01, 0, 0, 0, 2, 0, 0, 0, 208], // version 1, 2 samples, offset 208
        &[
            0, 0, 0x0b, 0xb8, 0, 0, 0, 3, 0x02, 0, 0, 0, 0, 0, 0x0b, 0xb8,
        ],
        &[
            0, 0, 0x0b, 0xb8, 0, 0, 0, 1, 0x01, 0x01, 0, 0, 0xff, 0xff, 0xf4, 0x48,
        ],
        &[0, 0, 0, 80],
        b"traf",
        &[0, 0, 0, 16],
        b"tfhd",
        &[0x00, 0x02, 0x00, 0x00, 0, 0, 0, 2],
        &[0, 0, 0, 20],
        b"tfdt",
        &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x58, 0x88], // 88200
        &[0, 0, 0, 36],
        b"trun",
        &[1, 0x00, 0x0f, 0x01, 0, 0, 0, 1, 0, 0, 0, 212],
        &[0, 0, 0x04, 0x00, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 0, 0, 0], // audio is always sync
        &[0, 0, 0, 14],
        b"mdat",
        &[0xaa, 0xbb, 0xcc, 0xdd, 0x21, 0x42],
    ]
    .concat();
    assert_eq!(&fragment[..], &expected[..]);
}

/// Checks a parsed init segment: brands, track ids, timescales, codec configuration, trex.
fn check_init(init: &[u8], video: Option<&[u8]>, audio: Option<&[u8]>) {
    let mut buf = init;
    let ftyp = Ftyp::decode(&mut buf).unwrap();
    let moov = Moov::decode(&mut buf).unwrap();
    assert!(buf.is_empty());
    assert_eq!(ftyp.major_brand, b"iso6".into());
    let mut expected_ids = Vec::new();
    let mut traks = moov.trak.iter();
    if let Some(record) = video {
        let trak = traks.next().unwrap();
        expected_ids.push(trak.tkhd.track_id);
        assert_eq!(trak.tkhd.track_id, 1);
        assert_eq!(trak.mdia.mdhd.timescale, VIDEO_TIMESCALE);
        assert_eq!(trak.mdia.hdlr.handler, b"vide".into());
        let config = AvcConfig::parse(record).unwrap();
        let (width, height) = config.dimensions().unwrap();
        assert_eq!(trak.tkhd.width.integer(), width as u16);
        assert_eq!(trak.tkhd.height.integer(), height as u16);
        assert!(trak.edts.is_none());
        let [Codec::Avc1(avc1)] = &trak.mdia.minf.stbl.stsd.codecs[..] else {
            panic!("expected one avc1 entry")
        };
        assert_eq!(
            (avc1.visual.width, avc1.visual.height),
            (width as u16, height as u16)
        );
        let avcc = &avc1.avcc;
        assert_eq!(avcc.avc_profile_indication, config.profile);
        assert_eq!(avcc.avc_level_indication, config.level);
        assert_eq!(avcc.length_size, config.nalu_length_size);
        let sps: Vec<Vec<u8>> = config.sps.iter().map(|s| s.to_vec()).collect();
        let pps: Vec<Vec<u8>> = config.pps.iter().map(|p| p.to_vec()).collect();
        assert_eq!(avcc.sequence_parameter_sets, sps);
        assert_eq!(avcc.picture_parameter_sets, pps);
    }
    if let Some(asc) = audio {
        let trak = traks.next().unwrap();
        expected_ids.push(trak.tkhd.track_id);
        assert_eq!(trak.tkhd.track_id, if video.is_some() { 2 } else { 1 });
        let config = AudioSpecificConfig::parse(asc).unwrap();
        assert_eq!(trak.mdia.mdhd.timescale, config.sample_rate);
        assert_eq!(trak.mdia.hdlr.handler, b"soun".into());
        let [Codec::Mp4a(mp4a)] = &trak.mdia.minf.stbl.stsd.codecs[..] else {
            panic!("expected one mp4a entry")
        };
        assert_eq!(mp4a.audio.channel_count, u16::from(config.channels));
        assert_eq!(mp4a.audio.sample_rate.integer() as u32, config.sample_rate);
        let decoder = &mp4a.esds.es_desc.dec_config;
        assert_eq!(decoder.object_type_indication, 0x40);
        assert_eq!(decoder.stream_type, 5);
        assert_eq!(decoder.dec_specific.as_ref().unwrap().raw, asc);
    }
    assert!(traks.next().is_none());
    for trak in &moov.trak {
        let stbl = &trak.mdia.minf.stbl;
        assert!(stbl.stts.entries.is_empty() && stbl.stsc.entries.is_empty());
    }
    let trex_ids: Vec<u32> = moov.mvex.unwrap().trex.iter().map(|t| t.track_id).collect();
    assert_eq!(trex_ids, expected_ids);
}

/// Parses a fragment and checks each `traf` against the run it came from, `(track id, run,
/// audio)`, finding every sample's bytes through the data offset.
fn check_fragment(bytes: &[u8], sequence: u32, runs: &[(u32, Run<'_>, bool)]) {
    let mut buf = bytes;
    let moof = Moof::decode(&mut buf).unwrap();
    let mdat = Mdat::decode(&mut buf).unwrap();
    assert!(buf.is_empty());
    assert_eq!(moof.mfhd.sequence_number, sequence);
    let runs: Vec<_> = runs.iter().filter(|r| !r.1.samples.is_empty()).collect();
    assert_eq!(moof.traf.len(), runs.len());
    let mut total = 0;
    for (traf, &&(track_id, run, audio)) in moof.traf.iter().zip(&runs) {
        assert_eq!(traf.tfhd.track_id, track_id);
        assert!(traf.tfhd.default_base_is_moof);
        assert_eq!(traf.tfhd.base_data_offset, None);
        let tfdt = traf.tfdt.as_ref().unwrap();
        assert_eq!(tfdt.base_media_decode_time, run.base_decode_time);
        let [trun] = &traf.trun[..] else {
            panic!("expected one trun")
        };
        assert_eq!(trun.samples.len(), run.samples.len());
        let mut offset = usize::try_from(trun.data_offset.unwrap()).unwrap();
        for (entry, sample) in trun.samples.iter().zip(run.samples) {
            assert_eq!(entry.duration, Some(sample.duration));
            assert_eq!(entry.cts, Some(i64::from(sample.cts_offset)));
            let sync = audio || sample.is_sync;
            let flags = if sync {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            };
            assert_eq!(entry.flags, Some(flags));
            let size = entry.size.unwrap() as usize;
            assert_eq!(&bytes[offset..offset + size], sample.data);
            offset += size;
            total += size;
        }
    }
    assert_eq!(mdat.data.len(), total);
}

#[test]
fn round_trip_with_b_frames() {
    let both = movie(true, true);
    check_init(&both.init_segment().unwrap(), Some(&record()), Some(&ASC));
    let frames: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; usize::from(i) * 7 + 1]).collect();
    // Decode order I P B B P B: the B-frames show before the frames they follow.
    let ctts = [3000, 9000, -3000, 0, 6000, -3000];
    let video: Vec<Sample<'_>> = frames
        .iter()
        .zip(ctts)
        .enumerate()
        .map(|(i, (data, cts))| sample(3000, cts, i == 0, data))
        .collect();
    let audio: Vec<Sample<'_>> = frames
        .iter()
        .take(4)
        .map(|data| sample(1024, 0, true, data))
        .collect();
    let video = Run {
        base_decode_time: u64::from(u32::MAX) + 5,
        samples: &video,
    };
    let audio = Run {
        base_decode_time: 1 << 40,
        samples: &audio,
    };
    let fragment = both.fragment(42, video, audio).unwrap();
    check_fragment(&fragment, 42, &[(1, video, false), (2, audio, true)]);

    let audio_only = both.fragment(43, Run::default(), audio).unwrap();
    check_fragment(&audio_only, 43, &[(2, audio, true)]);
    let only_audio = movie(false, true);
    check_init(&only_audio.init_segment().unwrap(), None, Some(&ASC));
    let fragment = only_audio.fragment(1, Run::default(), audio).unwrap();
    check_fragment(&fragment, 1, &[(1, audio, true)]);
}

/// The sample's configuration records, video frames and audio frames.
fn sample_stream() -> (Vec<u8>, Vec<u8>, Vec<SampleFrame>, Vec<SampleFrame>) {
    let s = crate::test_sample::sample_stream();
    let (video, audio) = s.frames.into_iter().partition(|f| f.video);
    (s.record, s.asc, video, audio)
}

/// What reading a part's chunks back found: per track, the decode time the next chunk must
/// start at, and the samples and sync samples seen.
#[derive(Debug, Default)]
struct PartReader {
    sequence: u32,
    next: Vec<(u32, u64)>,
    samples: Vec<(u32, usize, usize)>,
}

impl PartReader {
    /// Reads a part of several `moof` + `mdat` pairs with mp4-atom: sequence numbers grow by
    /// one, each track's decode times are contiguous across chunks, and `mdat` holds the sizes
    /// the `trun`s give. Returns the number of chunks.
    fn read(&mut self, part: &[u8]) -> usize {
        let mut buf = part;
        let mut chunks = 0;
        while !buf.is_empty() {
            let moof = Moof::decode(&mut buf).unwrap();
            let mdat = Mdat::decode(&mut buf).unwrap();
            chunks += 1;
            assert_eq!(moof.mfhd.sequence_number, self.sequence + 1);
            self.sequence = moof.mfhd.sequence_number;
            let mut sizes = 0;
            for traf in &moof.traf {
                let id = traf.tfhd.track_id;
                let tfdt = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                let [trun] = &traf.trun[..] else {
                    panic!("expected one trun")
                };
                let mut duration = 0;
                let mut sync = 0;
                for entry in trun.samples.iter() {
                    duration += u64::from(entry.duration.unwrap());
                    sizes += entry.size.unwrap() as usize;
                    sync += usize::from(entry.flags == Some(SYNC_SAMPLE_FLAGS));
                }
                match self.next.iter_mut().find(|(track, _)| *track == id) {
                    Some((_, next)) => {
                        assert_eq!(tfdt, *next, "track {id} contiguous across chunks");
                        *next += duration;
                    }
                    None => self.next.push((id, tfdt + duration)),
                }
                match self.samples.iter_mut().find(|(track, ..)| *track == id) {
                    Some((_, n, s)) => (*n, *s) = (*n + trun.samples.len(), *s + sync),
                    None => self.samples.push((id, trun.samples.len(), sync)),
                }
            }
            assert_eq!(mdat.data.len(), sizes);
        }
        chunks
    }

    /// Samples and sync samples read for a track.
    fn count(&self, track: u32) -> (usize, usize) {
        self.samples
            .iter()
            .find(|(id, ..)| *id == track)
            .map_or((0, 0), |&(_, n, s)| (n, s))
    }
}

/// The sample stream as the LL-HLS packager writes it: the init segment, then ~333 ms parts,
/// each a chunk (`moof` + `mdat`) per video frame holding the audio that starts before the
/// frame ends. Every chunk is checked through the reader, every part read back whole. Returns
/// the file and its sample counts.
fn sample_file() -> (Vec<u8>, usize, usize) {
    const PART_MS: u64 = 333;
    let (record, asc, flv_video, flv_audio) = sample_stream();
    let movie = Movie::new(
        Some(VideoTrack::new(&record).unwrap()),
        Some(AudioTrack::new(&asc).unwrap()),
    )
    .unwrap();
    let init = movie.init_segment().unwrap();
    check_init(&init, Some(&record), Some(&asc));
    let video: Vec<Sample<'_>> = flv_video
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let next_ms = flv_video.get(i + 1).map_or(s.dts_ms + 33, |n| n.dts_ms);
            let duration = ms_to_90k(next_ms - s.dts_ms).unwrap();
            sample(
                u32::try_from(duration).unwrap(),
                offset_ms_to_90k(s.cts_ms).unwrap(),
                s.keyframe,
                &s.data,
            )
        })
        .collect();
    let audio: Vec<Sample<'_>> = flv_audio
        .iter()
        .map(|s| sample(crate::aac::SAMPLES_PER_FRAME, 0, true, &s.data))
        .collect();
    let mut file = init.to_vec();
    let mut reader = PartReader::default();
    let (mut v, mut a, mut sequence, mut parts) = (0, 0, 0, 0);
    let mut part = Vec::new();
    let mut part_frames = 0;
    while v < video.len() {
        let end_ms = flv_video.get(v + 1).map_or(u64::MAX, |n| n.dts_ms);
        let a_end = a + flv_audio[a..]
            .iter()
            .take_while(|s| s.dts_ms < end_ms)
            .count();
        let video_run = Run {
            base_decode_time: ms_to_90k(flv_video[v].dts_ms).unwrap(),
            samples: &video[v..v + 1],
        };
        let audio_run = Run {
            base_decode_time: a as u64 * u64::from(crate::aac::SAMPLES_PER_FRAME),
            samples: &audio[a..a_end],
        };
        sequence += 1;
        let chunk = movie.fragment(sequence, video_run, audio_run).unwrap();
        check_fragment(
            &chunk,
            sequence,
            &[(1, video_run, false), (2, audio_run, true)],
        );
        part.extend_from_slice(&chunk);
        part_frames += 1;
        (v, a) = (v + 1, a_end);
        let part_ends = flv_video
            .get(v)
            .is_none_or(|next| next.dts_ms / PART_MS != flv_video[v - 1].dts_ms / PART_MS);
        if part_ends {
            assert_eq!(reader.read(&part), part_frames, "a chunk per frame");
            file.append(&mut part);
            (parts, part_frames) = (parts + 1, 0);
        }
    }
    assert!(parts > 25, "10 s in parts of 1/3 s");
    let keyframes = flv_video.iter().filter(|s| s.keyframe).count();
    assert_eq!(reader.count(1), (video.len(), keyframes));
    assert_eq!(
        reader.count(2),
        (audio.len(), audio.len()),
        "audio is all sync"
    );
    (file, video.len(), audio.len())
}

#[test]
fn sample_stream_round_trips_as_parts() {
    let (file, video, audio) = sample_file();
    assert_eq!((video, audio), (300, 432));
    assert!(file.len() > 900_000);
}

#[test]
fn ffprobe_reads_sample_stream() {
    if Command::new("ffprobe").arg("-version").output().is_err() {
        println!("skipped: ffprobe is not installed");
        return;
    }
    let (file, video, audio) = sample_file();
    let path = std::env::temp_dir().join(format!("livepulse-fmp4-{}.mp4", std::process::id()));
    std::fs::write(&path, &file).unwrap();
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-of",
            "csv=p=0",
            "-show_entries",
        ])
        .arg("stream=codec_name,width,height,sample_rate,channels,nb_read_frames")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("h264,640,360,{video}\naac,44100,2,{audio}\n")
    );
}

#[test]
fn errors_instead_of_panics() {
    assert_eq!(Movie::new(None, None), Err(Fmp4Error::NoTracks));
    assert_eq!(
        VideoTrack::new(&[0, 0x4d, 0x40, 0x1f, 0xff, 0xe1]),
        Err(Fmp4Error::Avc(AvcError::BadVersion(0)))
    );
    let unparsable_sps = [1, 0x4d, 0x40, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 0x4d, 0];
    assert_eq!(
        VideoTrack::new(&unparsable_sps),
        Err(Fmp4Error::NoPictureSize)
    );
    // Baseline SPS with pic_width_in_mbs_minus1 = 4096: 65552 pixels wide.
    let wide_sps = [0x67, 66, 0, 30, 0xdc, 0x00, 0x10, 0x01, 0xe4];
    let wide = [&[1, 66, 0, 30, 0xff, 0xe1, 0, 9][..], &wide_sps, &[0]].concat();
    assert_eq!(
        VideoTrack::new(&wide),
        Err(Fmp4Error::PictureTooLarge {
            width: 65552,
            height: 16
        })
    );
    assert_eq!(
        AudioTrack::new(&[0x12]),
        Err(Fmp4Error::Aac(AacError::Truncated))
    );

    let both = movie(true, true);
    assert_eq!(
        both.fragment(1, Run::default(), Run::default()),
        Err(Fmp4Error::EmptyFragment)
    );
    let one = [sample(1, 0, true, &[1])];
    let run = Run {
        base_decode_time: 0,
        samples: &one,
    };
    assert_eq!(
        movie(false, true).fragment(1, run, Run::default()),
        Err(Fmp4Error::NoSuchTrack("video"))
    );
    assert_eq!(
        movie(true, false).fragment(1, Run::default(), run),
        Err(Fmp4Error::NoSuchTrack("audio"))
    );
    let many = vec![sample(1, 0, true, &[]); MAX_RUN_SAMPLES + 1];
    let many = Run {
        base_decode_time: 0,
        samples: &many,
    };
    assert_eq!(
        both.fragment(1, many, Run::default()),
        Err(Fmp4Error::TooManySamples(MAX_RUN_SAMPLES + 1))
    );

    // Sizes are checked before anything is allocated: the samples share one buffer.
    let mib = vec![0u8; 1 << 20];
    let huge = vec![sample(1, 0, true, &mib); 4097];
    let huge = Run {
        base_decode_time: 0,
        samples: &huge,
    };
    assert_eq!(
        both.fragment(1, huge, Run::default()),
        Err(Fmp4Error::TooLarge),
        "mdat over 4 GiB"
    );
    let half = Run {
        samples: &huge.samples[..2048],
        ..huge
    };
    assert_eq!(
        both.fragment(1, half, run),
        Err(Fmp4Error::TooLarge),
        "audio data offset past 2 GiB"
    );
}

#[test]
fn millisecond_conversion_is_checked() {
    assert_eq!(ms_to_90k(1_000), Ok(90_000));
    assert_eq!(
        ms_to_90k(u64::MAX / 90 + 1),
        Err(Fmp4Error::TimestampOverflow)
    );
    assert_eq!(offset_ms_to_90k(-40), Ok(-3_600));
    assert_eq!(
        offset_ms_to_90k(i32::MIN),
        Err(Fmp4Error::TimestampOverflow)
    );
}

type RawSample = (u32, i32, bool, Vec<u8>);

fn to_samples(list: &[RawSample]) -> Vec<Sample<'_>> {
    list.iter()
        .map(|(duration, cts, sync, data)| sample(*duration, *cts, *sync, data))
        .collect()
}

fn samples_strategy() -> impl Strategy<Value = Vec<RawSample>> {
    prop::collection::vec(
        (
            any::<u32>(),
            any::<i32>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..48),
        ),
        0..24,
    )
}

proptest! {
    #[test]
    fn random_runs_round_trip(
        sequence in any::<u32>(),
        video_base in any::<u64>(),
        audio_base in any::<u64>(),
        video in samples_strategy(),
        audio in samples_strategy(),
    ) {
        let (video, audio) = (to_samples(&video), to_samples(&audio));
        let video = Run { base_decode_time: video_base, samples: &video };
        let audio = Run { base_decode_time: audio_base, samples: &audio };
        match movie(true, true).fragment(sequence, video, audio) {
            Ok(fragment) => {
                check_fragment(&fragment, sequence, &[(1, video, false), (2, audio, true)]);
            }
            Err(e) => {
                prop_assert_eq!(e, Fmp4Error::EmptyFragment);
                prop_assert!(video.samples.is_empty() && audio.samples.is_empty());
            }
        }
    }
}

#[test]
fn sample_stream_reads_back_through_the_reader() {
    let (file, video_count, audio_count) = sample_file();
    let (_, _, flv_video, flv_audio) = sample_stream();
    let init = read::read_init(&file).unwrap();
    let samples = read::read_samples(&file, &init).unwrap();
    let (video, audio): (Vec<&read::ReadSample<'_>>, Vec<_>) =
        samples.iter().partition(|s| s.track_id == 1);
    assert_eq!((video.len(), audio.len()), (video_count, audio_count));
    for (read, flv) in video.iter().zip(&flv_video) {
        assert_eq!(read.decode_time, ms_to_90k(flv.dts_ms).unwrap());
        assert_eq!(read.composition_offset, i64::from(flv.cts_ms) * 90);
        assert_eq!((read.is_sync, read.data), (flv.keyframe, &flv.data[..]));
    }
    for (read, flv) in audio.iter().zip(&flv_audio) {
        assert!(read.is_sync);
        assert_eq!(read.data, &flv.data[..]);
    }
}
