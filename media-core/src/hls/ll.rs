//! Low-latency HLS (draft-pantos-hls-rfc8216bis-16, "HLS 2nd edition"): a sans-I/O packager that
//! cuts H.264 + AAC into fMP4 parts and segments, renders the media playlist (blocking reload,
//! parts, preload hints, rendition reports, delta updates), and decides held requests.
//!
//! # Data flow
//! The caller feeds [`Packager`] the sequence headers ([`Packager::set_avc_config`],
//! [`Packager::set_aac_config`]), AVCC access units ([`Packager::push_video`]) and raw AAC frames
//! ([`Packager::push_audio`]), each with the wall clock in unix milliseconds (used only for
//! `EXT-X-PROGRAM-DATE-TIME`), and a republish with [`Packager::restart`]. It then drains
//! [`Packager::poll_event`]: a new init segment, each chunk of the part being filled, each
//! finished part, each finished segment. A server wakes the requests held on a part or segment
//! from those events, and renders [`Packager::render`] or serves [`Packager::part`] /
//! [`Packager::open_chunks`] / [`Packager::segment`] / [`Packager::init`] after asking
//! [`decide_playlist`] / [`decide_part`] / [`decide_segment`] (pure functions of
//! [`Directives`] and a [`LiveEdge`]) whether to answer now, hold, or refuse.
//!
//! # Preload hints
//! `EXT-X-PRELOAD-HINT` names the next part: part `n` of the segment receiving parts, where `n`
//! is the number of parts it has so far ([`LiveEdge::preload_hint`]). That part is written as
//! CMAF chunks while it fills ([`Event::Chunk`]): once it has its first frame,
//! [`Packager::open_chunks`] gives the chunks written so far, so a server can answer a request
//! for it at once and send each chunk as it comes, ending with [`Event::Part`]; the chunks back
//! to back are the finished part. Before its first frame a server holds the request
//! ([`FetchDecision::Wait`]). The frame that closes a segment's last part also opens the next
//! segment, so the hint moves straight from that part to part 0 of the next segment and a hinted
//! part is always cut, except when a republish or a codec change ends the segment: then the
//! part after the last one never exists, [`decide_part`] turns into
//! [`FetchDecision::NotFound`] for it, and the client reloads the playlist.
//!
//! # URIs
//! A [`UriTemplate`] names parts, segments and init segments from `{msn}`, `{part}` and `{init}`
//! placeholders, e.g. `live/cam/ll/{msn}.{part}.m4s`, `live/cam/ll/{msn}.m4s` and
//! `live/cam/ll/init{init}.mp4`; the text around them is the caller's (relative to the
//! playlist's URL or absolute). Init segments are numbered so that a changed codec
//! configuration gets a new URI and caches can keep every init as immutable.
//!
//! # Reading
//! [`parse`] reads a media playlist back into its segments, parts, preload hint and server
//! control values: strictly for the spec checker, leniently for players.

#[doc(hidden)]
pub mod check;
mod packager;
pub mod parse;
mod playlist;
mod request;
#[cfg(test)]
mod tests;

pub use packager::{
    Event, Init, Packager, Part, Segment, VideoFrame, AUDIO_CHUNK_FRAMES, MAX_QUEUED_AUDIO,
    MAX_QUEUED_EVENTS, MAX_TIMESTAMP_MS,
};
pub use playlist::RenditionReport;
pub use request::{
    decide_part, decide_playlist, decide_segment, DirectiveError, Directives, FetchDecision,
    LiveEdge, PlaylistDecision, Skip, TooFar,
};

use crate::avc::AvcError;
use crate::fmp4::Fmp4Error;
use std::time::Duration;
use thiserror::Error;

/// `EXT-X-VERSION` of every playlist: `EXT-X-SKIP` needs 9 (section 7); the same value is sent
/// in full and delta playlists so that a client never sees it change.
pub const VERSION: u32 = 9;
/// Shortest allowed `PART-TARGET`.
pub const MIN_PART_TARGET: Duration = Duration::from_millis(200);
/// Longest allowed `PART-TARGET`.
pub const MAX_PART_TARGET: Duration = Duration::from_millis(500);
/// Longest allowed `EXT-X-TARGETDURATION`, in seconds.
pub const MAX_TARGET_DURATION: u64 = 30;
/// Most complete segments a playlist may list.
pub const MAX_WINDOW: usize = 1024;
/// Shortest a part other than the last of its segment should be, as a share of `PART-TARGET`.
pub const MIN_PART_SHARE: f64 = 0.85;

/// One part: its segment's Media Sequence Number and its index in that segment. Orders as the
/// stream does: every part of a segment comes before every part of the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartId {
    /// Media Sequence Number of the parent segment.
    pub msn: u64,
    /// Part index within the segment, from 0.
    pub part: u64,
}

