//! Reading fragmented MP4 as a player does: the tracks of an init segment (ids, timescales,
//! handler types, the H.264 NALU length size and the `trex` defaults), then the samples of
//! `moof` + `mdat` fragments (ISO/IEC 14496-12 §8.8: `tfhd` with or without
//! default-base-is-moof, `tfdt` version 0 or 1, `trun` version 0 or 1).
//!
//! Built for bytes from the network: every size, count and offset is checked before use,
//! sample data is borrowed from the input (never copied), and one call yields at most
//! [`MAX_SAMPLES`] samples, so a hostile buffer costs at most a bounded walk and an error.

use std::time::Duration;

use thiserror::Error;

#[cfg(test)]
mod tests;

/// Most tracks an init segment may declare.
pub const MAX_TRACKS: usize = 16;
/// Most samples read from one buffer, over all its fragments and tracks.
pub const MAX_SAMPLES: usize = 1 << 16;

/// `tfhd` flags.
const TFHD_BASE_DATA_OFFSET: u32 = 0x00_0001;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x00_0002;
const TFHD_DEFAULT_DURATION: u32 = 0x00_0008;
const TFHD_DEFAULT_SIZE: u32 = 0x00_0010;
const TFHD_DEFAULT_FLAGS: u32 = 0x00_0020;
/// `trun` flags.
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x00_0004;
const TRUN_DURATION: u32 = 0x00_0100;
const TRUN_SIZE: u32 = 0x00_0200;
const TRUN_FLAGS: u32 = 0x00_0400;
const TRUN_COMPOSITION_OFFSET: u32 = 0x00_0800;
/// `sample_is_non_sync_sample` in `sample_flags`.
const NON_SYNC: u32 = 0x0001_0000;
/// Bytes of a visual sample entry before its child boxes (ISO/IEC 14496-12 §12.1.3).
const VISUAL_SAMPLE_ENTRY_LEN: usize = 78;

/// Why a buffer could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// A box header is cut off or its size runs outside its parent.
    #[error("box {0:?} has a size outside its parent")]
    BadBoxSize(String),
    /// A required box is absent.
    #[error("no {0} box")]
    Missing(&'static str),
    /// A box ends before its fields do.
    #[error("{0} box is too short")]
    Short(&'static str),
    /// More than [`MAX_TRACKS`] tracks.
    #[error("more than {MAX_TRACKS} tracks")]
    TooManyTracks,
    /// A track with timescale 0.
    #[error("track {0} has timescale 0")]
    ZeroTimescale(u32),
    /// A fragment for a track the init segment does not declare.
    #[error("fragment of unknown track {0}")]
    UnknownTrack(u32),
    /// More than [`MAX_SAMPLES`] samples.
    #[error("more than {MAX_SAMPLES} samples")]
    TooManySamples,
    /// A sample's data lies outside the buffer.
    #[error("sample data outside the buffer")]
    DataOutOfRange,
    /// Decode times run past `u64::MAX`.
    #[error("decode time overflows")]
    TimeOverflow,
}

/// What a track carries, from its `hdlr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `vide`.
    Video,
    /// `soun`.
    Audio,
    /// Anything else (subtitles, metadata).
    Other,
}

/// Sample values a fragment may leave out (`trex`, overridden by `tfhd`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleDefaults {
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Size in bytes.
    pub size: u32,
    /// `sample_flags`.
    pub flags: u32,
}

/// One track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// `tkhd` track id.
    pub id: u32,
    /// `mdhd` timescale, above zero.
    pub timescale: u32,
    /// `hdlr` handler type.
    pub handler: Handler,
    /// NALU length size (1, 2 or 4) of an `avc1`/`avc3` sample entry's `avcC`.
    pub nalu_length_size: Option<u8>,
    /// `trex` defaults.
    pub defaults: SampleDefaults,
}

impl TrackInfo {
    /// `ticks` of this track's timescale as a duration, exactly to the nanosecond below.
    pub fn duration(&self, ticks: u64) -> Duration {
        let scale = u64::from(self.timescale.max(1));
        let nanos = u128::from(ticks % scale) * 1_000_000_000 / u128::from(scale);
        // Below one second's worth of nanoseconds, since ticks % scale < scale.
        Duration::new(ticks / scale, u32::try_from(nanos).unwrap_or(0))
    }

