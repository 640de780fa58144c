//! Origin configuration: TOML file, overridable from the command line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use net_guard::{positive, seconds, MAX_SECS};
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
    /// Apps whose publishers and viewers need signed URLs (`?token=`), by app name.
    pub auth: BTreeMap<String, crate::auth::AppAuth>,
    /// Stream hub limits.
    pub hub: HubConfig,
    /// HLS output.
    pub hls: HlsConfig,
    /// Low-latency HLS output (fMP4 parts, blocking playlist reload).
    pub llhls: LlHlsSettings,
    /// RTMP protocol limits.
    pub rtmp_limits: RtmpLimits,
    /// Connection caps and deadlines of the RTMP listener (its header deadline is unused:
    /// the handshake has its own).
    pub rtmp_listener: net_guard::Limits,
    /// Connection caps and deadlines of the HTTP listener.
    pub http_listener: net_guard::Limits,
    /// Adaptive bitrate ladders (used by builds with the `transcode` feature).
    pub transcode: TranscodeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rtmp: SocketAddr::from(([127, 0, 0, 1], 1935)),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            on_conflict: OnConflict::Refuse,
            on_publish: None,
            auth: BTreeMap::new(),
            hub: HubConfig::default(),
            hls: HlsConfig::default(),
            llhls: LlHlsSettings::default(),
            rtmp_limits: RtmpLimits::default(),
            rtmp_listener: net_guard::Limits::default(),
            http_listener: net_guard::Limits::default(),
            transcode: TranscodeConfig::default(),
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

    /// Checks every section; the error names the first bad field.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (app, policy) in &self.auth {
            media_core::name::check(app).map_err(|e| anyhow::anyhow!("auth.{app}: {e}"))?;
            anyhow::ensure!(
                policy.secret.len() >= media_core::token::MIN_SECRET_LEN,
                "auth.{app}.secret must be at least {} bytes",
                media_core::token::MIN_SECRET_LEN
            );
        }
        self.hub.validate()?;
        self.hls.validate()?;
        self.llhls.validate()?;
        self.rtmp_limits.validate()?;
        for (section, limits) in [
            ("rtmp_listener", &self.rtmp_listener),
            ("http_listener", &self.http_listener),
        ] {
            limits
                .validate()
                .map_err(|e| anyhow::anyhow!("{section}.{e}"))?;
        }
        self.transcode.validate()
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
    /// Seconds a frame may wait for a viewer before the viewer skips to the next keyframe.
    pub viewer_max_delay_secs: f64,
    /// On streams with video, audio frames go to viewers with the next video frame (at most
    /// one video frame interval later) rather than each on its own write.
    pub audio_rides_video: bool,
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
            viewer_max_delay_secs: 3.0,
            audio_rides_video: true,
            publisher_timeout_secs: 5.0,
            linger_secs: 15.0,
        }
    }
}

impl HubConfig {
    fn validate(&self) -> anyhow::Result<()> {
        positive("hub.gop_max_frames", self.gop_max_frames)?;
        positive("hub.gop_max_bytes", self.gop_max_bytes)?;
        positive("hub.viewer_queue_frames", self.viewer_queue_frames)?;
        seconds("hub.viewer_max_delay_secs", self.viewer_max_delay_secs)?;
        seconds("hub.publisher_timeout_secs", self.publisher_timeout_secs)?;
        anyhow::ensure!(
            self.linger_secs.is_finite() && (0.0..=MAX_SECS).contains(&self.linger_secs),
            "hub.linger_secs must be between 0 and {MAX_SECS} seconds, got {}",
            self.linger_secs
        );
        Ok(())
    }

