//! Every parser must return errors, never panic, on random and mutated input.

use media_core::{aac, avc, flv, hls, sei, ts};

/// xorshift64*: deterministic, dependency-free pseudo-random bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next() as usize) % (max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn exercise(data: &[u8]) {
    let _ = flv::parse_file(data);
    let mut reader = flv::Reader::new();
    reader.push(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
    reader.push(data);
    while let Ok(Some(_)) = reader.next_tag() {}
    let _ = flv::parse_video(data);
    let _ = flv::parse_audio(data);
    let _ = avc::AvcConfig::parse(data).map(|c| (c.dimensions(), c.to_bytes()));
    let _ = avc::parse_sps(data);
    let mut sps = vec![0x67];
    sps.extend_from_slice(data);
    let _ = avc::parse_sps(&sps);
    for size in 0..=4 {
        let _ = avc::avcc_nalus(data, size);
        let _ = avc::is_keyframe_avcc(data, size);
        let _ = sei::find_stamp(data, size);
        let _ = sei::insert_stamp(data, size, 1);
    }
    let _ = avc::annexb_to_avcc(data);
    let _ = aac::AudioSpecificConfig::parse(data);
    let _ = aac::parse_adts(data);
    let mut demuxer = ts::Demuxer::new();
    for chunk in data.chunks(97) {
        let _ = demuxer.push(chunk);
    }
    demuxer.flush();
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        exercise(&rng.bytes(600));
    }
}

#[test]
fn mutated_valid_streams_never_panic() {
    let mut rng = Rng(42);
    let sample = &include_bytes!("../../assets/sample.flv")[..64 * 1024];
    let mut muxed = Vec::new();
    let mut muxer = ts::Muxer::new(true, true);
    muxer.write_tables(&mut muxed);
    muxer.write_video(&mut muxed, 9000, 12000, true, &sample[..5000]);
    muxer.write_audio(&mut muxed, 9000, &sample[..400]);
    for base in [sample, &muxed[..]] {
        for _ in 0..40 {
            let mut data = base.to_vec();
            for _ in 0..8 {
                let i = rng.next() as usize % data.len();
                data[i] = rng.next() as u8;
            }
            exercise(&data);
        }
    }
}

#[test]
fn segmenter_survives_hostile_timestamps() {
    let mut segmenter = hls::Segmenter::new(hls::SegmenterConfig::default());
    segmenter.set_avc_config(avc::AvcConfig {
        profile: 100,
        compatibility: 0,
        level: 31,
        nalu_length_size: 4,
        sps: vec![],
        pps: vec![],
    });
    segmenter.set_aac_config(aac::AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap());
    let frame = [0, 0, 0, 1, 0x65];
    for dts in [u64::MAX, 0, u64::MAX - 1, 5, 1 << 40] {
        let _ = segmenter.push_video(dts, i32::MIN, true, &frame);
        let _ = segmenter.push_video(dts, i32::MAX, false, &frame);
        let _ = segmenter.push_audio(dts, &[1, 2, 3]);
    }
    assert!(segmenter.push_audio(0, &[0; 9000]).is_err());
    assert!(segmenter.flush().is_some());
}
