//! HLS, HTTP-FLV and RTMP player that measures startup, stalls and end-to-end latency.
//!
//! A library first: [`play`] runs one player as a future on the caller's runtime (no thread
//! per player, a few tens of KiB of state), so a load generator can run thousands of them.
//! The `cli` module wraps it as a command.

#![warn(missing_docs)]

pub mod cli;
mod deadline;
mod error;
mod flv;
mod hls;
mod http;
pub mod latency;
mod options;
pub mod qoe;
mod reconnect;
mod rtmp;
mod session;
mod stats;
mod summary;
mod tags;

use tokio_util::sync::CancellationToken;

pub use error::{PlayError, PlayErrorKind};
/// HLS playlist parsing and validation, public for the fuzz target and its corpus replay.
#[doc(hidden)]
pub use hls::playlist as hls_playlist;
pub use latency::{Join, LatencySummary};
pub use options::PlayOptions;
pub use qoe::PlayState;
pub use summary::{PerTrack, Progress, Protocol, Summary};

use session::Session;

/// The protocol a URL is played with: `rtmp://…`, or `http(s)://…` ending in `.m3u8` or `.flv`
/// (before any query string).
pub fn protocol_of(url: &str) -> Option<Protocol> {
    if url.starts_with("rtmp://") {
        return Some(Protocol::Rtmp);
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return None;
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    if path.ends_with(".m3u8") {
        Some(Protocol::Hls)
    } else if path.ends_with(".flv") {
        Some(Protocol::HttpFlv)
    } else {
        None
    }
}

/// Plays `url` until `stop` fires, `options.duration` passes, or the stream fails for longer
/// than `options.give_up_after`. `progress` is called about once per second.
pub async fn play(
    url: &str,
    options: &PlayOptions,
    stop: &CancellationToken,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Summary, PlayError> {
    let protocol = protocol_of(url);
    let mut session = Session::new(url, protocol, options, stop, progress);
    let result = match protocol {
        None => Err(PlayErrorKind::UnsupportedUrl(url.to_string())),
        Some(Protocol::HttpFlv) => flv::play(url, &mut session).await,
        Some(Protocol::Rtmp) => rtmp::play(url, &mut session).await,
        Some(Protocol::Hls) => hls::play(url, &mut session).await,
    };
    match result {
        Ok(()) => Ok(session.finish()),
        Err(kind) => Err(session.fail(kind)),
    }
}
