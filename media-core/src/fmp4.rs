//! Fragmented MP4 (CMAF) for H.264 + AAC: the init segment (`ftyp` + `moov`) and media
//! fragments (`moof` + `mdat`), written into memory.
//!
//! A [`Movie`] fixes the tracks: video is track 1, audio the next one (2, or 1 without video).
//! [`Movie::init_segment`] writes the header once per rendition. [`Movie::fragment`] writes one
//! `moof` + `mdat` from whatever samples of each track fall in it: a CMAF chunk. An LL-HLS part
//! is one or more chunks back to back and a segment is its parts back to back. Sequence numbers
//! and decode times come from the caller; nothing is kept between fragments. [`read`] reads
//! them back, as a player does.
//!
//! Timescales: video runs at 90 kHz ([`VIDEO_TIMESCALE`]), the clock of MPEG-TS, to which RTMP's
//! milliseconds convert exactly ([`ms_to_90k`]); audio runs at its sample rate, so every AAC frame
//! lasts exactly 1024 ticks and audio timestamps never drift by rounding.

mod init;
pub mod read;
#[cfg(test)]
mod tests;

use crate::aac::{AacError, AudioSpecificConfig};
use crate::avc::{AvcConfig, AvcError};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Timescale of the video track (90 kHz).
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Most samples one track may have in one fragment. A 0.33 s part holds about 10 video and 15
/// audio samples; the cap keeps `moof` small and its size arithmetic far from overflow.
pub const MAX_RUN_SAMPLES: usize = 1 << 16;
/// `sample_flags` of a sync sample: sample_depends_on = 2, it depends on no other sample.
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of another sample: sample_depends_on = 1 and sample_is_non_sync_sample = 1.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

const BOX_HEADER_SIZE: usize = 8;
const MFHD_SIZE: usize = 16;
const TFHD_SIZE: usize = 16;
const TFDT_SIZE: usize = 20;
const TRUN_HEADER_SIZE: usize = 20;
const TRUN_ENTRY_SIZE: usize = 16;
/// The version/flags word of a version 1 full box without flags.
const FULL_BOX_VERSION_1: u32 = 1 << 24;
/// `tfhd` flag default-base-is-moof: data offsets count from the start of the `moof`.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags: data offset, then per-sample duration, size, flags and composition offset.
const TRUN_FLAGS: u32 = 0x00_0F01;

/// Errors from fMP4 writing.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Fmp4Error {
    /// A movie needs at least one track.
    #[error("a movie needs a video or an audio track")]
    NoTracks,
    /// The AVCDecoderConfigurationRecord does not parse.
    #[error("invalid AVC configuration: {0}")]
    Avc(#[from] AvcError),
    /// The record's first SPS is missing or does not parse, so the picture size is unknown.
    #[error("no parsable SPS to take the picture size from")]
    NoPictureSize,
    /// The picture does not fit the 16-bit sizes of the sample entry.
    #[error("picture size {width}x{height} exceeds 65535")]
    PictureTooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The AudioSpecificConfig does not parse.
    #[error("invalid AAC configuration: {0}")]
    Aac(#[from] AacError),
    /// A fragment without any sample.
    #[error("a fragment needs at least one sample")]
    EmptyFragment,
    /// Samples for a track the movie does not have ("video" or "audio").
    #[error("samples for a {0} track the movie does not have")]
    NoSuchTrack(&'static str),
    /// More than [`MAX_RUN_SAMPLES`] samples for one track.
    #[error("{0} samples for one track in one fragment")]
    TooManySamples(usize),
    /// A box size or data offset does not fit its 32-bit field.
    #[error("box too large for 32-bit sizes and offsets")]
    TooLarge,
    /// A timestamp does not fit after conversion to 90 kHz.
    #[error("timestamp overflows the 90 kHz timescale")]
    TimestampOverflow,
}

/// An H.264 track: its AVCDecoderConfigurationRecord and the picture size from its SPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    record: Bytes,
    width: u16,
    height: u16,
}

impl VideoTrack {
    /// Checks an AVCDecoderConfigurationRecord, which goes into `avcC` byte for byte.
    pub fn new(record: &[u8]) -> Result<Self, Fmp4Error> {
        let config = AvcConfig::parse(record)?;
        let (width, height) = config.dimensions().ok_or(Fmp4Error::NoPictureSize)?;
        match (u16::try_from(width), u16::try_from(height)) {
            (Ok(w), Ok(h)) => Ok(Self {
                record: Bytes::copy_from_slice(record),
                width: w,
                height: h,
            }),
            _ => Err(Fmp4Error::PictureTooLarge { width, height }),
        }
    }
}

/// An AAC track: its AudioSpecificConfig, sample rate and channel count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    config: Bytes,
    sample_rate: u32,
    channel_count: u16,
}

