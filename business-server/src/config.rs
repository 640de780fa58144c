//! Server configuration, from the command line (clap) or a file (serde).

use std::borrow::Cow;
use std::net::SocketAddr;

use clap::Parser;
use serde::{Deserialize, Serialize};

/// Business server settings. Every field has a default; durations are milliseconds.
///
/// [`Config::validate`] (run by `Server::bind`) refuses values that make no sense: zero
/// counts, sizes and durations, durations above a day (30 days for the idempotency TTL),
/// an idle timeout not above the ping interval, non-finite or non-positive rates.
///
/// Secrets: an empty `admin_key` or `token_secret` is replaced at start by a random value
/// (see [`Config::generate_missing_secrets`]); the public demo values
/// ([`DEMO_ADMIN_KEY`], [`DEMO_TOKEN_SECRET`]) are refused unless `demo` is set, which only
/// [`Config::demo`] (`livepulse demo`) does.
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
    /// Key required in the `x-admin-key` header of admin endpoints; when empty or not
    /// given, a random one is generated and printed at start.
    #[arg(
        long,
        env = "LIVEPULSE_ADMIN_KEY",
        default_value = "",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub admin_key: String,
    /// Secret for HMAC-signed tokens; when empty or not given, a random one is generated
    /// and printed at start. Instances sharing rooms must share it, so pass it explicitly.
    #[arg(
        long,
        env = "LIVEPULSE_TOKEN_SECRET",
        default_value = "",
        hide_default_value = true,
        hide_env_values = true
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
    /// Most events a room holds for its next batch, so the most in one batch. When full,
    /// chat and presence events are dropped first, oldest first; notices, gifts, likes,
    /// online counts and leaderboards only when no chat is left.
    #[arg(long, default_value_t = 4096)]
    pub room_pending_events: usize,
    /// Most bytes of events a room holds for its next batch (at least 16 KiB and twice
    /// `max_message_bytes`, so any event fits); a member's queue thus holds at most
    /// `send_queue` times this.
    #[arg(long, default_value_t = 1 << 20)]
    pub room_pending_bytes: usize,
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
    /// Period of the WebSocket pings the server sends every member.
    #[arg(long, default_value_t = 15_000)]
    pub ping_interval_ms: u64,
    /// A member that sends nothing (no pong, no message) for this long is closed with
    /// code 4408; must exceed `ping_interval_ms`.
    #[arg(long, default_value_t = 45_000)]
    pub idle_timeout_ms: u64,
    /// How long a flash-sale purchase answer is replayed for retries with the same
    /// idempotency key, counted from the key's first attempt (24 h, as payment APIs do).
    /// Within it a key never buys twice; after it, the key is a new attempt.
    #[arg(long, default_value_t = 86_400_000)]
    pub idempotency_ttl_ms: u64,
    /// Most answers one sale remembers in the memory store; when full, expired answers are
    /// forgotten first, then `sold_out`/`limit_reached` ones, and new keys are refused
    /// (`store_unavailable`) while only sales remain. Keep it above the largest stock.
    #[arg(long, default_value_t = 1_000_000)]
    pub idempotency_max_keys: usize,
    /// Connection caps and deadlines of the HTTP listener (every connection, WebSocket
    /// members included; `max_conns_per_ip` further caps WebSockets).
    #[command(flatten)]
    pub listener: net_guard::Limits,
    /// Serves `POST /api/v1/demo/token`, which gives anyone a viewer token for the web
    /// page's room without the admin key. For demos only; `livepulse demo` turns it on.
    #[arg(long)]
    pub demo_tokens: bool,
    /// Where the web page at `/` finds its room, video and metrics.
    #[command(flatten)]
    pub web: WebPage,
    /// Accepts the public demo secrets; never read from flags or files.
    #[arg(skip)]
    #[serde(skip)]
    pub demo: bool,
}