    /// [`Self::publisher_timeout_secs`] as a duration.
    pub fn publisher_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.publisher_timeout_secs)
    }

    /// [`Self::viewer_max_delay_secs`] as a duration.
    pub fn viewer_max_delay(&self) -> Duration {
        Duration::from_secs_f64(self.viewer_max_delay_secs)
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
    /// Longest segment in seconds (default: twice the target). A stream whose keyframes are
    /// further apart is cut without one, counted in `hls_forced_cuts` and reported in the
    /// stream's `warnings`.
    pub max_segment_secs: Option<f64>,
    /// Largest segment in bytes.
    pub max_segment_bytes: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            target_duration_secs: 2.0,
            window: 6,
            keep_extra: 3,
            max_segment_secs: None,
            max_segment_bytes: 32 << 20,
        }
    }
}

impl HlsConfig {
    /// The target segment length.
    pub fn target_duration(&self) -> Duration {
        Duration::from_secs_f64(self.target_duration_secs)
    }

    /// The longest segment.
    pub fn max_segment_duration(&self) -> Duration {
        self.max_segment_secs
            .map_or(self.target_duration() * 2, Duration::from_secs_f64)
    }

    fn validate(&self) -> anyhow::Result<()> {
        seconds("hls.target_duration_secs", self.target_duration_secs)?;
        if let Some(max) = self.max_segment_secs {
            seconds("hls.max_segment_secs", max)?;
            anyhow::ensure!(
                max >= self.target_duration_secs,
                "hls.max_segment_secs ({max}) must be at least hls.target_duration_secs ({})",
                self.target_duration_secs
            );
        }
        positive("hls.window", self.window)?;
        positive("hls.max_segment_bytes", self.max_segment_bytes)?;
        Ok(())
    }
}

/// Low-latency HLS output settings, fixed for each stream's life.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlHlsSettings {
    /// Turns LL-HLS output on or off.
    pub enabled: bool,
    /// `PART-TARGET` in milliseconds, 200 to 500: no part is longer.
    pub part_target_ms: u64,
    /// `EXT-X-TARGETDURATION` in seconds: no segment is longer.
    pub target_duration_secs: u64,
    /// A keyframe at least this many seconds into a segment starts the next one; at most
    /// `target_duration_secs`.
    pub segment_secs: f64,
    /// Complete segments listed and kept; they must span three target durations.
    pub window: usize,
    /// Most blocking requests one client address may have held at once; more get `429`. An
    /// edge holds one per stream and wanted part from its own address, so this (and the HTTP
    /// listener's `max_connections_per_ip`) must cover its `--max-held-fetches`.
    pub max_held_per_ip: usize,
}

impl Default for LlHlsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            part_target_ms: 334,
            target_duration_secs: 2,
            segment_secs: 1.0,
            window: 7,
            max_held_per_ip: 1_000,
        }
    }
}