impl AudioTrack {
    /// Checks an AudioSpecificConfig, which goes into the `esds` DecoderSpecificInfo byte for
    /// byte.
    pub fn new(config: &[u8]) -> Result<Self, Fmp4Error> {
        let parsed = AudioSpecificConfig::parse(config)?;
        // channelConfiguration 7 is 7.1; 0 (a PCE) and reserved values are left to the decoder.
        let channel_count = match parsed.channels {
            1..=6 => u16::from(parsed.channels),
            7 => 8,
            _ => 2,
        };
        Ok(Self {
            config: Bytes::copy_from_slice(config),
            sample_rate: parsed.sample_rate,
            channel_count,
        })
    }

    /// The track's timescale: the sample rate (the core rate under explicit SBR/PS signalling).
    pub fn timescale(&self) -> u32 {
        self.sample_rate
    }
}

/// One sample: an H.264 access unit framed as the record's NALU length size says, or one raw
/// AAC frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// Next sample's decode time minus this one's, in the track's timescale.
    pub duration: u32,
    /// Presentation time minus decode time, in the track's timescale; may be negative.
    pub cts_offset: i32,
    /// Whether decoding can start here (an IDR access unit). Ignored for audio, where every
    /// frame is a sync sample.
    pub is_sync: bool,
    /// The sample's bytes.
    pub data: &'a [u8],
}

/// One track's samples in a fragment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Run<'a> {
    /// Decode time of the first sample, in the track's timescale (`tfdt`).
    pub base_decode_time: u64,
    /// The samples in decode order; an empty run writes no `traf`.
    pub samples: &'a [Sample<'a>],
}

/// The tracks of a fragmented MP4 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movie {
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
}

impl Movie {
    /// A movie with the given tracks; at least one is needed.
    pub fn new(video: Option<VideoTrack>, audio: Option<AudioTrack>) -> Result<Self, Fmp4Error> {
        if video.is_none() && audio.is_none() {
            return Err(Fmp4Error::NoTracks);
        }
        Ok(Self { video, audio })
    }

    /// The init segment: `ftyp` and a `moov` with empty sample tables and one `trex` per track.
    ///
    /// Brands: major `iso6` (ISO/IEC 14496-12 with signed composition offsets in `trun` and
    /// default-base-is-moof), compatible `iso6`, `cmfc` (a CMAF track, written only for a
    /// single-track movie since a CMAF track file holds one track) and `mp41`.
    pub fn init_segment(&self) -> Result<Bytes, Fmp4Error> {
        init::write(self)
    }

    /// One `moof` + `mdat` holding the video run's samples, then the audio run's.
    ///
    /// `sequence` is the `mfhd` sequence number, which should grow by one per fragment. For an
    /// LL-HLS part marked INDEPENDENT, the video run of its first chunk starts with a sync
    /// sample.
    pub fn fragment(
        &self,
        sequence: u32,
        video: Run<'_>,
        audio: Run<'_>,
    ) -> Result<Bytes, Fmp4Error> {
        let (video_id, audio_id) = self.track_ids();
        let trafs = [
            Traf::plan(video, video_id, "video", false)?,
            Traf::plan(audio, audio_id, "audio", true)?,
        ];
        if trafs.iter().all(Option::is_none) {
            return Err(Fmp4Error::EmptyFragment);
        }
        // Each run is capped at MAX_RUN_SAMPLES, so the moof stays a few megabytes.
        let moof_size =
            BOX_HEADER_SIZE + MFHD_SIZE + trafs.iter().flatten().map(Traf::size).sum::<usize>();
        let mdat_size = trafs
            .iter()
            .flatten()
            .try_fold(BOX_HEADER_SIZE, |sum, traf| sum.checked_add(traf.data_len))
            .filter(|&size| u32::try_from(size).is_ok())
            .ok_or(Fmp4Error::TooLarge)?;
        let total = moof_size
            .checked_add(mdat_size)
            .ok_or(Fmp4Error::TooLarge)?;

        let mut out = BytesMut::with_capacity(total);
        put_header(&mut out, moof_size, b"moof")?;
        put_header(&mut out, MFHD_SIZE, b"mfhd")?;
        out.put_u32(0);
        out.put_u32(sequence);
        // Offsets stay below moof_size + mdat_size, which fits in a usize.
        let mut data_offset = moof_size + BOX_HEADER_SIZE;
        for traf in trafs.iter().flatten() {
            let offset = i32::try_from(data_offset).map_err(|_| Fmp4Error::TooLarge)?;
            traf.write(&mut out, offset)?;
            data_offset += traf.data_len;
        }
        put_header(&mut out, mdat_size, b"mdat")?;
        for traf in trafs.iter().flatten() {
            for sample in traf.run.samples {
                out.put_slice(sample.data);
            }
        }
        debug_assert_eq!(out.len(), total);
        Ok(out.freeze())
    }

