//! Server configuration, from the command line (clap) or a file (serde).

use std::net::SocketAddr;

use clap::Parser;
use serde::Deserialize;

/// Business server settings. Every field has a default; durations are milliseconds.
#[derive(Debug, Clone, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address for HTTP and WebSocket (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Redis URL (e.g. redis://127.0.0.1:6379); without it the in-memory store is used.
    #[arg(long)]
    pub redis: Option<String>,
    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    #[arg(long, default_value = "lp:")]
    pub redis_prefix: String,
    /// Key required in the `x-admin-key` header of admin endpoints.
    #[arg(long, env = "LIVEPULSE_ADMIN_KEY", default_value = "livepulse-admin")]
    pub admin_key: String,
    /// Secret for HMAC-signed tokens; instances sharing rooms must share it.
    #[arg(
        long,
        env = "LIVEPULSE_TOKEN_SECRET",
        default_value = "livepulse-dev-secret"
    )]
    pub token_secret: String,
    /// Tick on which outgoing room traffic is merged into one batch.
    #[arg(long, default_value_t = 50)]
    pub batch_ms: u64,
    /// Period of online-count and leaderboard updates.
    #[arg(long, default_value_t = 1000)]
    pub stats_interval_ms: u64,
    /// Batches a member may have queued before it starts missing batches.
    #[arg(long, default_value_t = 64)]
    pub send_queue: usize,
    /// Consecutive missed batches after which a member is disconnected.
    #[arg(long, default_value_t = 40)]
    pub max_lag_batches: u32,
    /// Largest accepted text message; larger ones get `message_too_large`.
    #[arg(long, default_value_t = 4096)]
    pub max_message_bytes: usize,
    /// Largest WebSocket frame read at all; larger ones close the connection (1009).
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub max_frame_bytes: usize,
    /// Deepest JSON nesting accepted in a client message.
    #[arg(long, default_value_t = 8)]
    pub max_json_depth: usize,
    /// Longest chat text, in characters.
    #[arg(long, default_value_t = 200)]
    pub max_chat_chars: usize,
    /// Chat messages per second per user (sustained).
    #[arg(long, default_value_t = 5.0)]
    pub chat_per_sec: f64,
    /// Chat burst per user.
    #[arg(long, default_value_t = 10)]
    pub chat_burst: u32,
    /// Messages of any type per second per connection (sustained).
    #[arg(long, default_value_t = 50.0)]
    pub messages_per_sec: f64,
    /// Message burst per connection.
    #[arg(long, default_value_t = 100)]
    pub messages_burst: u32,
    /// Concurrent WebSocket connections per client IP.
    #[arg(long, default_value_t = 256)]
    pub max_conns_per_ip: u32,
    /// Whether rooms without their own policy admit anonymous read-only viewers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_anonymous: bool,
    /// Whether joins and leaves of named users are broadcast to the room.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub presence_events: bool,
    /// WebSocket read buffer per connection (smaller saves memory on idle members).
    #[arg(long, default_value_t = 4096)]
    pub read_buffer_bytes: usize,
}

#[derive(Parser)]
struct Defaults {
    #[command(flatten)]
    config: Config,
}

impl Default for Config {
    /// The command-line defaults (including the `LIVEPULSE_*` environment variables).
    fn default() -> Self {
        Defaults::parse_from(["business-server"]).config
    }
}

impl Config {
    /// Checks values that would make the server misbehave.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.batch_ms > 0, "batch_ms must be positive");
        anyhow::ensure!(
            self.stats_interval_ms > 0,
            "stats_interval_ms must be positive"
        );
        anyhow::ensure!(self.send_queue > 0, "send_queue must be positive");
        anyhow::ensure!(self.max_json_depth > 0, "max_json_depth must be positive");
        anyhow::ensure!(
            self.chat_per_sec > 0.0 && self.messages_per_sec > 0.0,
            "rates must be positive"
        );
        anyhow::ensure!(!self.admin_key.is_empty(), "admin_key must not be empty");
        anyhow::ensure!(
            !self.token_secret.is_empty(),
            "token_secret must not be empty"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:8090".parse().unwrap());
        assert_eq!(c.batch_ms, 50);
        assert!(c.redis.is_none());
        assert!(c.allow_anonymous);
        c.validate().unwrap();
    }

    #[test]
    fn file_config_overrides_some_fields() {
        let c: Config = serde_json::from_str(r#"{"batch_ms": 20, "redis": "redis://x"}"#).unwrap();
        assert_eq!(c.batch_ms, 20);
        assert_eq!(c.redis.as_deref(), Some("redis://x"));
        assert_eq!(c.send_queue, 64);
        assert!(serde_json::from_str::<Config>(r#"{"nope": 1}"#).is_err());
    }
}