impl LlHlsSettings {
    /// The packager configuration, part and segment URIs relative to `ll.m3u8`; the error
    /// names the first field out of range.
    pub fn packager_config(&self) -> anyhow::Result<media_core::hls::ll::LlHlsConfig> {
        use media_core::hls::ll::{LlHlsConfig, LlHlsError, UriTemplate};
        let segment_ok = self.segment_secs.is_finite()
            && self.segment_secs > 0.0
            && self.segment_secs <= MAX_SECS;
        anyhow::ensure!(
            segment_ok,
            "llhls.segment_secs must be above 0 and at most llhls.target_duration_secs, got {}",
            self.segment_secs
        );
        let config = LlHlsConfig {
            part_target: Duration::from_millis(self.part_target_ms),
            target_duration: self.target_duration_secs,
            segment_duration: Duration::from_millis((self.segment_secs * 1000.0).round() as u64),
            window: self.window,
            uris: UriTemplate::new("ll-{msn}.{part}.m4s", "ll-{msn}.m4s", "ll-init{init}.mp4")?,
        };
        config.validate().map_err(|e| {
            let (field, rule) = match e {
                LlHlsError::Config("part_target") => ("part_target_ms", "between 200 and 500"),
                LlHlsError::Config("target_duration") => {
                    ("target_duration_secs", "between 1 and 30")
                }
                LlHlsError::Config("segment_duration") => (
                    "segment_secs",
                    "above 0, in whole milliseconds and at most llhls.target_duration_secs",
                ),
                _ => (
                    "window",
                    "between 3 and 1024 and span three target durations",
                ),
            };
            anyhow::anyhow!("llhls.{field} must be {rule}")
        })?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.packager_config()?;
        positive("llhls.max_held_per_ip", self.max_held_per_ip)?;
        Ok(())
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
    /// Most chunk streams one connection may use.
    pub max_chunk_streams: usize,
    /// Deepest AMF nesting accepted in commands and metadata.
    pub max_amf_depth: usize,
    /// Seconds allowed for the handshake.
    pub handshake_timeout_secs: f64,
}

impl RtmpLimits {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_chunk_size >= 128,
            "rtmp_limits.max_chunk_size must be at least 128, got {}",
            self.max_chunk_size
        );
        positive("rtmp_limits.max_message_bytes", self.max_message_bytes)?;
        positive("rtmp_limits.max_chunk_streams", self.max_chunk_streams)?;
        positive("rtmp_limits.max_amf_depth", self.max_amf_depth)?;
        seconds(
            "rtmp_limits.handshake_timeout_secs",
            self.handshake_timeout_secs,
        )?;
        Ok(())
    }

    /// The limits the RTMP chunk layer enforces while decoding.
    pub fn chunk_limits(&self) -> media_core::rtmp::Limits {
        media_core::rtmp::Limits {
            max_chunk_size: self.max_chunk_size,
            max_message_len: u32::try_from(self.max_message_bytes).unwrap_or(u32::MAX),
            max_chunk_streams: self.max_chunk_streams,
            max_amf_depth: self.max_amf_depth,
        }
    }
}

impl Default for RtmpLimits {
    fn default() -> Self {
        Self {
            max_chunk_size: 1 << 20,
            max_message_bytes: 8 << 20,
            max_chunk_streams: 64,
            max_amf_depth: 16,
            handshake_timeout_secs: 10.0,
        }
    }
}

/// Adaptive bitrate transcoding: per-app ladders and the libx264 settings they share.
/// Off unless at least one app has a ladder.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscodeConfig {
    /// libx264 preset, e.g. `veryfast`.
    pub preset: String,
    /// H.264 profile, e.g. `high`.
    pub profile: String,
    /// libx264 tune; empty for none.
    pub tune: String,
    /// libx264 threads per rendition (0: libx264 decides).
    pub threads: u32,
    /// Seconds a stream's transcoder may fall behind real time before it drops its
    /// lowest-priority rendition.
    pub max_lag_secs: f64,
    /// Renditions per app, highest priority first; each becomes stream `{app}/{stream}_{name}`.
    pub ladders: BTreeMap<String, Vec<RenditionConfig>>,
}

impl Default for TranscodeConfig {
    fn default() -> Self {
        Self {
            preset: "veryfast".into(),
            profile: "high".into(),
            tune: "zerolatency".into(),
            threads: 1,
            max_lag_secs: 3.0,
            ladders: BTreeMap::new(),
        }
    }
}

impl TranscodeConfig {
    /// True when some app has a ladder.
    pub fn enabled(&self) -> bool {
        self.ladders.values().any(|l| !l.is_empty())
    }

    /// The ladder of `app`, empty if it has none.
    pub fn ladder(&self, app: &str) -> &[RenditionConfig] {
        self.ladders.get(app).map_or(&[], Vec::as_slice)
    }

    /// Checks rendition names and sizes.
    fn validate(&self) -> anyhow::Result<()> {
        seconds("transcode.max_lag_secs", self.max_lag_secs)?;
        for (app, ladder) in &self.ladders {
            let mut names = std::collections::HashSet::new();
            for r in ladder {
                let ok_name = !r.name.is_empty()
                    && r.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-');
                if !ok_name {
                    anyhow::bail!("transcode.ladders.{app}: bad rendition name {:?} (letters, digits and '-' only)", r.name);
                }
                if !names.insert(r.name.as_str()) {
                    anyhow::bail!("transcode.ladders.{app}: rendition {} listed twice", r.name);
                }
                let even = |v: u32| v >= 2 && v.is_multiple_of(2);
                if !even(r.height) || r.width.is_some_and(|w| !even(w)) || r.video_kbps == 0 {
                    anyhow::bail!(
                        "transcode.ladders.{app}.{}: width and height must be even and positive, video_kbps positive",
                        r.name
                    );
                }
            }
        }
        Ok(())
    }
}

