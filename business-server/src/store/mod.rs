//! Shared state behind one trait: the embedded `memory` backend and the `redis` backend.
//!
//! The store carries room events between instances ([`Store::publish`] delivers to
//! every instance's [`EventSink`], including the publisher's), and keeps likes,
//! leaderboards, online counts, room policies, flash sales and which sale each room shows.

pub mod memory;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::gift::Rank;
use crate::metrics::Metrics;
use crate::sale::{AnswerLimits, Outcome, SaleSpec, SaleState};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or answered nonsense.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// `create_sale` with an id already in use.
    #[error("sale `{0}` already exists")]
    SaleExists(String),
}

/// Receives room events published by any instance.
pub trait EventSink: Send + Sync {
    /// Hands one encoded event to the local members of `room`, if any.
    fn deliver(&self, room: &str, event: Arc<str>);
}

/// Backend for everything instances share.
#[async_trait]
pub trait Store: Send + Sync {
    /// `memory` or `redis`.
    fn backend(&self) -> &'static str;

    /// Sends an encoded event to `room` on every instance.
    async fn publish(&self, room: &str, event: Arc<str>) -> Result<(), StoreError>;

    /// Adds likes to the room total and returns the new total.
    async fn add_likes(&self, room: &str, delta: u64) -> Result<u64, StoreError>;

    /// Adds gift value to `user`'s leaderboard score in `room`.
    async fn add_gift(&self, room: &str, user: &str, value: u64) -> Result<(), StoreError>;

    /// The `n` highest leaderboard entries of `room`.
    async fn leaderboard(&self, room: &str, n: usize) -> Result<Vec<Rank>, StoreError>;

    /// Reports this instance's member count for `room` and returns the total across
    /// instances that reported within `ttl_ms`.
    async fn online(&self, room: &str, local: u64, ttl_ms: u64) -> Result<u64, StoreError>;

    /// Whether `room` admits anonymous viewers, if a policy was set.
    async fn allow_anonymous(&self, room: &str) -> Result<Option<bool>, StoreError>;

    /// Sets whether `room` admits anonymous viewers.
    async fn set_allow_anonymous(&self, room: &str, allow: bool) -> Result<(), StoreError>;

    /// The sale announced in `room` last, if any.
    async fn room_sale(&self, room: &str) -> Result<Option<String>, StoreError>;

    /// Makes sale `id` the one announced in `room`.
    async fn set_room_sale(&self, room: &str, id: &str) -> Result<(), StoreError>;

    /// Creates a sale; fails with [`StoreError::SaleExists`] when the id is taken.
    async fn create_sale(&self, spec: &SaleSpec) -> Result<(), StoreError>;

    /// A sale and its counters.
    async fn sale(&self, id: &str) -> Result<Option<SaleState>, StoreError>;

    /// One purchase attempt, decided atomically; `None` when the sale does not exist.
    /// The answer is replayed for retries with the same user and key within the TTL.
    async fn purchase(
        &self,
        id: &str,
        user: &str,
        key: &str,
        now_ms: u64,
    ) -> Result<Option<Outcome>, StoreError>;

    /// Forgets purchase answers expired at `now_ms` (Redis expires them by itself).
    fn sweep(&self, _now_ms: u64) {}

    /// Stops background work (subscriptions).
    fn close(&self);
}

/// Opens the backend chosen by `config.redis`.
pub async fn open(
    config: &Config,
    sink: Arc<dyn EventSink>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Arc<dyn Store>> {
    let answers = AnswerLimits {
        ttl_ms: config.idempotency_ttl_ms,
        max_keys: config.idempotency_max_keys,
    };
    Ok(match &config.redis {
        Some(url) => Arc::new(
            redis::RedisStore::open(url, &config.redis_prefix, answers.ttl_ms, sink).await?,
        ),
        None => Arc::new(memory::MemoryStore::new(sink, answers, metrics)),
    })
}