    /// Track ids of video and audio: video is 1, audio follows it.
    fn track_ids(&self) -> (Option<u32>, Option<u32>) {
        let video = self.video.as_ref().map(|_| 1);
        let audio = self.audio.as_ref().map(|_| video.map_or(1, |id| id + 1));
        (video, audio)
    }
}

/// A non-empty run about to be written as a `traf`.
struct Traf<'a> {
    track_id: u32,
    run: Run<'a>,
    all_sync: bool,
    data_len: usize,
}

impl<'a> Traf<'a> {
    /// Checks a run; `None` when it is empty.
    fn plan(
        run: Run<'a>,
        track_id: Option<u32>,
        kind: &'static str,
        all_sync: bool,
    ) -> Result<Option<Self>, Fmp4Error> {
        let count = run.samples.len();
        if count == 0 {
            return Ok(None);
        }
        let track_id = track_id.ok_or(Fmp4Error::NoSuchTrack(kind))?;
        if count > MAX_RUN_SAMPLES {
            return Err(Fmp4Error::TooManySamples(count));
        }
        let data_len = run
            .samples
            .iter()
            .try_fold(0usize, |sum, sample| sum.checked_add(sample.data.len()))
            .ok_or(Fmp4Error::TooLarge)?;
        Ok(Some(Self {
            track_id,
            run,
            all_sync,
            data_len,
        }))
    }

    /// Size of the `traf`; bounded because the run has at most [`MAX_RUN_SAMPLES`] samples.
    fn size(&self) -> usize {
        BOX_HEADER_SIZE + TFHD_SIZE + TFDT_SIZE + self.trun_size()
    }

    fn trun_size(&self) -> usize {
        TRUN_HEADER_SIZE + TRUN_ENTRY_SIZE * self.run.samples.len()
    }

    /// Writes `traf` with `tfhd`, `tfdt` (version 1) and `trun` (version 1, signed offsets).
    fn write(&self, out: &mut BytesMut, data_offset: i32) -> Result<(), Fmp4Error> {
        let samples = self.run.samples;
        put_header(out, self.size(), b"traf")?;
        put_header(out, TFHD_SIZE, b"tfhd")?;
        out.put_u32(TFHD_DEFAULT_BASE_IS_MOOF);
        out.put_u32(self.track_id);
        put_header(out, TFDT_SIZE, b"tfdt")?;
        out.put_u32(FULL_BOX_VERSION_1);
        out.put_u64(self.run.base_decode_time);
        put_header(out, self.trun_size(), b"trun")?;
        out.put_u32(FULL_BOX_VERSION_1 | TRUN_FLAGS);
        out.put_u32(u32::try_from(samples.len()).map_err(|_| Fmp4Error::TooLarge)?);
        out.put_i32(data_offset);
        for sample in samples {
            out.put_u32(sample.duration);
            out.put_u32(u32::try_from(sample.data.len()).map_err(|_| Fmp4Error::TooLarge)?);
            out.put_u32(if self.all_sync || sample.is_sync {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            });
            out.put_i32(sample.cts_offset);
        }
        Ok(())
    }
}

/// Appends a box header: the 32-bit size, which must fit, and the type.
fn put_header(out: &mut BytesMut, size: usize, kind: &[u8; 4]) -> Result<(), Fmp4Error> {
    out.put_u32(u32::try_from(size).map_err(|_| Fmp4Error::TooLarge)?);
    out.put_slice(kind);
    Ok(())
}

/// Converts milliseconds (RTMP's clock) to the 90 kHz video timescale.
pub fn ms_to_90k(ms: u64) -> Result<u64, Fmp4Error> {
    ms.checked_mul(90).ok_or(Fmp4Error::TimestampOverflow)
}

/// Converts a signed millisecond offset (FLV's composition time) to the 90 kHz video timescale.
pub fn offset_ms_to_90k(ms: i32) -> Result<i32, Fmp4Error> {
    ms.checked_mul(90).ok_or(Fmp4Error::TimestampOverflow)
}
