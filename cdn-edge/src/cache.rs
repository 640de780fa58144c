//! Byte-budgeted in-memory object store with least-recently-used eviction.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::body::Growing;

/// An object's body: complete, or still arriving from the origin.
pub enum Body {
    /// All bytes are here.
    Complete(Bytes),
    /// Bytes are arriving; `length` is the origin's Content-Length if it sent one.
    Arriving {
        /// Announced length.
        length: Option<u64>,
        /// The shared, growing body.
        growing: Arc<Growing>,
    },
}

impl Body {
    /// Bytes held so far for a complete body; 0 while arriving.
    pub fn stored_len(&self) -> usize {
        match self {
            Body::Complete(b) => b.len(),
            Body::Arriving { .. } => 0,
        }
    }
}

/// One origin response as the edge keeps and serves it.
pub struct Object {
    /// HTTP status from the origin.
    pub status: u16,
    /// The origin's Content-Type, if any.
    pub content_type: Option<String>,
    /// The origin's Cache-Control, passed through to clients.
    pub cache_control: Option<String>,
    /// The body.
    pub body: Body,
    /// When the edge received its headers (for a held request: when the origin answered).
    pub fetched_at: Instant,
    /// The `Age` the origin (or a parent cache) sent with it.
    pub origin_age: Duration,
    /// When it stops being fresh; `None` means fresh until evicted.
    pub expires: Option<Instant>,
}

impl Object {
    /// True while the object may be served without asking the origin.
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| now < e)
    }

    /// The object's `Age`: what the origin reported plus the time spent at this edge.
    pub fn age(&self, now: Instant) -> Duration {
        self.origin_age
            .saturating_add(now.saturating_duration_since(self.fetched_at))
    }

    /// Bytes charged against the cache budget.
    pub fn cost(&self, key: &str) -> usize {
        self.body.stored_len() + key.len() + 256
    }
}

/// A snapshot of the cache for `/api/v1/cache`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Objects held.
    pub objects: usize,
    /// Bytes charged.
    pub bytes: usize,
    /// Byte budget.
    pub budget: usize,
    /// Objects evicted to stay within the budget.
    pub evictions: u64,
}

struct Inner {
    entries: HashMap<String, (Arc<Object>, u64)>,
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    evictions: u64,
}

/// The cache; cheap to share behind an `Arc`.
pub struct Cache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl Cache {
    /// An empty cache holding at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                evictions: 0,
            }),
        }
    }

    /// The object under `key`, fresh or not, marked as recently used.
    pub fn get(&self, key: &str) -> Option<Arc<Object>> {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        let (object, used) = inner.entries.get_mut(key)?;
        inner.order.remove(used);
        *used = tick;
        inner.order.insert(tick, key.to_string());
        Some(object.clone())
    }

    /// Stores `object`, evicting least-recently-used objects to stay within the budget.
    /// An object larger than the whole budget is not stored.
    pub fn insert(&self, key: &str, object: Arc<Object>) {
        let cost = object.cost(key);
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if let Some((old, used)) = inner.entries.remove(key) {
            inner.order.remove(&used);
            inner.bytes -= old.cost(key);
        }
        if cost > self.budget {
            return;
        }
        while inner.bytes + cost > self.budget {
            let Some((_, victim)) = inner.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = inner.entries.remove(&victim) {
                inner.bytes -= old.cost(&victim);
                inner.evictions += 1;
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.order.insert(tick, key.to_string());
        inner.entries.insert(key.to_string(), (object, tick));
        inner.bytes += cost;
    }

    /// Current size and counters.
    pub fn summary(&self) -> Summary {
        let g = self.inner.lock();
        Summary {
            objects: g.entries.len(),
            bytes: g.bytes,
            budget: self.budget,
            evictions: g.evictions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(len: usize) -> Arc<Object> {
        Arc::new(Object {
            status: 200,
            content_type: None,
            cache_control: None,
            body: Body::Complete(Bytes::from(vec![0; len])),
            fetched_at: Instant::now(),
            origin_age: Duration::ZERO,
            expires: None,
        })
    }

    #[test]
    fn age_adds_the_origin_age_to_the_time_held_here() {
        let fetched_at = Instant::now();
        let o = Object {
            origin_age: Duration::from_secs(3),
            fetched_at,
            ..Arc::into_inner(object(1)).expect("sole owner")
        };
        assert_eq!(
            o.age(fetched_at + Duration::from_millis(2500)),
            Duration::from_millis(5500)
        );
        assert_eq!(o.age(fetched_at), Duration::from_secs(3));
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let cache = Cache::new(3 * (1000 + 1 + 256));
        cache.insert("a", object(1000));
        cache.insert("b", object(1000));
        cache.insert("c", object(1000));
        assert!(cache.get("a").is_some());
        cache.insert("d", object(1000));
        assert!(cache.get("b").is_none(), "b was least recently used");
        assert!(cache.get("a").is_some());
        assert!(cache.get("c").is_some());
        assert!(cache.get("d").is_some());
        let s = cache.summary();
        assert_eq!(s.objects, 3);
        assert!(s.bytes <= s.budget);
        assert_eq!(s.evictions, 1);
    }

    #[test]
    fn replacing_a_key_keeps_the_byte_count_right() {
        let cache = Cache::new(10_000);
        cache.insert("a", object(100));
        cache.insert("a", object(200));
        assert_eq!(cache.summary().bytes, 200 + 1 + 256);
        assert_eq!(cache.summary().objects, 1);
    }

    #[test]
    fn object_larger_than_budget_is_not_stored() {
        let cache = Cache::new(500);
        cache.insert("big", object(1000));
        assert!(cache.get("big").is_none());
        assert_eq!(cache.summary().bytes, 0);
    }
}
