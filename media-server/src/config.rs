//! Origin configuration: TOML file, overridable from the command line.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// What a second publisher on a live stream key gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// The newcomer is refused while the current publisher is alive.
    #[default]
    Refuse,
    /// The newcomer replaces the current publisher, which is disconnected.
    Takeover,
}

/// Everything the origin needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// RTMP listen address.
    pub rtmp: SocketAddr,
    /// HTTP listen address (HLS, HTTP-FLV, API, metrics).
    pub http: SocketAddr,
    /// Policy for a second publisher on a live key.
    pub on_conflict: OnConflict,
    /// Optional URL that receives a POST before each publish; a 2xx allows it.
    pub on_publish: Option<String>,
    /// Stream hub limits.
    pub hub: HubConfig,
    /// HLS output.
    pub hls: HlsConfig,
    /// RTMP protocol limits.
    pub rtmp_limits: RtmpLimits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rtmp: SocketAddr::from(([127, 0, 0, 1], 1935)),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            on_conflict: OnConflict::Refuse,
            on_publish: None,
            hub: HubConfig::default(),
            hls: HlsConfig::default(),
            rtmp_limits: RtmpLimits::default(),
        }
    }
}

impl Config {
    /// Reads a TOML config file; missing fields keep their defaults.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// A config with both listeners on ephemeral loopback ports, for tests and embedding.
    pub fn ephemeral() -> Self {
        Self {
            rtmp: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        }
    }
}

/// Stream hub limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Most frames kept in a stream's GOP cache.
    pub gop_max_frames: usize,
    /// Most payload bytes kept in a stream's GOP cache.
    pub gop_max_bytes: usize,
    /// Frames a viewer may have queued before it skips to the next keyframe.
    pub viewer_queue_frames: usize,
    /// Seconds without media after which a publisher is considered gone.
    pub publisher_timeout_secs: f64,
    /// Seconds a stream stays (viewers attached, playlist served) after its publisher left.
    pub linger_secs: f64,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            gop_max_frames: 1024,
            gop_max_bytes: 16 << 20,
            viewer_queue_frames: 512,
            publisher_timeout_secs: 5.0,
            linger_secs: 15.0,
        }
    }
}

impl HubConfig {
    /// [`Self::publisher_timeout_secs`] as a duration.
    pub fn publisher_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.publisher_timeout_secs)
    }

    /// [`Self::linger_secs`] as a duration.
    pub fn linger(&self) -> Duration {
        Duration::from_secs_f64(self.linger_secs)
    }
}

/// HLS output settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HlsConfig {
    /// Turns HLS output on or off.
    pub enabled: bool,
    /// Target segment length in seconds; segments are cut at the first keyframe past it.
    pub target_duration_secs: f64,
    /// Segments listed in the playlist.
    pub window: usize,
    /// Extra segments kept after leaving the playlist, for players that are behind.
    pub keep_extra: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            target_duration_secs: 2.0,
            window: 6,
            keep_extra: 3,
        }
    }
}

/// Bounds on what an RTMP peer may declare.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpLimits {
    /// Largest chunk size a peer may announce.
    pub max_chunk_size: u32,
    /// Largest RTMP message accepted.
    pub max_message_bytes: usize,
    /// Deepest AMF nesting accepted in commands and metadata.
    pub max_amf_depth: usize,
    /// Seconds allowed for the handshake.
    pub handshake_timeout_secs: f64,
}

impl Default for RtmpLimits {
    fn default() -> Self {
        Self {
            max_chunk_size: 1 << 20,
            max_message_bytes: 8 << 20,
            max_amf_depth: 16,
            handshake_timeout_secs: 10.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults() {
        let c = Config::from_toml(
            "on_conflict = \"takeover\"\n[hls]\nwindow = 3\n[hub]\nlinger_secs = 1.5\n",
        )
        .expect("valid config");
        assert_eq!(c.on_conflict, OnConflict::Takeover);
        assert_eq!(c.hls.window, 3);
        assert_eq!(c.hls.target_duration_secs, 2.0);
        assert_eq!(c.hub.linger(), Duration::from_millis(1500));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(Config::from_toml("nonsense = 1").is_err());
    }
}
