//! A spec checker for LL-HLS media playlists, for tests here and HTTP-level tests elsewhere;
//! not a stable API.
//!
//! [`Checker::check`] parses one playlist revision and holds it to the rules of
//! draft-pantos-hls-rfc8216bis-16 and issue 13: constant `PART-TARGET`, `TARGETDURATION` and
//! hold-backs within their limits, parts no longer than `PART-TARGET`, segments no longer than
//! `TARGETDURATION` and as long as their parts, a media sequence that never goes back, parts
//! listed near the live edge, the preload hint naming the next part, and revisions agreeing on
//! everything they both list. [`Checker::check_delta`] compares a delta update with the full
//! playlist of the same moment. [`first_video_sample_is_idr`] looks inside a part.

use super::{PartId, UriTemplate, MIN_PART_SHARE};
use std::collections::BTreeMap;

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistPart {
    /// `DURATION` in microseconds.
    pub duration_us: u64,
    /// `URI`.
    pub uri: String,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
}

/// One segment as listed; the segment being written has no URI and the sum of its parts as
/// duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistSegment {
    /// Media Sequence Number, counted from `EXT-X-MEDIA-SEQUENCE` and `EXT-X-SKIP`.
    pub msn: u64,
    /// `EXTINF` in microseconds.
    pub duration_us: u64,
    /// The URI line; empty for the segment being written.
    pub uri: String,
    /// Its `EXT-X-PART` lines.
    pub parts: Vec<PlaylistPart>,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// The `EXT-X-MAP` URI in effect.
    pub map: Option<String>,
    /// `EXT-X-PROGRAM-DATE-TIME` in unix milliseconds.
    pub program_date_time_ms: Option<u64>,
}

