//! Why a session ended without finishing.

use thiserror::Error;

use crate::summary::Summary;

/// A session that could not play or could not go on, with what it measured until then.
#[derive(Debug, Error)]
#[error("{kind}")]
pub struct PlayError {
    /// What went wrong.
    pub kind: PlayErrorKind,
    /// Measurements up to the failure.
    pub summary: Box<Summary>,
}

/// The reasons a session fails.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlayErrorKind {
    /// The URL names no protocol the player speaks.
    #[error("unsupported URL {0}: expected rtmp://host/app/stream, http(s)://…/x.m3u8 or http(s)://…/x.flv")]
    UnsupportedUrl(String),
    /// The URL answered, but not with an HLS playlist.
    #[error("{url} is not an HLS playlist: {reason}")]
    NotHls {
        /// The playlist URL.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// The URL answered, but not with an FLV stream.
    #[error("{url} is not an FLV stream: {reason}")]
    NotFlv {
        /// The stream URL.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// An HLS playlist with a value no stream has: a duration that is not a number, not above
    /// zero or over an hour, or media sequence numbers past `u64::MAX`.
    #[error("playlist {url} is invalid: {reason}")]
    BadPlaylist {
        /// The playlist URL.
        url: String,
        /// The value and what is wrong with it.
        reason: String,
    },
    /// An HLS segment larger than its duration can hold.
    #[error("segment {url} is invalid: {reason}")]
    BadSegment {
        /// The segment URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A live playlist stopped listing new segments without ending.
    #[error("playlist {url} listed no new segment for {secs:.1} s and has no EXT-X-ENDLIST")]
    StalePlaylist {
        /// The media playlist URL.
        url: String,
        /// How long it went without a new segment.
        secs: f64,
    },
    /// The server answered with a client error that retrying cannot fix.
    #[error("{url} answered HTTP {status}")]
    HttpStatus {
        /// The requested URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Too many consecutive client errors (4xx) from an HLS origin.
    #[error("gave up on {url}: {count} consecutive HTTP 4xx answers, the last {status}")]
    ClientErrorStorm {
        /// The last URL that failed.
        url: String,
        /// Consecutive 4xx answers.
        count: u32,
        /// The last status code.
        status: u16,
    },
    /// The RTMP server refused the connection or the stream.
    #[error("{url}: RTMP server refused: {reason}")]
    Refused {
        /// The RTMP URL.
        url: String,
        /// The server's reason.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// Reconnecting did not succeed within `give_up_after`.
    #[error("gave up on {url} after {secs:.1} s of failed reconnects; last error: {last}")]
    GaveUp {
        /// The URL played.
        url: String,
        /// How long the outage lasted.
        secs: f64,
        /// The last failure.
        last: String,
    },
}

impl PlayErrorKind {
    /// A short stable name for reports, e.g. `gave_up` or `http_status`.
    pub fn code(&self) -> &'static str {
        match self {
            PlayErrorKind::UnsupportedUrl(_) => "unsupported_url",
            PlayErrorKind::NotHls { .. } => "not_hls",
            PlayErrorKind::NotFlv { .. } => "not_flv",
            PlayErrorKind::BadPlaylist { .. } => "bad_playlist",
            PlayErrorKind::BadSegment { .. } => "bad_segment",
            PlayErrorKind::StalePlaylist { .. } => "stale_playlist",
            PlayErrorKind::HttpStatus { .. } => "http_status",
            PlayErrorKind::ClientErrorStorm { .. } => "client_error_storm",
            PlayErrorKind::Refused { .. } => "refused",
            PlayErrorKind::Client(_) => "client",
            PlayErrorKind::GaveUp { .. } => "gave_up",
        }
    }
}

/// How one connection attempt or connection ended, as seen by the retry loop.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth retrying: the error kind counted in the summary, and a description.
    Retry(&'static str, String),
    /// Ends the session.
    Fatal(PlayErrorKind),
}

impl Failure {
    /// A retryable failure.
    pub(crate) fn retry(kind: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Retry(kind, message.to_string())
    }
}
