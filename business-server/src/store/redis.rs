//! Redis store: rooms shared across instances with pub/sub; likes, leaderboards,
//! online counts and flash sales kept in Redis, sale decisions made by one Lua script.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSub};
use redis::{AsyncCommands, Script};
use tokio::task::AbortHandle;

use super::{EventSink, Store, StoreError};
use crate::gift::Rank;
use crate::sale::{Outcome, OutcomeCounts, SaleSpec, SaleState};

/// Decides one purchase: replay of a known key, then start time, per-user limit, stock.
/// The answer is kept under its own key for the idempotency TTL.
/// KEYS: sale hash, per-user counts hash, answer key. ARGV: user, ttl_ms, now_ms.
const PURCHASE_LUA: &str = r#"
local prev = redis.call('GET', KEYS[3])
if prev then return prev end
local sale = redis.call('HMGET', KEYS[1], 'start_at_ms', 'per_user_limit', 'remaining')
if not sale[1] then return 'unknown' end
if tonumber(ARGV[3]) < tonumber(sale[1]) then return 'not_started' end
local res
local bought = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if bought >= tonumber(sale[2]) then
  res = 'limit_reached'
  redis.call('HINCRBY', KEYS[1], 'n_limit_reached', 1)
elseif tonumber(sale[3]) <= 0 then
  res = 'sold_out'
  redis.call('HINCRBY', KEYS[1], 'n_sold_out', 1)
else
  redis.call('HINCRBY', KEYS[1], 'remaining', -1)
  local sold = redis.call('HINCRBY', KEYS[1], 'sold', 1)
  redis.call('HINCRBY', KEYS[1], 'n_success', 1)
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  res = 'success:' .. sold
end
redis.call('SET', KEYS[3], res, 'PX', ARGV[2])
return res
"#;

/// Creates a sale unless the id exists. KEYS: sale hash. ARGV: item, stock, start, limit.
const CREATE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'item', ARGV[1], 'stock', ARGV[2], 'start_at_ms', ARGV[3],
  'per_user_limit', ARGV[4], 'remaining', ARGV[2], 'sold', 0,
  'n_success', 0, 'n_sold_out', 0, 'n_limit_reached', 0)
return 1
"#;

/// Records this instance's count and sums fresh counts, dropping stale ones.
/// KEYS: online hash. ARGV: instance, count, now_ms, ttl_ms.
const ONLINE_LUA: &str = r#"
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
local all = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #all, 2 do
  local c, t = string.match(all[i + 1], '^(%d+):(%d+)$')
  if c and now - tonumber(t) <= ttl then
    total = total + tonumber(c)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return total
"#;

/// Store backed by one Redis server, shared by any number of instances.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    instance: String,
    answer_ttl_ms: u64,
    subscriber: AbortHandle,
    purchase: Script,
    create: Script,
    online: Script,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects, subscribes to every room channel under `prefix`, and starts delivering
    /// events to `sink`; purchase answers expire after `answer_ttl_ms`. Returns once the
    /// subscription is active.
    pub async fn open(
        url: &str,
        prefix: &str,
        answer_ttl_ms: u64,
        sink: Arc<dyn EventSink>,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        let channel_prefix = format!("{prefix}room:");
        let pubsub = subscribe(&client, &channel_prefix).await?;
        let subscriber =
            tokio::spawn(run_subscriber(client, channel_prefix, sink, pubsub)).abort_handle();
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            answer_ttl_ms,
            instance: format!("{:016x}", rand::random::<u64>()),
            subscriber,
            purchase: Script::new(PURCHASE_LUA),
            create: Script::new(CREATE_LUA),
            online: Script::new(ONLINE_LUA),
        })
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{{{name}}}", self.prefix)
    }
}

async fn subscribe(client: &redis::Client, channel_prefix: &str) -> redis::RedisResult<PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(format!("{channel_prefix}*")).await?;
    Ok(pubsub)
}

async fn run_subscriber(
    client: redis::Client,
    channel_prefix: String,
    sink: Arc<dyn EventSink>,
    mut pubsub: PubSub,
) {
    loop {
        {
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let Some(room) = msg.get_channel_name().strip_prefix(&channel_prefix) else {
                    continue;
                };
                match std::str::from_utf8(msg.get_payload_bytes()) {
                    Ok(event) => sink.deliver(room, event.into()),
                    Err(_) => tracing::warn!(room, "dropping non-UTF-8 event from Redis"),
                }
            }
        }
        tracing::warn!("Redis subscription ended; reconnecting");
        pubsub = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            match subscribe(&client, &channel_prefix).await {
                Ok(p) => break p,
                Err(e) => tracing::warn!(error = %e, "Redis resubscribe failed"),
            }
        };
    }
}

/// Key holding the answer for one user and idempotency key; it shares the sale's hash tag.
fn answer_key(sale_key: &str, user: &str, key: &str) -> String {
    format!("{sale_key}:answer:{user}\n{key}")
}

