//! What a player reports: live [`Progress`] and the final [`Summary`].

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::latency::{Join, LatencySummary};
use crate::qoe::PlayState;

/// The protocol a session played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// HLS over HTTP(S).
    Hls,
    /// Low-latency HLS: fMP4 parts, blocking playlist reloads and preload hints.
    LlHls,
    /// HTTP-FLV.
    HttpFlv,
    /// RTMP play.
    Rtmp,
}

/// A count per elementary stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerTrack {
    /// Video count.
    pub video: u64,
    /// Audio count.
    pub audio: u64,
}

impl PerTrack {
    /// Video plus audio.
    pub fn total(&self) -> u64 {
        self.video + self.audio
    }
}

/// Requests of an LL-HLS session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LlHlsRequests {
    /// Media playlist requests, blocking or not.
    pub playlists: u64,
    /// Blocking playlist reloads (`_HLS_msn`, `_HLS_part`), held by the server until the part
    /// they name exists.
    pub blocking_playlists: u64,
    /// Part requests, listed or hinted.
    pub parts: u64,
    /// Requests for the part named by `EXT-X-PRELOAD-HINT`, held by the server until it exists.
    pub hinted_parts: u64,
    /// Init segment requests.
    pub inits: u64,
}

/// The result of a playback session. Field names are stable; durations are in the unit their
/// name ends with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The URL played.
    pub url: String,
    /// `hls`, `ll-hls`, `http-flv` or `rtmp`; `null` for a URL no protocol matched.
    pub protocol: Option<Protocol>,
    /// Wall time from the start of the session to the start of playback; `null` if playback
    /// never started.
    pub startup_ms: Option<f64>,
    /// Stalls after startup.
    pub stalls: u64,
    /// Wall time spent stalled after startup.
    pub stall_ms: f64,
    /// Stalls per minute of viewing after startup (playing plus stalled time).
    pub stalls_per_minute: f64,
    /// Media time played.
    pub played_secs: f64,
    /// Wall time of the whole session.
    pub elapsed_secs: f64,
    /// Bytes received (HTTP bodies, or the RTMP byte stream).
    pub bytes: u64,
    /// Average received bitrate over the session.
    pub bitrate_kbps: f64,
    /// Video frames received (sequence headers excluded).
    pub video_frames: u64,
    /// Audio frames received (sequence headers excluded).
    pub audio_frames: u64,
    /// Whether the first video frame received was a keyframe; `null` without video.
    pub first_video_keyframe: Option<bool>,
    /// Frames whose DTS went backwards within a connection or segment run, per track.
    pub dts_backwards: PerTrack,
    /// HLS discontinuities followed (`EXT-X-DISCONTINUITY`, skipped segments or parts).
    pub discontinuities: u64,
    /// Successful reconnections after the source dropped or disappeared.
    pub reconnects: u64,
    /// End-to-end latency from SEI stamps, every stamped frame (join bursts included; LL-HLS
    /// frames before the start point, decoded only to reach it, left out).
    pub latency: LatencySummary,
    /// End-to-end latency of the stamped frames received after catching up with the live edge
    /// (see [`crate::latency::LiveEdge`]): the cached frames of join bursts left out.
    pub live_latency: LatencySummary,
    /// The joins (session start, reconnections) that caught up with the live edge: frames
    /// received before catching up and how long that took.
    pub joins: Vec<Join>,
    /// Errors seen, by kind (e.g. `connect`, `http_404`, `http_5xx`, `idle`, `closed`).
    pub errors: BTreeMap<String, u64>,
    /// Requests of an LL-HLS session; `null` for other protocols.
    pub llhls: Option<LlHlsRequests>,
    /// Every latency sample in microseconds, for exact aggregation over many sessions.
    #[serde(skip)]
    pub latency_histogram: Histogram<u32>,
    /// Every live latency sample in microseconds.
    #[serde(skip)]
    pub live_latency_histogram: Histogram<u32>,
}

/// A live view of a session, reported about once per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// Wall time since the session started.
    pub elapsed_secs: f64,
    /// Starting, playing or stalled.
    pub state: PlayState,
    /// Media buffered ahead of the playhead.
    pub buffer_ms: u64,
    /// Bitrate received since the previous report.
    pub bitrate_kbps: f64,
    /// The most recent latency sample.
    pub latency_ms: Option<f64>,
    /// The most recent latency sample once caught up with the live edge; `null` while joining.
    pub live_latency_ms: Option<f64>,
    /// Stalls so far.
    pub stalls: u64,
    /// Reconnects so far.
    pub reconnects: u64,
}