    /// `ticks` of this track's timescale in whole milliseconds, saturating.
    pub fn millis(&self, ticks: u64) -> u64 {
        let ms = u128::from(ticks) * 1000 / u128::from(self.timescale.max(1));
        u64::try_from(ms).unwrap_or(u64::MAX)
    }
}

/// The tracks of an init segment (`ftyp` + `moov`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitInfo {
    /// Tracks in `moov` order, at most [`MAX_TRACKS`].
    pub tracks: Vec<TrackInfo>,
}

impl InitInfo {
    /// The track with id `id`.
    pub fn track(&self, id: u32) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.id == id)
    }

    /// The first video track.
    pub fn video(&self) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.handler == Handler::Video)
    }
}

/// One sample of a fragment, its data borrowed from the buffer read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSample<'a> {
    /// The track it belongs to.
    pub track_id: u32,
    /// Decode time in the track's timescale: `tfdt` plus the durations before it.
    pub decode_time: u64,
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Presentation minus decode time in the track's timescale.
    pub composition_offset: i64,
    /// `sample_is_non_sync_sample` is clear: decoding can start here.
    pub is_sync: bool,
    /// The sample's bytes.
    pub data: &'a [u8],
}

/// Reads the tracks of an init segment.
pub fn read_init(data: &[u8]) -> Result<InitInfo, ReadError> {
    let moov = child(data, b"moov")?.ok_or(ReadError::Missing("moov"))?;
    let mut trex = Vec::new();
    if let Some(mvex) = child(moov, b"mvex")? {
        for found in Boxes::new(mvex) {
            let found = found?;
            if &found.kind != b"trex" || trex.len() >= MAX_TRACKS {
                continue;
            }
            let mut c = Cursor::new(found.body, "trex");
            c.skip(4)?;
            let id = c.u32()?;
            c.skip(4)?; // default_sample_description_index
            let defaults = SampleDefaults {
                duration: c.u32()?,
                size: c.u32()?,
                flags: c.u32()?,
            };
            trex.push((id, defaults));
        }
    }
    let mut tracks = Vec::new();
    for found in Boxes::new(moov) {
        let found = found?;
        if &found.kind != b"trak" {
            continue;
        }
        if tracks.len() >= MAX_TRACKS {
            return Err(ReadError::TooManyTracks);
        }
        let mut track = read_trak(found.body)?;
        if let Some((_, defaults)) = trex.iter().find(|(id, _)| *id == track.id) {
            track.defaults = *defaults;
        }
        tracks.push(track);
    }
    Ok(InitInfo { tracks })
}

fn read_trak(trak: &[u8]) -> Result<TrackInfo, ReadError> {
    let tkhd = child(trak, b"tkhd")?.ok_or(ReadError::Missing("tkhd"))?;
    let mut c = Cursor::new(tkhd, "tkhd");
    let version = c.u8()?;
    c.skip(3)?;
    c.skip(if version == 1 { 16 } else { 8 })?; // creation and modification times
    let id = c.u32()?;
    let mdia = child(trak, b"mdia")?.ok_or(ReadError::Missing("mdia"))?;
    let mdhd = child(mdia, b"mdhd")?.ok_or(ReadError::Missing("mdhd"))?;
    let mut c = Cursor::new(mdhd, "mdhd");
    let version = c.u8()?;
    c.skip(3)?;
    c.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = c.u32()?;
    if timescale == 0 {
        return Err(ReadError::ZeroTimescale(id));
    }
    let hdlr = child(mdia, b"hdlr")?.ok_or(ReadError::Missing("hdlr"))?;
    let mut c = Cursor::new(hdlr, "hdlr");
    c.skip(8)?; // version, flags, pre_defined
    let handler = match &c.array::<4>()? {
        b"vide" => Handler::Video,
        b"soun" => Handler::Audio,
        _ => Handler::Other,
    };
    let nalu_length_size = match handler {
        Handler::Video => nalu_length_size(mdia)?,
        _ => None,
    };
    Ok(TrackInfo {
        id,
        timescale,
        handler,
        nalu_length_size,
        defaults: SampleDefaults::default(),
    })
}