fn field<T: std::str::FromStr>(h: &HashMap<String, String>, name: &str) -> Result<T, StoreError> {
    h.get(name).and_then(|v| v.parse().ok()).ok_or_else(|| {
        StoreError::Unavailable(format!("sale hash field `{name}` missing or invalid"))
    })
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, room: &str, event: Arc<str>) -> Result<(), StoreError> {
        let channel = format!("{}room:{room}", self.prefix);
        self.conn
            .clone()
            .publish::<_, _, ()>(channel, event.as_bytes())
            .await
            .map_err(unavailable)
    }

    async fn add_likes(&self, room: &str, delta: u64) -> Result<u64, StoreError> {
        self.conn
            .clone()
            .incr(self.key("likes", room), delta)
            .await
            .map_err(unavailable)
    }

    async fn add_gift(&self, room: &str, user: &str, value: u64) -> Result<(), StoreError> {
        self.conn
            .clone()
            .zincr::<_, _, _, ()>(self.key("leaderboard", room), user, value)
            .await
            .map_err(unavailable)
    }

    async fn leaderboard(&self, room: &str, n: usize) -> Result<Vec<Rank>, StoreError> {
        let stop = isize::try_from(n).unwrap_or(isize::MAX) - 1;
        let rows: Vec<(String, f64)> = self
            .conn
            .clone()
            .zrevrange_withscores(self.key("leaderboard", room), 0, stop)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|(user, score)| Rank {
                user,
                value: score as u64,
            })
            .collect())
    }

    async fn online(&self, room: &str, local: u64, ttl_ms: u64) -> Result<u64, StoreError> {
        self.online
            .key(self.key("online", room))
            .arg(&self.instance)
            .arg(local)
            .arg(crate::server::now_ms())
            .arg(ttl_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn allow_anonymous(&self, room: &str) -> Result<Option<bool>, StoreError> {
        let v: Option<String> = self
            .conn
            .clone()
            .get(self.key("anonymous", room))
            .await
            .map_err(unavailable)?;
        Ok(v.map(|v| v == "1"))
    }

    async fn set_allow_anonymous(&self, room: &str, allow: bool) -> Result<(), StoreError> {
        self.conn
            .clone()
            .set::<_, _, ()>(self.key("anonymous", room), if allow { "1" } else { "0" })
            .await
            .map_err(unavailable)
    }

    async fn room_sale(&self, room: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .clone()
            .get(self.key("room-sale", room))
            .await
            .map_err(unavailable)
    }

    async fn set_room_sale(&self, room: &str, id: &str) -> Result<(), StoreError> {
        self.conn
            .clone()
            .set::<_, _, ()>(self.key("room-sale", room), id)
            .await
            .map_err(unavailable)
    }

    async fn create_sale(&self, spec: &SaleSpec) -> Result<(), StoreError> {
        let created: i64 = self
            .create
            .key(self.key("sale", &spec.id))
            .arg(&spec.item)
            .arg(spec.stock)
            .arg(spec.start_at_ms)
            .arg(spec.per_user_limit)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::SaleExists(spec.id.clone()))
        }
    }

    async fn sale(&self, id: &str) -> Result<Option<SaleState>, StoreError> {
        let h: HashMap<String, String> = self
            .conn
            .clone()
            .hgetall(self.key("sale", id))
            .await
            .map_err(unavailable)?;
        if h.is_empty() {
            return Ok(None);
        }
        Ok(Some(SaleState {
            spec: SaleSpec {
                id: id.to_string(),
                item: field(&h, "item")?,
                stock: field(&h, "stock")?,
                start_at_ms: field(&h, "start_at_ms")?,
                per_user_limit: field(&h, "per_user_limit")?,
            },
            sold: field(&h, "sold")?,
            remaining: field(&h, "remaining")?,
            outcomes: OutcomeCounts {
                success: field(&h, "n_success")?,
                sold_out: field(&h, "n_sold_out")?,
                limit_reached: field(&h, "n_limit_reached")?,
            },
        }))
    }

    async fn purchase(
        &self,
        id: &str,
        user: &str,
        key: &str,
        now_ms: u64,
    ) -> Result<Option<Outcome>, StoreError> {
        let sale = self.key("sale", id);
        let answer: String = self
            .purchase
            .key(&sale)
            .key(format!("{sale}:users"))
            .key(answer_key(&sale, user, key))
            .arg(user)
            .arg(self.answer_ttl_ms)
            .arg(now_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if answer == "unknown" {
            return Ok(None);
        }
        Outcome::from_compact(&answer).map(Some).ok_or_else(|| {
            StoreError::Unavailable(format!("unexpected purchase answer `{answer}`"))
        })
    }

    fn close(&self) {
        self.subscriber.abort();
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}
