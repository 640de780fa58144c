//! In-process store: events go straight to the local sink; nothing to install.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::Mutex;

use super::{EventSink, Store, StoreError};
use crate::gift::{top, Rank};
use crate::metrics::Metrics;
use crate::sale::{AnswerLimits, MemorySale, Outcome, SaleSpec, SaleState};

#[derive(Default)]
struct RoomData {
    likes: AtomicU64,
    gifts: Mutex<HashMap<String, u64>>,
    allow_anonymous: Mutex<Option<bool>>,
    sale: Mutex<Option<String>>,
}

/// The embedded single-instance store.
pub struct MemoryStore {
    sink: Arc<dyn EventSink>,
    rooms: DashMap<String, Arc<RoomData>>,
    sales: DashMap<String, Arc<MemorySale>>,
    answers: AnswerLimits,
    metrics: Arc<Metrics>,
}

impl MemoryStore {
    /// A store delivering events to `sink`, remembering purchase answers within `answers`.
    pub fn new(sink: Arc<dyn EventSink>, answers: AnswerLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            sink,
            rooms: DashMap::new(),
            sales: DashMap::new(),
            answers,
            metrics,
        }
    }

    fn room(&self, room: &str) -> Arc<RoomData> {
        if let Some(r) = self.rooms.get(room) {
            return r.clone();
        }
        self.rooms.entry(room.to_string()).or_default().clone()
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, room: &str, event: Arc<str>) -> Result<(), StoreError> {
        self.sink.deliver(room, event);
        Ok(())
    }

    async fn add_likes(&self, room: &str, delta: u64) -> Result<u64, StoreError> {
        Ok(self.room(room).likes.fetch_add(delta, Relaxed) + delta)
    }

    async fn add_gift(&self, room: &str, user: &str, value: u64) -> Result<(), StoreError> {
        *self
            .room(room)
            .gifts
            .lock()
            .entry(user.to_string())
            .or_default() += value;
        Ok(())
    }

    async fn leaderboard(&self, room: &str, n: usize) -> Result<Vec<Rank>, StoreError> {
        let ranks = match self.rooms.get(room) {
            Some(r) => r
                .gifts
                .lock()
                .iter()
                .map(|(user, &value)| Rank {
                    user: user.clone(),
                    value,
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(top(ranks, n))
    }

    async fn online(&self, _room: &str, local: u64, _ttl_ms: u64) -> Result<u64, StoreError> {
        Ok(local)
    }

    async fn allow_anonymous(&self, room: &str) -> Result<Option<bool>, StoreError> {
        Ok(self.rooms.get(room).and_then(|r| *r.allow_anonymous.lock()))
    }

    async fn set_allow_anonymous(&self, room: &str, allow: bool) -> Result<(), StoreError> {
        *self.room(room).allow_anonymous.lock() = Some(allow);
        Ok(())
    }

    async fn room_sale(&self, room: &str) -> Result<Option<String>, StoreError> {
        Ok(self.rooms.get(room).and_then(|r| r.sale.lock().clone()))
    }

    async fn set_room_sale(&self, room: &str, id: &str) -> Result<(), StoreError> {
        *self.room(room).sale.lock() = Some(id.to_string());
        Ok(())
    }

    async fn create_sale(&self, spec: &SaleSpec) -> Result<(), StoreError> {
        match self.sales.entry(spec.id.clone()) {
            dashmap::Entry::Occupied(_) => Err(StoreError::SaleExists(spec.id.clone())),
            dashmap::Entry::Vacant(v) => {
                v.insert(Arc::new(MemorySale::new(
                    spec.clone(),
                    self.answers,
                    self.metrics.clone(),
                )));
                Ok(())
            }
        }
    }

    async fn sale(&self, id: &str) -> Result<Option<SaleState>, StoreError> {
        Ok(self.sales.get(id).map(|s| s.state()))
    }

    async fn purchase(
        &self,
        id: &str,
        user: &str,
        key: &str,
        now_ms: u64,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(sale) = self.sales.get(id).map(|s| s.clone()) else {
            return Ok(None);
        };
        sale.purchase(user, key, now_ms)
            .map(Some)
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    fn sweep(&self, now_ms: u64) {
        let sales: Vec<Arc<MemorySale>> = self.sales.iter().map(|s| s.clone()).collect();
        for sale in sales {
            sale.sweep(now_ms);
        }
    }

    fn close(&self) {}
}