/// The NALU length size of the first sample entry, if it is `avc1` or `avc3` with an `avcC`.
fn nalu_length_size(mdia: &[u8]) -> Result<Option<u8>, ReadError> {
    let Some(stbl) = child(mdia, b"minf")?
        .map(|minf| child(minf, b"stbl"))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    let Some(stsd) = child(stbl, b"stsd")? else {
        return Ok(None);
    };
    let entries = stsd.get(8..).ok_or(ReadError::Short("stsd"))?;
    let Some(entry) = Boxes::new(entries).next().transpose()? else {
        return Ok(None);
    };
    if &entry.kind != b"avc1" && &entry.kind != b"avc3" {
        return Ok(None);
    }
    let inner = entry
        .body
        .get(VISUAL_SAMPLE_ENTRY_LEN..)
        .ok_or(ReadError::Short("avc1"))?;
    let Some(avcc) = child(inner, b"avcC")? else {
        return Ok(None);
    };
    let byte = avcc.get(4).ok_or(ReadError::Short("avcC"))?;
    Ok(Some((byte & 0x03) + 1))
}

/// Reads the samples of every `moof` in `data` (a part, or a segment of parts back to back),
/// in `moof`, `traf` and `trun` order. Data offsets count from the `moof` (or from the start
/// of `data` for an explicit base data offset); a `traf` without `tfdt` continues from its
/// track's previous fragment in `data`, or from 0.
pub fn read_samples<'a>(data: &'a [u8], init: &InitInfo) -> Result<Vec<ReadSample<'a>>, ReadError> {
    let mut samples = Vec::new();
    let mut next_time: Vec<(u32, u64)> = Vec::new();
    for found in Boxes::new(data) {
        let moof = found?;
        if &moof.kind != b"moof" {
            continue;
        }
        for traf in Boxes::new(moof.body) {
            let traf = traf?;
            if &traf.kind != b"traf" {
                continue;
            }
            read_traf(
                data,
                moof.start,
                traf.body,
                init,
                &mut next_time,
                &mut samples,
            )?;
        }
    }
    Ok(samples)
}

fn read_traf<'a>(
    data: &'a [u8],
    moof_start: usize,
    traf: &[u8],
    init: &InitInfo,
    next_time: &mut Vec<(u32, u64)>,
    samples: &mut Vec<ReadSample<'a>>,
) -> Result<(), ReadError> {
    let tfhd = child(traf, b"tfhd")?.ok_or(ReadError::Missing("tfhd"))?;
    let mut c = Cursor::new(tfhd, "tfhd");
    let flags = c.u32()? & 0x00FF_FFFF;
    let track_id = c.u32()?;
    let track = init
        .track(track_id)
        .ok_or(ReadError::UnknownTrack(track_id))?;
    let mut base = moof_start;
    if flags & TFHD_BASE_DATA_OFFSET != 0 {
        base = usize::try_from(c.u64()?).map_err(|_| ReadError::DataOutOfRange)?;
    }
    if flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 {
        c.skip(4)?;
    }
    let mut defaults = track.defaults;
    if flags & TFHD_DEFAULT_DURATION != 0 {
        defaults.duration = c.u32()?;
    }
    if flags & TFHD_DEFAULT_SIZE != 0 {
        defaults.size = c.u32()?;
    }
    if flags & TFHD_DEFAULT_FLAGS != 0 {
        defaults.flags = c.u32()?;
    }
    let slot = match next_time.iter().position(|(id, _)| *id == track_id) {
        Some(i) => i,
        None => {
            next_time.push((track_id, 0));
            next_time.len() - 1
        }
    };
    let mut time = next_time[slot].1;
    if let Some(tfdt) = child(traf, b"tfdt")? {
        let mut c = Cursor::new(tfdt, "tfdt");
        let version = c.u8()?;
        c.skip(3)?;
        time = if version == 1 {
            c.u64()?
        } else {
            u64::from(c.u32()?)
        };
    }
    let mut position = base;
    for trun in Boxes::new(traf) {
        let trun = trun?;
        if &trun.kind != b"trun" {
            continue;
        }
        let mut c = Cursor::new(trun.body, "trun");
        let version = c.u8()?;
        let flags = c.u24()?;
        let count = usize::try_from(c.u32()?).map_err(|_| ReadError::TooManySamples)?;
        if flags & TRUN_DATA_OFFSET != 0 {
            let offset = i64::from(c.i32()?);
            position = i64::try_from(base)
                .ok()
                .and_then(|b| b.checked_add(offset))
                .and_then(|p| usize::try_from(p).ok())
                .ok_or(ReadError::DataOutOfRange)?;
        }
        let first_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
            Some(c.u32()?)
        } else {
            None
        };
        let fields = [
            TRUN_DURATION,
            TRUN_SIZE,
            TRUN_FLAGS,
            TRUN_COMPOSITION_OFFSET,
        ];
        let entry_len = 4 * fields.iter().filter(|&&f| flags & f != 0).count();
        if count.checked_mul(entry_len).is_none_or(|n| n > c.left()) {
            return Err(ReadError::Short("trun"));
        }
        if samples.len().saturating_add(count) > MAX_SAMPLES {
            return Err(ReadError::TooManySamples);
        }
        for i in 0..count {
            let duration = if flags & TRUN_DURATION != 0 {
                c.u32()?
            } else {
                defaults.duration
            };
            let size = if flags & TRUN_SIZE != 0 {
                c.u32()?
            } else {
                defaults.size
            };
            let sample_flags = if flags & TRUN_FLAGS != 0 {
                c.u32()?
            } else {
                first_flags.filter(|_| i == 0).unwrap_or(defaults.flags)
            };
            let composition_offset = if flags & TRUN_COMPOSITION_OFFSET == 0 {
                0
            } else if version == 0 {
                i64::from(c.u32()?)
            } else {
                i64::from(c.i32()?)
            };
            let end = usize::try_from(size)
                .ok()
                .and_then(|s| position.checked_add(s))
                .ok_or(ReadError::DataOutOfRange)?;
            let sample_data = data.get(position..end).ok_or(ReadError::DataOutOfRange)?;
            position = end;
            samples.push(ReadSample {
                track_id,
                decode_time: time,
                duration,
                composition_offset,
                is_sync: sample_flags & NON_SYNC == 0,
                data: sample_data,
            });
            time = time
                .checked_add(u64::from(duration))
                .ok_or(ReadError::TimeOverflow)?;
        }
    }
    next_time[slot].1 = time;
    Ok(())
}

