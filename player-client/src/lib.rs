//! HLS, LL-HLS, HTTP-FLV and RTMP player that measures startup, stalls and end-to-end latency.
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
mod llhls;
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
pub use summary::{LlHlsRequests, PerTrack, Progress, Protocol, Summary};

use session::Session;

/// The protocol a URL is played with: `rtmp://…`, or `http(s)://…` ending in `.m3u8` or `.flv`
/// (before any query string). A playlist named `ll.m3u8` is LL-HLS; any other HLS URL is
/// played as LL-HLS too when its media playlist turns out to have `EXT-X-PART-INF`.
pub fn protocol_of(url: &str) -> Option<Protocol> {
    if url.starts_with("rtmp://") {
        return Some(Protocol::Rtmp);
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return None;
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    if path.ends_with(".m3u8") {
        let file = path.rsplit('/').next().unwrap_or(path);
        Some(if file == "ll.m3u8" {
            Protocol::LlHls
        } else {
            Protocol::Hls
        })
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
        Some(Protocol::Hls | Protocol::LlHls) => hls::play(url, &mut session).await,
    };
    match result {
        Ok(()) => Ok(session.finish()),
        Err(kind) => Err(session.fail(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_by_url() {
        let cases = [
            ("rtmp://h/live/cam", Some(Protocol::Rtmp)),
            ("http://h/live/cam.flv?token=1", Some(Protocol::HttpFlv)),
            ("https://h/live/cam.m3u8", Some(Protocol::Hls)),
            ("http://h/live/cam/ll-master.m3u8", Some(Protocol::Hls)),
            (
                "http://h/live/cam/ll.m3u8?_HLS_msn=3",
                Some(Protocol::LlHls),
            ),
            ("http://h/live/small.m3u8", Some(Protocol::Hls)),
            ("http://h/live/cam.mp4", None),
            ("ftp://h/live/cam.m3u8", None),
        ];
        for (url, protocol) in cases {
            assert_eq!(protocol_of(url), protocol, "{url}");
        }
    }
}
