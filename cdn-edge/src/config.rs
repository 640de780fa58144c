//! Edge configuration, from the command line (clap) or a file (serde).

use std::net::SocketAddr;
use std::time::Duration;

use media_core::token::{AppPolicy, Policy, MIN_SECRET_LEN};
use serde::Deserialize;

/// Longest time a negative (404) answer may be cached.
pub const MAX_NEGATIVE_TTL: Duration = Duration::from_millis(500);

/// Edge settings. Every field has a default; durations are milliseconds.
#[derive(Debug, Clone, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to serve on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Origin base URLs (e.g. http://127.0.0.1:8080), tried in order with failover.
    #[arg(long = "origin", required = true)]
    pub origins: Vec<String>,
    /// Byte budget of the in-memory cache.
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    pub cache_bytes: usize,
    /// How long a media playlist stays fresh; without it the origin's max-age is used,
    /// else half the playlist's target duration.
    #[arg(long)]
    pub playlist_fresh_ms: Option<u64>,
    /// How long a 404 is cached (capped at 500 ms).
    #[arg(long, default_value_t = 500)]
    pub negative_ttl_ms: u64,
    /// Query parameters that are part of the cache key and forwarded to the origin;
    /// all others are dropped.
    #[arg(long = "key-param")]
    pub key_params: Vec<String>,
    /// Longest wait for the origin's answer to a held LL-HLS request (a blocking playlist,
    /// `_HLS_msn`, or a part); must exceed the origin's hold of three target durations.
    #[arg(long, default_value_t = 20_000)]
    pub held_timeout_ms: u64,
    /// Most LL-HLS requests (blocking playlists and parts) held at the origin at once
    /// (distinct URLs; viewers asking for the same one share a request); beyond it the edge
    /// answers 503.
    #[arg(long, default_value_t = 4096)]
    pub max_held_fetches: usize,
    /// How long an HTTP-FLV upstream stays open after its last viewer leaves.
    #[arg(long, default_value_t = 2000)]
    pub flv_linger_ms: u64,
    /// Period of origin health checks.
    #[arg(long, default_value_t = 2000)]
    pub health_interval_ms: u64,
    /// An app whose playlists and HTTP-FLV streams need a signed play token, with the
    /// secret it shares with the origin (`APP=SECRET`; repeatable).
    #[arg(long = "auth", value_parser = app_secret)]
    pub auth: Vec<(String, String)>,
    /// Connection caps and deadlines of the listener.
    #[command(flatten)]
    pub listener: net_guard::Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            origins: Vec::new(),
            cache_bytes: 256 * 1024 * 1024,
            playlist_fresh_ms: None,
            negative_ttl_ms: 500,
            key_params: Vec::new(),
            held_timeout_ms: 20_000,
            max_held_fetches: 4096,
            flv_linger_ms: 2000,
            health_interval_ms: 2000,
            listener: net_guard::Limits::default(),
            auth: Vec::new(),
        }
    }
}

/// Parses `APP=SECRET`.
fn app_secret(s: &str) -> Result<(String, String), String> {
    let (app, secret) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not APP=SECRET"))?;
    media_core::name::check(app).map_err(|e| format!("app {app:?}: {e}"))?;
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "the secret of app {app} must be at least {MIN_SECRET_LEN} bytes"
        ));
    }
    Ok((app.to_string(), secret.to_string()))
}

impl Config {
    /// The signed-URL policy: the `--auth` apps need play tokens.
    pub fn token_policy(&self) -> Policy {
        Policy::new(self.auth.iter().map(|(app, secret)| {
            let policy = AppPolicy {
                secret: secret.clone(),
                publish: false,
                play: true,
            };
            (app.clone(), policy)
        }))
    }

    /// A config on an ephemeral loopback port in front of the given origins.
    pub fn ephemeral(origins: Vec<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            origins,
            ..Self::default()
        }
    }

    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.origins.is_empty(), "origins: at least one is needed");
        anyhow::ensure!(self.cache_bytes > 0, "cache_bytes must be positive, got 0");
        anyhow::ensure!(
            self.health_interval_ms >= 100,
            "health_interval_ms must be at least 100, got {}",
            self.health_interval_ms
        );
        anyhow::ensure!(
            self.flv_linger_ms <= 3_600_000,
            "flv_linger_ms must be at most an hour, got {}",
            self.flv_linger_ms
        );
        anyhow::ensure!(
            (1_000..=120_000).contains(&self.held_timeout_ms),
            "held_timeout_ms must be between 1000 and 120000, got {}",
            self.held_timeout_ms
        );
        anyhow::ensure!(
            (1..=1_000_000).contains(&self.max_held_fetches),
            "max_held_fetches must be between 1 and 1000000, got {}",
            self.max_held_fetches
        );
        self.listener
            .validate()
            .map_err(|e| anyhow::anyhow!("listener.{e}"))
    }

    /// The longest wait for a held origin answer.
    pub fn held_timeout(&self) -> Duration {
        Duration::from_millis(self.held_timeout_ms)
    }

    /// The negative-answer TTL, capped at [`MAX_NEGATIVE_TTL`].
    pub fn negative_ttl(&self) -> Duration {
        Duration::from_millis(self.negative_ttl_ms).min(MAX_NEGATIVE_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn command_line_defaults_and_repeated_origins() {
        let cli = Cli::parse_from(["edge", "--origin", "http://a:1", "--origin", "http://b:2"]);
        assert_eq!(cli.config.listen, SocketAddr::from(([127, 0, 0, 1], 8081)));
        assert_eq!(cli.config.origins, ["http://a:1", "http://b:2"]);
        assert_eq!(cli.config.negative_ttl(), MAX_NEGATIVE_TTL);
    }

    #[test]
    fn held_requests_outlast_the_origin_hold_and_are_capped() {
        let c = Config::ephemeral(vec!["http://a:1".into()]);
        assert!(
            c.held_timeout() >= Duration::from_secs(18),
            "3 x a 6 s target"
        );
        c.validate().expect("defaults are valid");
        for bad in [
            Config {
                held_timeout_ms: 999,
                ..c.clone()
            },
            Config {
                max_held_fetches: 0,
                ..c.clone()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }

    #[test]
    fn negative_ttl_is_capped() {
        let c = Config {
            negative_ttl_ms: 5000,
            ..Config::default()
        };
        assert_eq!(c.negative_ttl(), MAX_NEGATIVE_TTL);
    }
}
