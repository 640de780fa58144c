//! What a player is asked to do.

use std::time::Duration;

use crate::qoe::QoeConfig;

/// Options of one playback session.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// Stop after this much wall time; `None` (or a duration past the clock's range) plays
    /// until stopped or the stream ends.
    pub duration: Option<Duration>,
    /// Media buffered before playback starts (default 500 ms, a low-latency player's cushion;
    /// an origin's GOP cache usually delivers it at once). Zero starts on the first decodable
    /// media: the first keyframe for HTTP-FLV and RTMP, the first downloaded segment for HLS.
    pub startup_buffer: Duration,
    /// Media buffered ahead of the playhead to leave a stall.
    pub rebuffer: Duration,
    /// How long to keep reconnecting after the source disappears before giving up.
    pub give_up_after: Duration,
    /// Connection setup (TCP, handshake, HTTP response headers) timeout.
    pub connect_timeout: Duration,
    /// A connection that delivers no bytes for this long is dropped and reconnected.
    pub idle_timeout: Duration,
    /// HLS: how many segments from the end of the first playlist to start at.
    pub live_edge_segments: usize,
    /// HTTP client to share between players; `None` builds one per session.
    pub http_client: Option<reqwest::Client>,
    /// Read the publisher's SEI wall-clock stamps for end-to-end latency. Off, a player still
    /// counts bytes, frames, startup and stalls, at a fraction of the cost (load runs sample
    /// latency on some viewers only).
    pub latency: bool,
}

impl Default for PlayOptions {
    fn default() -> Self {
        Self {
            duration: None,
            startup_buffer: Duration::from_millis(500),
            rebuffer: Duration::from_millis(500),
            give_up_after: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            live_edge_segments: 3,
            http_client: None,
            latency: true,
        }
    }
}

impl PlayOptions {
    /// The buffer thresholds of the QoE model.
    pub fn qoe(&self) -> QoeConfig {
        QoeConfig {
            startup_buffer: self.startup_buffer,
            rebuffer: self.rebuffer,
        }
    }

    /// The shared HTTP client, or a new one with the connect timeout applied.
    pub(crate) fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        match &self.http_client {
            Some(c) => Ok(c.clone()),
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .build(),
        }
    }
}
