//! Delivery directives (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) and the decisions on held
//! requests, as pure functions (draft-pantos-hls-rfc8216bis-16, section 6.2.5).
//!
//! - A playlist request with `_HLS_msn=M&_HLS_part=N` is answered once the playlist holds part
//!   N of segment M or any later part; `_HLS_msn=M` alone waits for part 0 of segment M (as
//!   Safari asks).
//! - It is refused (400) when M is more than two beyond the last segment's Media Sequence
//!   Number, or when the part lies more than the Advance Part Limit beyond the last part: three
//!   divided by `PART-TARGET` in seconds when that is below one second, else three parts.
//!   "The last segment" is the one holding the last part, and parts not yet cut are counted as
//!   few as possible, so a request the spec allows is never refused.

use super::PartId;
use thiserror::Error;

/// Most digits a directive's value may have (`u64::MAX` has 20).
const MAX_DIGITS: usize = 20;
/// Three seconds, the numerator of the Advance Part Limit.
const ADVANCE_LIMIT_US: u64 = 3_000_000;

/// `_HLS_skip`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Skip {
    /// Absent: the full playlist.
    #[default]
    No,
    /// `YES`: skip old segments.
    Yes,
    /// `v2`: also skip date ranges (there are none here, so the same as `YES`).
    V2,
}

/// Why a query's directives are refused (answer 400).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DirectiveError {
    /// The parameter appears more than once.
    #[error("{0} is repeated")]
    Repeated(&'static str),
    /// The parameter has no value.
    #[error("{0} has no value")]
    Empty(&'static str),
    /// The value is not a decimal integer (signs, spaces and escapes included).
    #[error("{0} is not a decimal integer")]
    NotDigits(&'static str),
    /// The value does not fit in 64 bits.
    #[error("{0} is too large")]
    TooLarge(&'static str),
    /// `_HLS_part` without `_HLS_msn`.
    #[error("_HLS_part without _HLS_msn")]
    PartWithoutMsn,
    /// `_HLS_skip` is neither `YES` nor `v2`.
    #[error("_HLS_skip must be YES or v2")]
    BadSkip,
}

/// The delivery directives of a playlist request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn`.
    pub msn: Option<u64>,
    /// `_HLS_part`; only with `msn`.
    pub part: Option<u64>,
    /// `_HLS_skip`.
    pub skip: Skip,
}

impl Directives {
    /// Parses a URL query (with or without its leading `?`); other parameters are ignored.
    pub fn parse(query: &str) -> Result<Self, DirectiveError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut directives = Self::default();
        let mut skip_seen = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.split_once('=') {
                Some((key, value)) => (key, value),
                None => (pair, ""),
            };
            match key {
                "_HLS_msn" => set_number(&mut directives.msn, "_HLS_msn", value)?,
                "_HLS_part" => set_number(&mut directives.part, "_HLS_part", value)?,
                "_HLS_skip" => {
                    if std::mem::replace(&mut skip_seen, true) {
                        return Err(DirectiveError::Repeated("_HLS_skip"));
                    }
                    directives.skip = match value {
                        "YES" => Skip::Yes,
                        "v2" => Skip::V2,
                        "" => return Err(DirectiveError::Empty("_HLS_skip")),
                        _ => return Err(DirectiveError::BadSkip),
                    };
                }
                _ => {}
            }
        }
        if directives.part.is_some() && directives.msn.is_none() {
            return Err(DirectiveError::PartWithoutMsn);
        }
        Ok(directives)
    }

    /// The part a blocking request waits for: part N of segment M, or part 0 without
    /// `_HLS_part`; `None` for a request that does not block.
    pub fn target(&self) -> Option<PartId> {
        self.msn.map(|msn| PartId {
            msn,
            part: self.part.unwrap_or(0),
        })
    }
}

/// Stores one decimal directive, refusing repeats.
fn set_number(
    slot: &mut Option<u64>,
    name: &'static str,
    value: &str,
) -> Result<(), DirectiveError> {
    if slot.is_some() {
        return Err(DirectiveError::Repeated(name));
    }
    if value.is_empty() {
        return Err(DirectiveError::Empty(name));
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DirectiveError::NotDigits(name));
    }
    let digits = value.trim_start_matches('0');
    if digits.len() > MAX_DIGITS {
        return Err(DirectiveError::TooLarge(name));
    }
    let number = match digits {
        "" => 0,
        _ => digits.parse().map_err(|_| DirectiveError::TooLarge(name))?,
    };
    *slot = Some(number);
    Ok(())
}