/// A parsed media playlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Playlist {
    /// `EXT-X-VERSION`.
    pub version: u64,
    /// `EXT-X-TARGETDURATION` in seconds.
    pub target_duration: u64,
    /// `CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `PART-HOLD-BACK` in microseconds.
    pub part_hold_back_us: Option<u64>,
    /// `HOLD-BACK` in microseconds.
    pub hold_back_us: Option<u64>,
    /// `CAN-SKIP-UNTIL` in microseconds.
    pub can_skip_until_us: Option<u64>,
    /// `PART-TARGET` in microseconds.
    pub part_target_us: Option<u64>,
    /// `EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`.
    pub discontinuity_sequence: u64,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`.
    pub skipped: u64,
    /// Complete segments listed.
    pub segments: Vec<PlaylistSegment>,
    /// The segment being written, when it has parts.
    pub open: Option<PlaylistSegment>,
    /// `EXT-X-PRELOAD-HINT` URI.
    pub preload_hint: Option<String>,
    /// `EXT-X-RENDITION-REPORT` attribute lists.
    pub rendition_reports: Vec<String>,
}

impl Playlist {
    /// The Media Sequence Number of the segment the next part belongs to, if it continues the
    /// open one.
    pub fn open_msn(&self) -> u64 {
        self.media_sequence
            .saturating_add(self.skipped)
            .saturating_add(self.segments.len() as u64)
    }

    /// Time from the end of each complete segment to the end of the playlist, in µs.
    pub fn ages_us(&self) -> Vec<u64> {
        let mut after = self.open.as_ref().map_or(0, |o| o.duration_us);
        let mut ages = vec![0; self.segments.len()];
        for (age, segment) in ages.iter_mut().zip(&self.segments).rev() {
            *age = after;
            after = after.saturating_add(segment.duration_us);
        }
        ages
    }
}

/// The values that may never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Constants {
    version: u64,
    target_duration: u64,
    part_target_us: u64,
    part_hold_back_us: u64,
    hold_back_us: u64,
    can_skip_until_us: u64,
}

/// Checks successive revisions of one media playlist.
#[derive(Debug, Clone)]
pub struct Checker {
    uris: UriTemplate,
    strict_parts: bool,
    constants: Option<Constants>,
    media_sequence: u64,
    discontinuity_sequence: u64,
    parts: BTreeMap<PartId, (u64, bool)>,
    segments: BTreeMap<u64, (u64, String)>,
    revisions: u64,
}

impl Checker {
    /// A checker for a playlist naming its parts and segments with `uris`.
    pub fn new(uris: UriTemplate) -> Self {
        Self {
            uris,
            strict_parts: false,
            constants: None,
            media_sequence: 0,
            discontinuity_sequence: 0,
            parts: BTreeMap::new(),
            segments: BTreeMap::new(),
            revisions: 0,
        }
    }

    /// Also requires every part but the last of its segment to last at least 85% of
    /// `PART-TARGET` (for streams whose frame rate allows it).
    pub fn strict_parts(mut self) -> Self {
        self.strict_parts = true;
        self
    }

    /// Playlists checked so far.
    pub fn revisions(&self) -> u64 {
        self.revisions
    }

    /// Checks one revision of the full playlist (or of a delta update on its own).
    pub fn check(&mut self, text: &str) -> Result<Playlist, String> {
        let playlist = parse(text)?;
        self.check_rules(&playlist)?;
        self.check_history(&playlist)?;
        self.revisions += 1;
        Ok(playlist)
    }

    /// Checks a delta update against the full playlist rendered at the same moment: same
    /// header, the oldest `SKIPPED-SEGMENTS` segments (exactly those older than
    /// `CAN-SKIP-UNTIL`) replaced, everything else identical.
    pub fn check_delta(&mut self, full: &Playlist, text: &str) -> Result<Playlist, String> {
        let delta = self.check(text)?;
        let skipped = usize::try_from(delta.skipped).map_err(|e| e.to_string())?;
        let can_skip_until = full.can_skip_until_us.ok_or("no CAN-SKIP-UNTIL")?;
        let skippable = full
            .ages_us()
            .iter()
            .take_while(|&&age| age >= can_skip_until)
            .count();
        if skipped != skippable {
            return Err(format!(
                "delta skips {skipped} segments, {skippable} are older than CAN-SKIP-UNTIL"
            ));
        }
        let same_header = (delta.media_sequence, delta.discontinuity_sequence)
            == (full.media_sequence, full.discontinuity_sequence);
        let same_tail = delta.segments[..] == full.segments[skipped..]
            && delta.open == full.open
            && delta.preload_hint == full.preload_hint
            && delta.rendition_reports == full.rendition_reports;
        if !same_header || !same_tail {
            return Err(format!("delta differs from the full playlist:\n{text}"));
        }
        Ok(delta)
    }

    /// Rules that hold for every revision on its own.
    fn check_rules(&mut self, p: &Playlist) -> Result<(), String> {
        let constants = Constants {
            version: p.version,
            target_duration: p.target_duration,
            part_target_us: p.part_target_us.ok_or("no EXT-X-PART-INF:PART-TARGET")?,
            part_hold_back_us: p.part_hold_back_us.ok_or("no PART-HOLD-BACK")?,
            hold_back_us: p.hold_back_us.ok_or("no HOLD-BACK")?,
            can_skip_until_us: p.can_skip_until_us.ok_or("no CAN-SKIP-UNTIL")?,
        };
        if *self.constants.get_or_insert(constants) != constants {
            return Err(format!(
                "header changed: {constants:?} after {:?}",
                self.constants
            ));
        }
        let target_us = p.target_duration.saturating_mul(1_000_000);
        let part_target = constants.part_target_us;
        let limits = [
            (p.version >= 6, "EXT-X-MAP needs version 6"),
            (
                p.skipped == 0 || p.version >= 9,
                "EXT-X-SKIP needs version 9",
            ),
            (p.can_block_reload, "no CAN-BLOCK-RELOAD=YES"),
            (p.target_duration >= 1, "TARGETDURATION below 1"),
            (
                (200_000..=500_000).contains(&part_target),
                "PART-TARGET outside 0.2-0.5 s",
            ),
            (
                constants.part_hold_back_us >= part_target.saturating_mul(3),
                "PART-HOLD-BACK below 3x PART-TARGET",
            ),
            (
                constants.hold_back_us >= target_us.saturating_mul(3),
                "HOLD-BACK below 3x TARGETDURATION",
            ),
            (
                constants.can_skip_until_us >= target_us.saturating_mul(6),
                "CAN-SKIP-UNTIL below 6x TARGETDURATION",
            ),
            (
                p.segments.len() + usize::from(p.open.is_some()) > 0,
                "no segment and no part",
            ),
        ];
        if let Some((_, rule)) = limits.iter().find(|(ok, _)| !ok) {
            return Err((*rule).to_owned());
        }
        let ages = p.ages_us();
        let all = p.segments.iter().chain(&p.open);
        let mut previous: Option<&PlaylistSegment> = None;
        for (i, segment) in all.enumerate() {
            let complete = i < p.segments.len();
            let msn = segment.msn;
            if complete && segment.uri != self.uris.segment(msn) {
                return Err(format!("segment {msn} has URI {}", segment.uri));
            }
            if segment.duration_us > target_us {
                return Err(format!("segment {msn} lasts {} us", segment.duration_us));
            }
            if segment.map.is_none() || segment.program_date_time_ms.is_none() {
                return Err(format!("segment {msn} lacks EXT-X-MAP or a date"));
            }
            if complete && ages[i] < target_us.saturating_mul(3) && segment.parts.is_empty() {
                return Err(format!("segment {msn} is near the live edge without parts"));
            }
            let sum: u64 = segment.parts.iter().map(|part| part.duration_us).sum();
            let slack = segment.parts.len() as u64;
            if !segment.parts.is_empty() && sum.abs_diff(segment.duration_us) > slack {
                return Err(format!(
                    "segment {msn} lasts {} us, its parts {sum}",
                    segment.duration_us
                ));
            }
            for (index, part) in segment.parts.iter().enumerate() {
                let id = PartId {
                    msn,
                    part: index as u64,
                };
                if part.uri != self.uris.part(id) {
                    return Err(format!("part {id:?} has URI {}", part.uri));
                }
                if part.duration_us > part_target {
                    return Err(format!("part {id:?} lasts {} us", part.duration_us));
                }
                let last = index + 1 == segment.parts.len();
                let share = part.duration_us as f64 / part_target as f64;
                if self.strict_parts && !last && share < MIN_PART_SHARE {
                    return Err(format!("part {id:?} lasts {} us only", part.duration_us));
                }
            }
            if let Some(before) = previous.filter(|_| !segment.discontinuity) {
                let (Some(was), Some(now)) =
                    (before.program_date_time_ms, segment.program_date_time_ms)
                else {
                    return Err("missing date".into());
                };
                if now.saturating_add(1) < was.saturating_add(before.duration_us / 1000) {
                    return Err(format!(
                        "segment {msn} is dated before its predecessor ends"
                    ));
                }
            }
            previous = Some(segment);
        }
        let hint = PartId {
            msn: p.open_msn(),
            part: p.open.as_ref().map_or(0, |o| o.parts.len() as u64),
        };
        if p.preload_hint.as_deref() != Some(self.uris.part(hint).as_str()) {
            return Err(format!(
                "preload hint {:?}, next part {hint:?}",
                p.preload_hint
            ));
        }
        Ok(())
    }

    /// Rules across revisions: sequences never go back, and what two revisions both list
    /// agrees.
    fn check_history(&mut self, p: &Playlist) -> Result<(), String> {
        if p.media_sequence < self.media_sequence
            || p.discontinuity_sequence < self.discontinuity_sequence
        {
            return Err(format!(
                "sequence went back to {}/{}",
                p.media_sequence, p.discontinuity_sequence
            ));
        }
        self.media_sequence = p.media_sequence;
        self.discontinuity_sequence = p.discontinuity_sequence;
        let oldest = p.media_sequence;
        self.parts.retain(|id, _| id.msn >= oldest);
        self.segments.retain(|&msn, _| msn >= oldest);
        for segment in p.segments.iter().chain(&p.open) {
            if !segment.uri.is_empty() {
                let seen = (segment.duration_us, segment.uri.clone());
                if *self
                    .segments
                    .entry(segment.msn)
                    .or_insert_with(|| seen.clone())
                    != seen
                {
                    return Err(format!("segment {} changed", segment.msn));
                }
            }
            for (index, part) in segment.parts.iter().enumerate() {
                let id = PartId {
                    msn: segment.msn,
                    part: index as u64,
                };
                let seen = (part.duration_us, part.independent);
                if *self.parts.entry(id).or_insert(seen) != seen {
                    return Err(format!("part {id:?} changed"));
                }
            }
        }
        Ok(())
    }
}

/// Parses a media playlist with the tags the packager writes; anything else is an error.
pub fn parse(text: &str) -> Result<Playlist, String> {
    let mut lines = text.lines();
    if lines.next() != Some("#EXTM3U") {
        return Err("no #EXTM3U".into());
    }
    let mut p = Playlist::default();
    let mut pending = PlaylistSegment {
        msn: 0,
        duration_us: 0,
        uri: String::new(),
        parts: Vec::new(),
        discontinuity: false,
        map: None,
        program_date_time_ms: None,
    };
    let mut map: Option<String> = None;
    let mut extinf: Option<u64> = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some(tag) = line.strip_prefix('#') else {
            let duration_us = extinf.take().ok_or("URI without EXTINF")?;
            let next = PlaylistSegment {
                duration_us,
                uri: line.to_owned(),
                map: map.clone(),
                ..pending.clone()
            };
            p.segments.push(next);
            pending.parts.clear();
            pending.discontinuity = false;
            pending.program_date_time_ms = None;
            continue;
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        match name {
            "EXT-X-VERSION" => p.version = number(value)?,
            "EXT-X-TARGETDURATION" => p.target_duration = number(value)?,
            "EXT-X-MEDIA-SEQUENCE" => p.media_sequence = number(value)?,
            "EXT-X-DISCONTINUITY-SEQUENCE" => p.discontinuity_sequence = number(value)?,
            "EXT-X-SERVER-CONTROL" => {
                let attrs = attributes(value)?;
                p.can_block_reload = find(&attrs, "CAN-BLOCK-RELOAD") == Some("YES");
                p.part_hold_back_us = find(&attrs, "PART-HOLD-BACK").map(micros).transpose()?;
                p.hold_back_us = find(&attrs, "HOLD-BACK").map(micros).transpose()?;
                p.can_skip_until_us = find(&attrs, "CAN-SKIP-UNTIL").map(micros).transpose()?;
            }
            "EXT-X-PART-INF" => {
                let attrs = attributes(value)?;
                p.part_target_us = find(&attrs, "PART-TARGET").map(micros).transpose()?;
            }
            "EXT-X-SKIP" => {
                let attrs = attributes(value)?;
                p.skipped = number(find(&attrs, "SKIPPED-SEGMENTS").unwrap_or(""))?;
            }
            "EXT-X-DISCONTINUITY" => pending.discontinuity = true,
            "EXT-X-MAP" => map = find(&attributes(value)?, "URI").map(str::to_owned),
            "EXT-X-PROGRAM-DATE-TIME" => pending.program_date_time_ms = Some(date_time(value)?),
            "EXT-X-PART" => {
                let attrs = attributes(value)?;
                pending.parts.push(PlaylistPart {
                    duration_us: micros(find(&attrs, "DURATION").unwrap_or(""))?,
                    uri: find(&attrs, "URI").ok_or("part without URI")?.to_owned(),
                    independent: find(&attrs, "INDEPENDENT") == Some("YES"),
                });
            }
            "EXTINF" => {
                let duration = value.split(',').next().unwrap_or("");
                extinf = Some(micros(duration)?);
            }
            "EXT-X-PRELOAD-HINT" => {
                let attrs = attributes(value)?;
                if find(&attrs, "TYPE") != Some("PART") {
                    return Err(format!("preload hint {value}"));
                }
                p.preload_hint = find(&attrs, "URI").map(str::to_owned);
            }
            "EXT-X-RENDITION-REPORT" => p.rendition_reports.push(value.to_owned()),
            _ => return Err(format!("unexpected line {line}")),
        }
    }
    if extinf.is_some() {
        return Err("EXTINF without URI".into());
    }
    let first = p.media_sequence.saturating_add(p.skipped);
    for (i, segment) in p.segments.iter_mut().enumerate() {
        segment.msn = first.saturating_add(i as u64);
    }
    if !pending.parts.is_empty() {
        p.open = Some(PlaylistSegment {
            msn: p.open_msn(),
            duration_us: pending.parts.iter().map(|part| part.duration_us).sum(),
            map,
            ..pending
        });
    }
    Ok(p)
}

/// Whether the first video sample of a part (one or more `moof` + `mdat` chunks; the first
/// `moof` is read) holds an IDR slice; `None` when the part has no video. The video track and
/// its NALU length size come from `init`.
pub fn first_video_sample_is_idr(init: &[u8], part: &[u8]) -> Result<Option<bool>, String> {
    let Some((track_id, length_size)) = video_track(init)? else {
        return Ok(None);
    };
    let moof = child(part, b"moof")?.ok_or("no moof")?;
    for traf in children(&moof[8..])?
        .into_iter()
        .filter(|b| &b[4..8] == b"traf")
    {
        let tfhd = child(&traf[8..], b"tfhd")?.ok_or("no tfhd")?;
        if be32(tfhd, 12)? != track_id {
            continue;
        }
        let trun = child(&traf[8..], b"trun")?.ok_or("no trun")?;
        let flags = be32(trun, 8)? & 0x00FF_FFFF;
        if be32(trun, 12)? == 0 || flags & 0x201 != 0x201 {
            return Err("trun without samples, data offset or sizes".into());
        }
        let offset = usize::try_from(be32(trun, 16)?).map_err(|e| e.to_string())?;
        let mut at = 20 + if flags & 0x4 != 0 { 4 } else { 0 };
        if flags & 0x100 != 0 {
            at += 4;
        }
        let size = usize::try_from(be32(trun, at)?).map_err(|e| e.to_string())?;
        let sample = part
            .get(offset..offset.saturating_add(size))
            .ok_or("sample outside the part")?;
        let nalus = crate::avc::avcc_nalus(sample, length_size).map_err(|e| e.to_string())?;
        let idr = nalus
            .iter()
            .any(|n| crate::avc::nal_type(n) == crate::avc::NAL_IDR);
        return Ok(Some(idr));
    }
    Ok(None)
}

/// The video track's id and NALU length size from an init segment.
fn video_track(init: &[u8]) -> Result<Option<(u32, u8)>, String> {
    let moov = child(init, b"moov")?.ok_or("no moov")?;
    for trak in children(&moov[8..])?
        .into_iter()
        .filter(|b| &b[4..8] == b"trak")
    {
        let tkhd = child(&trak[8..], b"tkhd")?.ok_or("no tkhd")?;
        let track_id = be32(tkhd, if tkhd.get(8) == Some(&1) { 28 } else { 20 })?;
        let mdia = child(&trak[8..], b"mdia")?.ok_or("no mdia")?;
        let hdlr = child(&mdia[8..], b"hdlr")?.ok_or("no hdlr")?;
        if hdlr.get(16..20) != Some(b"vide") {
            continue;
        }
        let mut scope = &mdia[8..];
        for (kind, skip) in [(b"minf", 8), (b"stbl", 8), (b"stsd", 16), (b"avc1", 86)] {
            let found = child(scope, kind)?.ok_or("no avc1")?;
            scope = found.get(skip..).ok_or("short box")?;
        }
        let avcc = child(scope, b"avcC")?.ok_or("no avcC")?;
        let length_size = (avcc.get(12).ok_or("short avcC")? & 0x03) + 1;
        return Ok(Some((track_id, length_size)));
    }
    Ok(None)
}

/// The boxes laid end to end in `data` (32-bit sizes only).
fn children(mut data: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut found = Vec::new();
    while !data.is_empty() {
        let size = usize::try_from(be32(data, 0)?).map_err(|e| e.to_string())?;
        if size < 8 || size > data.len() {
            return Err(format!("bad box size {size}"));
        }
        found.push(&data[..size]);
        data = &data[size..];
    }
    Ok(found)
}

/// The first child box of a kind.
fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, String> {
    Ok(children(data)?.into_iter().find(|b| &b[4..8] == kind))
}

fn be32(data: &[u8], at: usize) -> Result<u32, String> {
    let bytes = data.get(at..at + 4).ok_or("short box")?;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// An attribute list: `KEY=value` or `KEY="quoted, value"`, comma separated.
fn attributes(list: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut found = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or(format!("bad attributes {list}"))?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (value, after) = quoted.split_once('"').ok_or("unterminated quote")?;
                (value, after)
            }
            None => after.split_at(after.find(',').unwrap_or(after.len())),
        };
        found.push((key, value));
        rest = match after.strip_prefix(',') {
            Some(next) => next,
            None if after.is_empty() => after,
            None => return Err(format!("bad attributes {list}")),
        };
    }
    Ok(found)
}

fn find<'a>(attrs: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

/// Decimal seconds with at most six decimals, in microseconds.
fn micros(text: &str) -> Result<u64, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad duration {text:?}"));
    }
    let scale = 10u64.pow(6 - fraction.len() as u32);
    let fraction = if fraction.is_empty() {
        0
    } else {
        number(fraction)?
    };
    number(whole)?
        .checked_mul(1_000_000)
        .and_then(|us| us.checked_add(fraction * scale))
        .ok_or(format!("duration too large {text:?}"))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in unix milliseconds.
fn date_time(text: &str) -> Result<u64, String> {
    let bad = || format!("bad date {text:?}");
    let b = text.as_bytes();
    let shape = text.is_ascii()
        && b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape {
        return Err(bad());
    }
    let field = |range: std::ops::Range<usize>| number(&text[range]).map_err(|_| bad());
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let seconds = field(11..13)? * 3600 + field(14..16)? * 60 + field(17..19)?;
    Ok((days_from_civil(year, month, day) * 86_400 + seconds) * 1000 + field(20..23)?)
}

/// Days since 1970-01-01 of a Gregorian date from 1970 on (Howard Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let yoe = year % 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