/// What the web page at `/` shows, served to it by `GET /api/v1/web-config`. In the URLs,
/// `{host}` stands for the host name the browser used to open the page, so the defaults
/// (the ports of `livepulse demo`) work from any machine that reaches this one.
#[derive(Debug, Clone, Deserialize, Serialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct WebPage {
    /// Business room the page joins.
    #[arg(long = "web-room", default_value = "demo")]
    pub room: String,
    /// Stream key (`app/stream`) the host page looks up in the origin's `/api/v1/streams`.
    #[arg(long = "web-stream", default_value = "live/demo")]
    pub stream: String,
    /// HLS playlist the viewer page plays (normally through an edge).
    #[arg(long = "web-hls", default_value = "http://{host}:8081/live/demo.m3u8")]
    pub hls: String,
    /// LL-HLS playlist the viewer page plays when LL-HLS is chosen (normally through an edge).
    #[arg(
        long = "web-llhls",
        default_value = "http://{host}:8081/live/demo/ll.m3u8"
    )]
    pub llhls: String,
    /// HTTP-FLV URL the viewer page plays (normally through an edge).
    #[arg(long = "web-flv", default_value = "http://{host}:8081/live/demo.flv")]
    pub flv: String,
    /// Origin base URL: the host page reads `/api/v1/streams` and `/metrics` there.
    #[arg(long = "web-origin", default_value = "http://{host}:8080")]
    pub origin: String,
    /// Edge base URL: the host page reads `/metrics` there.
    #[arg(long = "web-edge", default_value = "http://{host}:8081")]
    pub edge: String,
}

impl Default for WebPage {
    fn default() -> Self {
        Config::default().web
    }
}

/// Longest URL the web page settings accept.
pub const MAX_WEB_URL: usize = 2048;

#[derive(Parser)]
struct Defaults {
    #[command(flatten)]
    config: Config,
}

/// Admin key of `livepulse demo`, printed by it and refused everywhere else.
pub const DEMO_ADMIN_KEY: &str = "livepulse-admin";
/// Token secret of `livepulse demo`, printed by it and refused everywhere else.
pub const DEMO_TOKEN_SECRET: &str = "livepulse-dev-secret";

/// A secret generated at start because none was configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedSecret {
    /// What it is, e.g. `admin key`.
    pub what: &'static str,
    /// The command-line flag that chooses it, e.g. `--admin-key`.
    pub flag: &'static str,
    /// The generated value.
    pub value: String,
}

impl std::fmt::Display for GeneratedSecret {
    /// `admin key: <value> (generated; pass --admin-key to choose)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (generated; pass {} to choose)",
            self.what, self.value, self.flag
        )
    }
}

/// 32 random bytes from the thread's CSPRNG (seeded by the OS), as 64 hex digits.
fn random_secret() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Default for Config {
    /// The command-line defaults (including the `LIVEPULSE_*` environment variables).
    fn default() -> Self {
        Defaults::parse_from(["business-server"]).config
    }
}

/// Longest interval or tick any setting accepts: a day, in milliseconds.
pub const MAX_INTERVAL_MS: u64 = 86_400_000;
/// Smallest `room_pending_bytes`: room for the largest server-made event (a notice of 500
/// escaped characters, a leaderboard) with margin.
pub const MIN_ROOM_PENDING_BYTES: usize = 16 * 1024;
/// Longest idempotency TTL: 30 days, in milliseconds.
pub const MAX_IDEMPOTENCY_TTL_MS: u64 = 30 * MAX_INTERVAL_MS;

/// A setting the server refuses to start with; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("business.{field} {problem}")]
pub struct ConfigError {
    /// Field name, as in the config file (`batch_ms`, `listener.idle_timeout_secs`).
    pub field: Cow<'static, str>,
    /// What is wrong with its value.
    pub problem: String,
}

fn refuse(field: &'static str, problem: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError {
        field: field.into(),
        problem: problem.into(),
    })
}

/// Checks that `field` is a count or size above zero.
fn positive(field: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return refuse(field, "must be > 0, got 0");
    }
    Ok(())
}

/// Checks that `field` is a number of milliseconds in 1..=`max`.
fn millis(field: &'static str, value: u64, max: u64) -> Result<(), ConfigError> {
    if value == 0 || value > max {
        return refuse(field, format!("must be 1..={max} ms, got {value}"));
    }
    Ok(())
}

/// Checks that `field` is a finite rate above zero.
fn rate(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if !(value.is_finite() && value > 0.0) {
        return refuse(field, format!("must be a finite number > 0, got {value}"));
    }
    Ok(())
}

