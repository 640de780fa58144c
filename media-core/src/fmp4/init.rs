//! The init segment: `ftyp`, and a `moov` whose tracks have empty sample tables, no edit lists
//! and a `trex` each (ISO/IEC 14496-12, 14496-14 for `esds`, 14496-15 for `avcC`).

use super::{AudioTrack, Fmp4Error, Movie, VideoTrack, VIDEO_TIMESCALE};
use bytes::{BufMut, Bytes, BytesMut};

/// Timescale of `mvhd`; nothing is timed in it, as a live movie has no duration.
const MOVIE_TIMESCALE: u32 = 1000;
const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];
/// ISO 639-2/T "und" as three 5-bit letters.
const LANGUAGE_UND: u16 = 0x55C4;
/// `tkhd` flags: track_enabled | track_in_movie.
const TKHD_FLAGS: u32 = 0x00_0003;
/// 72 dpi in 16.16 fixed point.
const RESOLUTION_72DPI: u32 = 0x0048_0000;
const ES_DESCRIPTOR_TAG: u8 = 0x03;
const DECODER_CONFIG_TAG: u8 = 0x04;
const DECODER_SPECIFIC_INFO_TAG: u8 = 0x05;
/// SLConfigDescriptor with predefined = 2, the value reserved for MP4 files.
const SL_CONFIG: [u8; 3] = [0x06, 0x01, 0x02];
/// objectTypeIndication of MPEG-4 Audio (ISO/IEC 14496-3).
const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
/// streamType 5 (audio) << 2, upStream 0, reserved 1.
const STREAM_TYPE_AUDIO: u8 = 0x15;