/// One rung of a ladder.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RenditionConfig {
    /// Suffix of the rendition's stream name, e.g. `720p`.
    pub name: String,
    /// Output height in pixels (even).
    pub height: u32,
    /// Output width in pixels (even); by default the source's aspect ratio at `height`.
    #[serde(default)]
    pub width: Option<u32>,
    /// Video bitrate in kbit/s.
    pub video_kbps: u32,
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

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        for (toml, field) in [
            ("[hub]\nlinger_secs = -1.0\n", "hub.linger_secs"),
            (
                "[hub]\npublisher_timeout_secs = nan\n",
                "hub.publisher_timeout_secs",
            ),
            (
                "[hub]\nviewer_queue_frames = 0\n",
                "hub.viewer_queue_frames",
            ),
            (
                "[hls]\ntarget_duration_secs = 0.0\n",
                "hls.target_duration_secs",
            ),
            ("[hls]\nmax_segment_secs = 1.0\n", "hls.max_segment_secs"),
            ("[hls]\nwindow = 0\n", "hls.window"),
            (
                "[rtmp_limits]\nhandshake_timeout_secs = inf\n",
                "rtmp_limits.handshake_timeout_secs",
            ),
            ("[llhls]\npart_target_ms = 199\n", "llhls.part_target_ms"),
            ("[llhls]\npart_target_ms = 501\n", "llhls.part_target_ms"),
            (
                "[llhls]\ntarget_duration_secs = 0\n",
                "llhls.target_duration_secs",
            ),
            ("[llhls]\nsegment_secs = nan\n", "llhls.segment_secs"),
            ("[llhls]\nsegment_secs = 3.0\n", "llhls.segment_secs"),
            ("[llhls]\nwindow = 2\n", "llhls.window"),
            ("[llhls]\nmax_held_per_ip = 0\n", "llhls.max_held_per_ip"),
            (
                "[transcode]\nmax_lag_secs = -3.0\n",
                "transcode.max_lag_secs",
            ),
        ] {
            let c = Config::from_toml(toml).expect("parses");
            let err = c.validate().expect_err(toml).to_string();
            assert!(err.starts_with(field), "{toml}: {err}");
        }
        Config::default().validate().expect("defaults are valid");
    }

    #[test]
    fn transcode_ladders_parse_and_validate() {
        let c = Config::from_toml(
            "[transcode]\npreset = \"superfast\"\n\
             [[transcode.ladders.live]]\nname = \"720p\"\nheight = 720\nvideo_kbps = 2500\n\
             [[transcode.ladders.live]]\nname = \"360p\"\nheight = 360\nwidth = 640\nvideo_kbps = 600\n",
        )
        .expect("valid config");
        assert!(c.transcode.enabled());
        assert_eq!(c.transcode.preset, "superfast");
        assert_eq!(c.transcode.ladder("live").len(), 2);
        assert_eq!(c.transcode.ladder("live")[1].width, Some(640));
        assert!(c.transcode.ladder("other").is_empty());
        c.transcode.validate().expect("valid ladder");
        assert!(!Config::default().transcode.enabled());

        let mut bad = c.transcode.clone();
        bad.ladders
            .get_mut("live")
            .expect("live")
            .push(RenditionConfig {
                name: "360p".into(),
                height: 360,
                width: None,
                video_kbps: 600,
            });
        assert!(bad.validate().is_err(), "duplicate name");
        let mut bad = c.transcode;
        bad.ladders.get_mut("live").expect("live")[0].height = 721;
        assert!(bad.validate().is_err(), "odd height");
    }
}