/// Where a stream stands, for the decisions: a snapshot from `Packager::live_edge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveEdge {
    /// Oldest segment still kept.
    pub first_msn: u64,
    /// The segment receiving parts (the preload-hinted part's segment).
    pub open_msn: u64,
    /// Parts the open segment has: the index of the hinted part.
    pub next_part: u64,
    /// The last finished part, if any.
    pub last_part: Option<PartId>,
    /// `PART-TARGET` in microseconds.
    pub part_target_us: u64,
}

impl LiveEdge {
    /// The part `EXT-X-PRELOAD-HINT` names.
    pub fn preload_hint(&self) -> PartId {
        PartId {
            msn: self.open_msn,
            part: self.next_part,
        }
    }

    /// The fewest parts that must still finish before `target` exists (0 when its segment is
    /// finished): each segment still to come has at least one part.
    pub fn parts_until(&self, target: PartId) -> u64 {
        if target.msn < self.open_msn {
            return 0;
        }
        let in_target = target.part.saturating_add(1);
        if target.msn == self.open_msn {
            return in_target.saturating_sub(self.next_part);
        }
        let open_needs = u64::from(self.next_part == 0);
        let between = target.msn - self.open_msn - 1;
        open_needs.saturating_add(between).saturating_add(in_target)
    }

    /// Whether `target` lies beyond the Advance Part Limit from the last part.
    pub fn beyond_part_limit(&self, target: PartId) -> bool {
        let ahead = self.parts_until(target);
        if self.part_target_us < 1_000_000 {
            ahead.saturating_mul(self.part_target_us) > ADVANCE_LIMIT_US
        } else {
            ahead > 3
        }
    }

    /// Media Sequence Number of the last segment: the one holding the last part, or the one to
    /// come when there is none.
    fn last_msn(&self) -> u64 {
        self.last_part.map_or(self.open_msn, |p| p.msn)
    }
}

/// Which advance limit a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooFar {
    /// `_HLS_msn` more than two beyond the last segment.
    Msn,
    /// `_HLS_part` beyond the Advance Part Limit.
    Part,
}

/// What to do with a playlist request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistDecision {
    /// Render and answer now.
    Ready,
    /// Hold until a part at or after this one finishes (or the server's timeout).
    Wait(PartId),
    /// Answer 400: the request is beyond an advance limit.
    BadRequest(TooFar),
}

/// Decides a playlist request. Without `_HLS_msn` it is ready once the stream has a part (an
/// empty playlist helps nobody); with it, see the module notes.
pub fn decide_playlist(directives: &Directives, edge: &LiveEdge) -> PlaylistDecision {
    let Some(target) = directives.target() else {
        return match edge.last_part {
            Some(_) => PlaylistDecision::Ready,
            None => PlaylistDecision::Wait(edge.preload_hint()),
        };
    };
    if target.msn > edge.last_msn().saturating_add(2) {
        return PlaylistDecision::BadRequest(TooFar::Msn);
    }
    if edge.beyond_part_limit(target) {
        return PlaylistDecision::BadRequest(TooFar::Part);
    }
    match edge.last_part {
        Some(last) if last >= target => PlaylistDecision::Ready,
        _ => PlaylistDecision::Wait(target),
    }
}

/// What to do with a request for a part or segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchDecision {
    /// It exists: answer with it.
    Ready,
    /// It does not exist yet but should (the hinted part, a part within the Advance Part
    /// Limit, the segment being written): hold until the next part event and decide again.
    Wait,
    /// It existed and slid out of the window (404 or 410).
    Gone,
    /// It does not exist and will not, or is too far ahead (404).
    NotFound,
}

/// Decides a part request; `stored` says whether the packager holds that part.
pub fn decide_part(edge: &LiveEdge, id: PartId, stored: bool) -> FetchDecision {
    if stored {
        FetchDecision::Ready
    } else if id.msn < edge.first_msn {
        FetchDecision::Gone
    } else if id < edge.preload_hint() || edge.beyond_part_limit(id) {
        FetchDecision::NotFound
    } else {
        FetchDecision::Wait
    }
}

/// Decides a segment request; `stored` says whether the packager holds that segment.
pub fn decide_segment(edge: &LiveEdge, msn: u64, stored: bool) -> FetchDecision {
    if stored {
        FetchDecision::Ready
    } else if msn < edge.first_msn {
        FetchDecision::Gone
    } else if msn == edge.open_msn {
        FetchDecision::Wait
    } else {
        FetchDecision::NotFound
    }
}
