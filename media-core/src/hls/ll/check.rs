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

use super::parse::{parse, Playlist, PlaylistSegment};
use super::{PartId, UriTemplate, MIN_PART_SHARE};
use crate::fmp4::read::{read_init, read_samples};
use std::collections::BTreeMap;

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

/// Whether the first video sample of a part (one or more `moof` + `mdat` chunks; the first
/// `moof` is read) holds an IDR slice; `None` when the part has no video. The video track and
/// its NALU length size come from `init`; a malformed sample counts as no IDR.
pub fn first_video_sample_is_idr(init: &[u8], part: &[u8]) -> Result<Option<bool>, String> {
    let init = read_init(init).map_err(|e| e.to_string())?;
    let Some(video) = init.video() else {
        return Ok(None);
    };
    let length_size = video.nalu_length_size.ok_or("no avcC")?;
    let samples = read_samples(part, &init).map_err(|e| e.to_string())?;
    let Some(first) = samples.iter().find(|s| s.track_id == video.id) else {
        return Ok(None);
    };
    Ok(Some(crate::avc::is_keyframe_avcc(first.data, length_size)))
}