/// One box: its type, where it starts in the slice walked, and its body.
#[derive(Debug, Clone, Copy)]
struct Found<'a> {
    kind: [u8; 4],
    start: usize,
    body: &'a [u8],
}

/// The boxes laid end to end in a slice; stops at the first malformed header.
struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Boxes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<Found<'a>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.pos..).filter(|r| !r.is_empty())?;
        let start = self.pos;
        match header(rest) {
            Ok((kind, header_len, size)) => {
                self.pos = start.saturating_add(size);
                Some(Ok(Found {
                    kind,
                    start,
                    body: &rest[header_len..size],
                }))
            }
            Err(e) => {
                self.pos = self.data.len();
                Some(Err(e))
            }
        }
    }
}

/// A box header: type, header length and whole size (32-bit, 64-bit, or 0 for "to the end").
fn header(rest: &[u8]) -> Result<([u8; 4], usize, usize), ReadError> {
    let mut c = Cursor::new(rest, "box header");
    let size = c.u32()?;
    let kind = c.array::<4>()?;
    let bad = || ReadError::BadBoxSize(String::from_utf8_lossy(&kind).into_owned());
    let (header_len, size) = match size {
        0 => (8, rest.len()),
        1 => (
            16,
            usize::try_from(c.u64().map_err(|_| bad())?).map_err(|_| bad())?,
        ),
        n => (8, usize::try_from(n).map_err(|_| bad())?),
    };
    if size < header_len || size > rest.len() {
        return Err(bad());
    }
    Ok((kind, header_len, size))
}

/// The body of the first child box of a kind.
fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, ReadError> {
    for found in Boxes::new(data) {
        let found = found?;
        if &found.kind == kind {
            return Ok(Some(found.body));
        }
    }
    Ok(None)
}

/// Big-endian fields read from a box body, each checked against its end.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }

    fn left(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let end = self.pos.checked_add(n).ok_or(ReadError::Short(self.what))?;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or(ReadError::Short(self.what))?;
        self.pos = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), ReadError> {
        self.take(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.array::<1>()?[0])
    }

    fn u24(&mut self) -> Result<u32, ReadError> {
        let [a, b, c] = self.array::<3>()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, ReadError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ReadError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}