impl Config {
    /// The defaults with the public demo secrets, accepted only here (`livepulse demo`).
    pub fn demo() -> Self {
        Self {
            admin_key: DEMO_ADMIN_KEY.into(),
            token_secret: DEMO_TOKEN_SECRET.into(),
            demo_tokens: true,
            demo: true,
            ..Self::default()
        }
    }

    /// Replaces an empty `admin_key` or `token_secret` with a random value and returns
    /// what was generated, for printing once at start.
    pub fn generate_missing_secrets(&mut self) -> Vec<GeneratedSecret> {
        let mut generated = Vec::new();
        for (value, what, flag) in [
            (&mut self.admin_key, "admin key", "--admin-key"),
            (&mut self.token_secret, "token secret", "--token-secret"),
        ] {
            if value.is_empty() {
                *value = random_secret();
                generated.push(GeneratedSecret {
                    what,
                    flag,
                    value: value.clone(),
                });
            }
        }
        generated
    }

    /// Checks every field; the error names the first bad one (`business.batch_ms ...`).
    /// Empty secrets pass: they are generated at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis {
            if let Err(e) = redis::IntoConnectionInfo::into_connection_info(url.as_str()) {
                return refuse("redis", format!("is not a Redis URL: {e}"));
            }
        }
        if self.redis_prefix.len() > 64
            || self
                .redis_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            refuse(
                "redis_prefix",
                "must be at most 64 bytes without spaces or control characters",
            )?;
        }
        if !self.demo {
            if self.admin_key == DEMO_ADMIN_KEY {
                refuse(
                    "admin_key",
                    format!("is the public demo key `{DEMO_ADMIN_KEY}`: choose your own, or leave it out to get a generated one"),
                )?;
            }
            if self.token_secret == DEMO_TOKEN_SECRET {
                refuse(
                    "token_secret",
                    format!("is the public demo secret `{DEMO_TOKEN_SECRET}`: choose your own, or leave it out to get a generated one"),
                )?;
            }
        }
        millis("batch_ms", self.batch_ms, MAX_INTERVAL_MS)?;
        millis("stats_interval_ms", self.stats_interval_ms, MAX_INTERVAL_MS)?;
        positive("send_queue", self.send_queue as u64)?;
        positive("max_lag_batches", u64::from(self.max_lag_batches))?;
        positive("room_pending_events", self.room_pending_events as u64)?;
        let floor = MIN_ROOM_PENDING_BYTES.max(self.max_message_bytes.saturating_mul(2));
        if self.room_pending_bytes < floor {
            refuse(
                "room_pending_bytes",
                format!(
                    "must be at least {floor} ({MIN_ROOM_PENDING_BYTES} and twice business.max_message_bytes), got {}",
                    self.room_pending_bytes
                ),
            )?;
        }
        positive("max_message_bytes", self.max_message_bytes as u64)?;
        positive("max_frame_bytes", self.max_frame_bytes as u64)?;
        if self.max_frame_bytes < self.max_message_bytes {
            refuse(
                "max_frame_bytes",
                format!(
                    "({}) must be at least business.max_message_bytes ({})",
                    self.max_frame_bytes, self.max_message_bytes
                ),
            )?;
        }
        positive("max_json_depth", self.max_json_depth as u64)?;
        positive("max_chat_chars", self.max_chat_chars as u64)?;
        rate("chat_per_sec", self.chat_per_sec)?;
        positive("chat_burst", u64::from(self.chat_burst))?;
        rate("messages_per_sec", self.messages_per_sec)?;
        positive("messages_burst", u64::from(self.messages_burst))?;
        positive("max_conns_per_ip", u64::from(self.max_conns_per_ip))?;
        positive("read_buffer_bytes", self.read_buffer_bytes as u64)?;
        millis("ping_interval_ms", self.ping_interval_ms, MAX_INTERVAL_MS)?;
        self.listener.validate().map_err(|e| ConfigError {
            field: format!("listener.{}", e.field).into(),
            problem: e.problem,
        })?;
        if self.listener.idle_timeout_secs * 1000.0 <= self.ping_interval_ms as f64 {
            refuse(
                "ping_interval_ms",
                format!(
                    "({}) must be below listener.idle_timeout_secs ({} s): pings are what keep a quiet member's connection moving",
                    self.ping_interval_ms, self.listener.idle_timeout_secs
                ),
            )?;
        }
        millis("idle_timeout_ms", self.idle_timeout_ms, MAX_INTERVAL_MS)?;
        if self.idle_timeout_ms <= self.ping_interval_ms {
            refuse(
                "idle_timeout_ms",
                format!(
                    "({}) must exceed business.ping_interval_ms ({})",
                    self.idle_timeout_ms, self.ping_interval_ms
                ),
            )?;
        }
        millis(
            "idempotency_ttl_ms",
            self.idempotency_ttl_ms,
            MAX_IDEMPOTENCY_TTL_MS,
        )?;
        positive("idempotency_max_keys", self.idempotency_max_keys as u64)?;
        self.web.validate()
    }
}