/// The track kinds, as `trak` writing tells them apart.
#[derive(Clone, Copy)]
enum Track<'a> {
    Video(&'a VideoTrack),
    Audio(&'a AudioTrack),
}

pub(super) fn write(movie: &Movie) -> Result<Bytes, Fmp4Error> {
    let (video_id, audio_id) = movie.track_ids();
    let tracks: Vec<(u32, Track<'_>)> = [
        video_id.zip(movie.video.as_ref().map(Track::Video)),
        audio_id.zip(movie.audio.as_ref().map(Track::Audio)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut out = BytesMut::with_capacity(1024);
    put_box(&mut out, b"ftyp", |out| {
        out.put_slice(b"iso6");
        out.put_u32(0);
        out.put_slice(b"iso6");
        if tracks.len() == 1 {
            out.put_slice(b"cmfc");
        }
        out.put_slice(b"mp41");
        Ok(())
    })?;
    put_box(&mut out, b"moov", |out| {
        put_full_box(out, b"mvhd", 0, |out| {
            out.put_u64(0); // creation_time, modification_time
            out.put_u32(MOVIE_TIMESCALE);
            out.put_u32(0); // duration
            out.put_u32(0x0001_0000); // rate 1.0
            out.put_u16(0x0100); // volume 1.0
            out.put_bytes(0, 10); // reserved
            put_matrix(out);
            out.put_bytes(0, 24); // pre_defined
            out.put_u32(tracks.last().map_or(1, |&(id, _)| id + 1)); // next_track_ID
            Ok(())
        })?;
        for &(id, track) in &tracks {
            put_trak(out, id, track)?;
        }
        put_box(out, b"mvex", |out| {
            for &(id, _) in &tracks {
                put_full_box(out, b"trex", 0, |out| {
                    out.put_u32(id);
                    out.put_u32(1); // default_sample_description_index
                    out.put_bytes(0, 12); // default duration, size and flags: trun has its own
                    Ok(())
                })?;
            }
            Ok(())
        })
    })?;
    Ok(out.freeze())
}

fn put_trak(out: &mut BytesMut, id: u32, track: Track<'_>) -> Result<(), Fmp4Error> {
    let (volume, width, height) = match track {
        Track::Video(v) => (0, v.width, v.height),
        Track::Audio(_) => (0x0100, 0, 0),
    };
    let (timescale, handler, name): (_, _, &[u8]) = match track {
        Track::Video(_) => (VIDEO_TIMESCALE, b"vide", b"VideoHandler\0"),
        Track::Audio(a) => (a.sample_rate, b"soun", b"SoundHandler\0"),
    };
    put_box(out, b"trak", |out| {
        put_full_box(out, b"tkhd", TKHD_FLAGS, |out| {
            out.put_u64(0); // creation_time, modification_time
            out.put_u32(id);
            out.put_u32(0); // reserved
            out.put_u32(0); // duration
            out.put_bytes(0, 8); // reserved
            out.put_u32(0); // layer, alternate_group
            out.put_u16(volume);
            out.put_u16(0); // reserved
            put_matrix(out);
            out.put_u32(u32::from(width) << 16);
            out.put_u32(u32::from(height) << 16);
            Ok(())
        })?;
        put_box(out, b"mdia", |out| {
            put_full_box(out, b"mdhd", 0, |out| {
                out.put_u64(0); // creation_time, modification_time
                out.put_u32(timescale);
                out.put_u32(0); // duration
                out.put_u16(LANGUAGE_UND);
                out.put_u16(0); // pre_defined
                Ok(())
            })?;
            put_full_box(out, b"hdlr", 0, |out| {
                out.put_u32(0); // pre_defined
                out.put_slice(handler);
                out.put_bytes(0, 12); // reserved
                out.put_slice(name);
                Ok(())
            })?;
            put_box(out, b"minf", |out| put_minf(out, track))
        })
    })
}

fn put_minf(out: &mut BytesMut, track: Track<'_>) -> Result<(), Fmp4Error> {
    match track {
        Track::Video(_) => put_full_box(out, b"vmhd", 1, |out| {
            out.put_bytes(0, 8); // graphicsmode, opcolor
            Ok(())
        })?,
        Track::Audio(_) => put_full_box(out, b"smhd", 0, |out| {
            out.put_u32(0); // balance, reserved
            Ok(())
        })?,
    }
    put_box(out, b"dinf", |out| {
        put_full_box(out, b"dref", 0, |out| {
            out.put_u32(1); // entry_count
            put_full_box(out, b"url ", 1, |_| Ok(())) // media data in this file
        })
    })?;
    put_box(out, b"stbl", |out| {
        put_full_box(out, b"stsd", 0, |out| {
            out.put_u32(1); // entry_count
            match track {
                Track::Video(v) => put_avc1(out, v),
                Track::Audio(a) => put_mp4a(out, a),
            }
        })?;
        for kind in [b"stts", b"stsc"] {
            put_full_box(out, kind, 0, |out| {
                out.put_u32(0); // entry_count
                Ok(())
            })?;
        }
        put_full_box(out, b"stsz", 0, |out| {
            out.put_u64(0); // sample_size, sample_count
            Ok(())
        })?;
        put_full_box(out, b"stco", 0, |out| {
            out.put_u32(0); // entry_count
            Ok(())
        })
    })
}

fn put_avc1(out: &mut BytesMut, video: &VideoTrack) -> Result<(), Fmp4Error> {
    put_box(out, b"avc1", |out| {
        out.put_bytes(0, 6); // reserved
        out.put_u16(1); // data_reference_index
        out.put_bytes(0, 16); // pre_defined, reserved, pre_defined[3]
        out.put_u16(video.width);
        out.put_u16(video.height);
        out.put_u32(RESOLUTION_72DPI);
        out.put_u32(RESOLUTION_72DPI);
        out.put_u32(0); // reserved
        out.put_u16(1); // frame_count
        out.put_bytes(0, 32); // compressorname: empty
        out.put_u16(0x0018); // depth: colour without alpha
        out.put_i16(-1); // pre_defined
        put_box(out, b"avcC", |out| {
            out.put_slice(&video.record);
            Ok(())
        })
    })
}

fn put_mp4a(out: &mut BytesMut, audio: &AudioTrack) -> Result<(), Fmp4Error> {
    put_box(out, b"mp4a", |out| {
        out.put_bytes(0, 6); // reserved
        out.put_u16(1); // data_reference_index
        out.put_bytes(0, 8); // reserved
        out.put_u16(audio.channel_count);
        out.put_u16(16); // samplesize
        out.put_u32(0); // pre_defined, reserved
                        // 16.16 fixed point; rates above 65535 are written as 0, the esds carries the real one.
        out.put_u32(u16::try_from(audio.sample_rate).map_or(0, |rate| u32::from(rate) << 16));
        put_esds(out, &audio.config)
    })
}

/// `esds` with an ES_Descriptor holding a DecoderConfigDescriptor, whose DecoderSpecificInfo is
/// the AudioSpecificConfig, and an SLConfigDescriptor (ISO/IEC 14496-1 §7.2.6, 14496-14 §3.1.2).
fn put_esds(out: &mut BytesMut, asc: &[u8]) -> Result<(), Fmp4Error> {
    // Small enough for every size below to fit a descriptor's 28-bit size field.
    if asc.len() >= 1 << 20 {
        return Err(Fmp4Error::TooLarge);
    }
    let config_len = 13 + descriptor_len(asc.len());
    let es_len = 3 + descriptor_len(config_len) + SL_CONFIG.len();
    put_full_box(out, b"esds", 0, |out| {
        put_descriptor_header(out, ES_DESCRIPTOR_TAG, es_len);
        out.put_u16(0); // ES_ID: 0 as stored in a file
        out.put_u8(0); // no dependency, URL or OCR stream; priority 0
        put_descriptor_header(out, DECODER_CONFIG_TAG, config_len);
        out.put_u8(OBJECT_TYPE_MPEG4_AUDIO);
        out.put_u8(STREAM_TYPE_AUDIO);
        out.put_bytes(0, 11); // bufferSizeDB, maxBitrate, avgBitrate: unknown
        put_descriptor_header(out, DECODER_SPECIFIC_INFO_TAG, asc.len());
        out.put_slice(asc);
        out.put_slice(&SL_CONFIG);
        Ok(())
    })
}

/// Size of a descriptor with a body of `body` bytes.
fn descriptor_len(body: usize) -> usize {
    1 + size_field_len(body) + body
}

/// Bytes of a descriptor size field: 7 bits each, at most 4 (ISO/IEC 14496-1 §8.3.3).
fn size_field_len(size: usize) -> usize {
    (1..4).take_while(|i| size >> (7 * i) != 0).count() + 1
}

fn put_descriptor_header(out: &mut BytesMut, tag: u8, size: usize) {
    out.put_u8(tag);
    for i in (0..size_field_len(size)).rev() {
        let more = if i == 0 { 0 } else { 0x80 };
        out.put_u8(more | ((size >> (7 * i)) & 0x7F) as u8);
    }
}

fn put_matrix(out: &mut BytesMut) {
    for value in UNITY_MATRIX {
        out.put_u32(value);
    }
}

/// Appends a box: header, the body `body` writes, then the size patched in.
fn put_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    body: impl FnOnce(&mut BytesMut) -> Result<(), Fmp4Error>,
) -> Result<(), Fmp4Error> {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out)?;
    let size = u32::try_from(out.len() - start).map_err(|_| Fmp4Error::TooLarge)?;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Appends a version 0 full box: a box whose body starts with a version byte and 24 flag bits.
fn put_full_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    flags: u32,
    body: impl FnOnce(&mut BytesMut) -> Result<(), Fmp4Error>,
) -> Result<(), Fmp4Error> {
    put_box(out, kind, |out| {
        out.put_u32(flags & 0x00FF_FFFF);
        body(out)
    })
}