/// Errors from the packager and its configuration.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LlHlsError {
    /// A configuration value is out of range; names the field.
    #[error("invalid LL-HLS config: {0}")]
    Config(&'static str),
    /// A URI template lacks a placeholder or holds characters a playlist cannot quote.
    #[error("invalid URI template {0:?}")]
    UriTemplate(String),
    /// Video arrived before [`Packager::set_avc_config`].
    #[error("video frame before the AVC sequence header")]
    NoAvcConfig,
    /// Audio arrived before [`Packager::set_aac_config`].
    #[error("audio frame before the AAC sequence header")]
    NoAacConfig,
    /// A video frame's decode time is not after the previous one's.
    #[error("video DTS {dts_ms} ms does not follow {last_ms} ms")]
    VideoDtsNotIncreasing {
        /// The frame's DTS.
        dts_ms: u64,
        /// The previous frame's DTS.
        last_ms: u64,
    },
    /// An audio frame's decode time is before the previous one's.
    #[error("audio DTS {dts_ms} ms goes back from {last_ms} ms")]
    AudioDtsWentBack {
        /// The frame's DTS.
        dts_ms: u64,
        /// The previous frame's DTS.
        last_ms: u64,
    },
    /// Audio queued for parts not yet cut reached its bound (the video stopped).
    #[error("audio backlog full: video is not advancing")]
    AudioBacklog,
    /// A timestamp leaves the representable range.
    #[error("timestamp out of range")]
    TimestampOverflow,
    /// The access unit's NALU framing is broken.
    #[error(transparent)]
    Avc(#[from] AvcError),
    /// The fMP4 writer refused the configuration or the samples.
    #[error(transparent)]
    Fmp4(#[from] Fmp4Error),
}

/// Names of parts, segments and init segments: `{msn}`, `{part}` and `{init}` are replaced by
/// decimal numbers, the rest is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    part: String,
    segment: String,
    init: String,
}

impl UriTemplate {
    /// Checks the templates: the part one needs `{msn}` and `{part}`, the segment one `{msn}`
    /// and the init one `{init}`. Quotes and control characters are refused, since URIs are
    /// written as quoted strings and lines.
    pub fn new(part: &str, segment: &str, init: &str) -> Result<Self, LlHlsError> {
        let checks: [(&str, &[&str]); 3] = [
            (part, &["{msn}", "{part}"]),
            (segment, &["{msn}"]),
            (init, &["{init}"]),
        ];
        for (template, needed) in checks {
            let quotable = !template.chars().any(|c| c == '"' || c.is_control());
            if !quotable || needed.iter().any(|p| !template.contains(p)) {
                return Err(LlHlsError::UriTemplate(template.to_owned()));
            }
        }
        Ok(Self {
            part: part.to_owned(),
            segment: segment.to_owned(),
            init: init.to_owned(),
        })
    }

    /// The URI of one part.
    pub fn part(&self, id: PartId) -> String {
        self.part
            .replace("{msn}", &id.msn.to_string())
            .replace("{part}", &id.part.to_string())
    }

    /// The URI of one complete segment.
    pub fn segment(&self, msn: u64) -> String {
        self.segment.replace("{msn}", &msn.to_string())
    }

    /// The URI of one init segment.
    pub fn init(&self, id: u64) -> String {
        self.init.replace("{init}", &id.to_string())
    }
}

impl Default for UriTemplate {
    /// `{msn}.{part}.m4s`, `{msn}.m4s` and `init{init}.mp4`, relative to the playlist.
    fn default() -> Self {
        Self {
            part: "{msn}.{part}.m4s".into(),
            segment: "{msn}.m4s".into(),
            init: "init{init}.mp4".into(),
        }
    }
}

/// Packager settings, fixed for the stream's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlHlsConfig {
    /// `PART-TARGET`: no part is longer. Whole milliseconds from [`MIN_PART_TARGET`] to
    /// [`MAX_PART_TARGET`]; the default 334 ms holds ten frames of 29.97 or 30 fps video and
    /// eight of 24 fps.
    pub part_target: Duration,
    /// `EXT-X-TARGETDURATION` in seconds (1 to [`MAX_TARGET_DURATION`]): no segment is longer.
    /// A GOP longer than this forces cuts between keyframes.
    pub target_duration: u64,
    /// A keyframe at least this far into a segment starts the next one; whole milliseconds,
    /// above zero and at most the target duration.
    pub segment_duration: Duration,
    /// Complete segments listed (and kept) behind the live edge; at least 3, at most
    /// [`MAX_WINDOW`], and spanning at least 3 target durations at the segment duration.
    pub window: usize,
    /// How parts, segments and init segments are named in the playlist.
    pub uris: UriTemplate,
}

impl Default for LlHlsConfig {
    /// 334 ms parts, 2 s target duration, cuts at keyframes from 1 s, 7 segments.
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(334),
            target_duration: 2,
            segment_duration: Duration::from_secs(1),
            window: 7,
            uris: UriTemplate::default(),
        }
    }
}

impl LlHlsConfig {
    /// Checks every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), LlHlsError> {
        let whole_ms = |d: Duration| d.subsec_nanos().is_multiple_of(1_000_000);
        if !(MIN_PART_TARGET..=MAX_PART_TARGET).contains(&self.part_target)
            || !whole_ms(self.part_target)
        {
            return Err(LlHlsError::Config("part_target"));
        }
        if !(1..=MAX_TARGET_DURATION).contains(&self.target_duration) {
            return Err(LlHlsError::Config("target_duration"));
        }
        let target = Duration::from_secs(self.target_duration);
        if self.segment_duration.is_zero()
            || self.segment_duration > target
            || !whole_ms(self.segment_duration)
        {
            return Err(LlHlsError::Config("segment_duration"));
        }
        let span = u32::try_from(self.window)
            .ok()
            .and_then(|n| self.segment_duration.checked_mul(n));
        if !(3..=MAX_WINDOW).contains(&self.window) || span.is_none_or(|s| s < target * 3) {
            return Err(LlHlsError::Config("window"));
        }
        Ok(())
    }

    /// `PART-TARGET` in microseconds.
    pub fn part_target_us(&self) -> u64 {
        duration_us(self.part_target)
    }

    /// `EXT-X-TARGETDURATION` in microseconds.
    pub fn target_duration_us(&self) -> u64 {
        self.target_duration.saturating_mul(1_000_000)
    }

    /// How long a server holds a blocking request before answering 503: three target
    /// durations (section 6.2.5.2).
    pub fn hold_timeout(&self) -> Duration {
        Duration::from_secs(self.target_duration.saturating_mul(3))
    }
}

/// A duration in whole microseconds, saturating.
fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