impl WebPage {
    /// Checks the room name and that every URL is `http(s)://` and at most [`MAX_WEB_URL`]
    /// bytes without spaces or control characters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !crate::auth::valid_name(&self.room) {
            refuse("web.room", "must be 1-64 characters of [A-Za-z0-9_-]")?;
        }
        if !self.stream.split_once('/').is_some_and(|(app, stream)| {
            crate::auth::valid_name(app) && crate::auth::valid_name(stream)
        }) {
            refuse(
                "web.stream",
                format!("must be app/stream, got {:?}", self.stream),
            )?;
        }
        for (field, url) in [
            ("web.hls", &self.hls),
            ("web.llhls", &self.llhls),
            ("web.flv", &self.flv),
            ("web.origin", &self.origin),
            ("web.edge", &self.edge),
        ] {
            let scheme = url.starts_with("http://") || url.starts_with("https://");
            if !scheme
                || url.len() > MAX_WEB_URL
                || url.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                refuse(
                    field,
                    format!("must be an http:// or https:// URL of at most {MAX_WEB_URL} bytes, got {url:?}"),
                )?;
            }
        }
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
        assert_eq!(c.idempotency_ttl_ms, 24 * 3600 * 1000);
        assert!(c.redis.is_none());
        assert!(c.allow_anonymous);
        assert!(!c.demo_tokens && Config::demo().demo_tokens);
        assert_eq!(c.web.hls, "http://{host}:8081/live/demo.m3u8");
        c.validate().unwrap();
    }

    #[test]
    fn file_config_overrides_some_fields() {
        let c: Config = serde_json::from_str(r#"{"batch_ms": 20, "redis": "redis://x"}"#).unwrap();
        assert_eq!(c.batch_ms, 20);
        assert_eq!(c.redis.as_deref(), Some("redis://x"));
        assert_eq!(c.send_queue, 64);
        assert!(serde_json::from_str::<Config>(r#"{"nope": 1}"#).is_err());
        let c: Config = serde_json::from_str(r#"{"web": {"room": "stage"}}"#).unwrap();
        assert_eq!(
            (c.web.room.as_str(), c.web.stream.as_str()),
            ("stage", "live/demo")
        );
    }

    type Tweak = fn(&mut Config);

    fn refused(tweak: impl Fn(&mut Config)) -> ConfigError {
        let mut c = Config::default();
        tweak(&mut c);
        c.validate().expect_err("config should be refused")
    }

    #[test]
    fn nonsense_values_are_refused_naming_the_field() {
        let cases: Vec<(&str, Tweak)> = vec![
            ("redis", |c| c.redis = Some("not a url".into())),
            ("redis_prefix", |c| c.redis_prefix = "a b".into()),
            ("admin_key", |c| c.admin_key = DEMO_ADMIN_KEY.into()),
            ("token_secret", |c| {
                c.token_secret = DEMO_TOKEN_SECRET.into()
            }),
            ("batch_ms", |c| c.batch_ms = 0),
            ("batch_ms", |c| c.batch_ms = MAX_INTERVAL_MS + 1),
            ("stats_interval_ms", |c| c.stats_interval_ms = 0),
            ("send_queue", |c| c.send_queue = 0),
            ("max_lag_batches", |c| c.max_lag_batches = 0),
            ("room_pending_events", |c| c.room_pending_events = 0),
            ("room_pending_bytes", |c| c.room_pending_bytes = 0),
            ("room_pending_bytes", |c| c.room_pending_bytes = 1000),
            ("room_pending_bytes", |c| {
                c.max_message_bytes = 1 << 20;
                c.room_pending_bytes = 1 << 20;
            }),
            ("max_message_bytes", |c| c.max_message_bytes = 0),
            ("max_frame_bytes", |c| c.max_frame_bytes = 0),
            ("max_frame_bytes", |c| c.max_frame_bytes = 100),
            ("max_json_depth", |c| c.max_json_depth = 0),
            ("max_chat_chars", |c| c.max_chat_chars = 0),
            ("chat_per_sec", |c| c.chat_per_sec = f64::NAN),
            ("chat_per_sec", |c| c.chat_per_sec = -1.0),
            ("chat_burst", |c| c.chat_burst = 0),
            ("messages_per_sec", |c| c.messages_per_sec = f64::INFINITY),
            ("messages_per_sec", |c| c.messages_per_sec = 0.0),
            ("messages_burst", |c| c.messages_burst = 0),
            ("max_conns_per_ip", |c| c.max_conns_per_ip = 0),
            ("read_buffer_bytes", |c| c.read_buffer_bytes = 0),
            ("ping_interval_ms", |c| c.ping_interval_ms = 0),
            ("idle_timeout_ms", |c| c.idle_timeout_ms = 0),
            ("idle_timeout_ms", |c| {
                c.idle_timeout_ms = MAX_INTERVAL_MS + 1
            }),
            ("idle_timeout_ms", |c| {
                c.idle_timeout_ms = c.ping_interval_ms
            }),
            ("idempotency_ttl_ms", |c| c.idempotency_ttl_ms = 0),
            ("idempotency_ttl_ms", |c| {
                c.idempotency_ttl_ms = MAX_IDEMPOTENCY_TTL_MS + 1
            }),
            ("idempotency_max_keys", |c| c.idempotency_max_keys = 0),
            ("web.room", |c| c.web.room = "a room".into()),
            ("web.stream", |c| c.web.stream = "demo".into()),
            ("web.hls", |c| c.web.hls = "ftp://x/live/demo.m3u8".into()),
            ("web.llhls", |c| c.web.llhls = "/live/demo/ll.m3u8".into()),
            ("web.flv", |c| c.web.flv = "http://x/a b.flv".into()),
            ("web.origin", |c| c.web.origin = String::new()),
            ("web.edge", |c| {
                c.web.edge = format!("http://{}", "x".repeat(MAX_WEB_URL))
            }),
        ];
        for (field, tweak) in cases {
            let e = refused(tweak);
            assert_eq!(e.field, field, "{e}");
            assert!(
                e.to_string().starts_with(&format!("business.{field} ")),
                "{e}"
            );
        }
        assert_eq!(
            refused(|c| c.batch_ms = 0).to_string(),
            "business.batch_ms must be 1..=86400000 ms, got 0"
        );
    }

    #[test]
    fn missing_secrets_are_generated_and_demo_ones_refused_outside_demo() {
        let mut c = Config {
            admin_key: String::new(),
            token_secret: String::new(),
            ..Config::default()
        };
        let generated = c.generate_missing_secrets();
        assert_eq!(generated.len(), 2);
        assert_eq!(generated[0].value, c.admin_key);
        assert_eq!(generated[1].value, c.token_secret);
        assert_eq!(c.admin_key.len(), 64);
        assert_ne!(c.admin_key, c.token_secret);
        assert!(generated[0]
            .to_string()
            .ends_with("(generated; pass --admin-key to choose)"));
        c.validate().unwrap();
        assert!(c.generate_missing_secrets().is_empty());

        let demo = Config::demo();
        demo.validate().unwrap();
        let explicit = Config {
            demo: false,
            ..demo
        };
        let e = explicit.validate().unwrap_err();
        assert_eq!(e.field, "admin_key");
        assert!(e.to_string().contains(DEMO_ADMIN_KEY), "{e}");
    }

    #[test]
    fn file_values_are_validated_too() {
        let c: Config = serde_json::from_str(r#"{"send_queue": 0}"#).unwrap();
        assert_eq!(c.validate().unwrap_err().field, "send_queue");
        assert!(serde_json::from_str::<Config>(r#"{"batch_ms": -5}"#).is_err());
    }
}
