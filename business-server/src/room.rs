//! Rooms: membership, batching on a short tick, and fan-out of one shared buffer.
//!
//! Events for a room (from this or, through the store, any instance) are collected in
//! `pending`, bounded in count and bytes (chat and presence give way first, see
//! [`crate::pending`]). Every tick the room's task encodes them into one `batch` message and hands
//! the same [`Utf8Bytes`] to every member queue with `try_send`. A member whose queue is
//! full misses that batch; after `max_lag` consecutive misses it is disconnected. The
//! room never waits for a member.
//!
//! A room that shows a flash sale reads its counters on every tick while the sale is open
//! and pushes a `sale` event when the remaining stock changed, so every member sees the
//! stock within a tick or two however many purchases there were, on whichever instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};

use crate::gift::{Rank, LEADERBOARD_SIZE};
use crate::metrics::Metrics;
use crate::pending::{Pending, PendingLimits};
use crate::protocol::{encode_batch, Event};
use crate::sale::SaleState;
use crate::server::now_ms;
use crate::store::{EventSink, Store};

/// Why a member was disconnected by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Its queue stayed full for `missed` consecutive batches.
    Lagging {
        /// Batches missed in a row.
        missed: u32,
    },
    /// The server is shutting down.
    ShuttingDown,
}

/// The server's side of a member: lets the room disconnect it.
#[derive(Default)]
pub struct MemberLink {
    notify: Notify,
    reason: OnceLock<Kick>,
}

impl MemberLink {
    fn kick(&self, reason: Kick) {
        if self.reason.set(reason).is_ok() {
            self.notify.notify_one();
        }
    }

    /// Why the member was kicked, if it was.
    pub fn reason(&self) -> Option<Kick> {
        self.reason.get().copied()
    }

    /// Resolves when the member is kicked, with the reason.
    pub async fn kicked(&self) -> Kick {
        loop {
            if let Some(reason) = self.reason.get() {
                return *reason;
            }
            self.notify.notified().await;
        }
    }
}

/// The sale a room shows, and the stock its members were last told.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShownSale {
    id: String,
    start_at_ms: u64,
    /// `None` until the members were told anything.
    remaining: Option<u64>,
}

impl ShownSale {
    /// Whether the stock may have changed since the members were last told.
    fn due(&self, now_ms: u64) -> bool {
        self.remaining
            .is_none_or(|left| left > 0 && now_ms >= self.start_at_ms)
    }
}

struct Slot {
    tx: mpsc::Sender<Utf8Bytes>,
    link: Arc<MemberLink>,
    missed: u32,
}

/// One room on this instance.
pub struct Room {
    name: Arc<str>,
    members: Mutex<HashMap<u64, Slot>>,
    pending: Mutex<Pending>,
    likes: AtomicU64,
    stats_running: AtomicBool,
    leaderboard: Mutex<Vec<Rank>>,
    sale: Mutex<Option<ShownSale>>,
    sale_running: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Room {
    fn new(name: Arc<str>, limits: PendingLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            name,
            members: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::new(limits)),
            likes: AtomicU64::new(0),
            stats_running: AtomicBool::new(false),
            leaderboard: Mutex::new(Vec::new()),
            sale: Mutex::new(None),
            sale_running: AtomicBool::new(false),
            metrics,
        }
    }

    /// Room name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues an encoded event for the next batch, dropping what the bounds require.
    pub fn push(&self, event: Arc<str>) {
        let dropped = self.pending.lock().push(event);
        self.metrics.events_dropped(dropped);
    }

    /// Adds likes to be aggregated at the next tick.
    pub fn like(&self, n: u64) {
        self.likes.fetch_add(n, Relaxed);
    }

    /// Members on this instance.
    pub fn member_count(&self) -> usize {
        self.members.lock().len()
    }

    /// Shows `sale` from now on; its members were just told about it as it is.
    pub fn show_sale(&self, sale: &SaleState) {
        *self.sale.lock() = Some(ShownSale {
            id: sale.spec.id.clone(),
            start_at_ms: sale.spec.start_at_ms,
            remaining: Some(sale.remaining),
        });
    }

    /// Shows sale `id` from now on, if it is not the one shown; the members are told at
    /// the next tick.
    fn adopt_sale(&self, id: String) {
        let mut shown = self.sale.lock();
        if shown.as_ref().is_none_or(|s| s.id != id) {
            *shown = Some(ShownSale {
                id,
                start_at_ms: 0,
                remaining: None,
            });
        }
    }

    /// The id of the shown sale if its stock may have changed since the members were told.
    fn sale_due(&self, now_ms: u64) -> Option<String> {
        self.sale
            .lock()
            .as_ref()
            .filter(|s| s.due(now_ms))
            .map(|s| s.id.clone())
    }
}

/// A member's handle on its room.
pub struct Membership {
    /// The room.
    pub room: Arc<Room>,
    /// Member id within this instance.
    pub id: u64,
    /// Batches for this member.
    pub rx: mpsc::Receiver<Utf8Bytes>,
    /// Kick signal.
    pub link: Arc<MemberLink>,
    /// Whether this join created the room (the caller then starts [`run`]).
    pub created: bool,
}

/// All rooms with members on this instance.
pub struct RoomHub {
    rooms: DashMap<Arc<str>, Arc<Room>>,
    next_id: AtomicU64,
    send_queue: usize,
    pending: PendingLimits,
    closing: AtomicBool,
    metrics: Arc<Metrics>,
}

impl RoomHub {
    /// An empty hub whose members queue up to `send_queue` batches and whose rooms hold
    /// up to `pending` for their next batch.
    pub fn new(send_queue: usize, pending: PendingLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            rooms: DashMap::new(),
            next_id: AtomicU64::new(1),
            send_queue,
            pending,
            closing: AtomicBool::new(false),
            metrics,
        }
    }

    /// Adds a member to `room`, creating the room if needed; `None` once closing.
    pub fn join(&self, room: &str) -> Option<Membership> {
        if self.closing.load(Relaxed) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let (tx, rx) = mpsc::channel(self.send_queue);
        let link = Arc::new(MemberLink::default());
        let mut created = false;
        let entry = self.rooms.entry(room.into()).or_insert_with(|| {
            created = true;
            Arc::new(Room::new(room.into(), self.pending, self.metrics.clone()))
        });
        entry.members.lock().insert(
            id,
            Slot {
                tx,
                link: link.clone(),
                missed: 0,
            },
        );
        let room = entry.clone();
        drop(entry);
        if created {
            self.metrics.rooms.fetch_add(1, Relaxed);
        }
        self.metrics.joins.fetch_add(1, Relaxed);
        Some(Membership {
            room,
            id,
            rx,
            link,
            created,
        })
    }

    /// Removes a member (no-op if it was already kicked).
    pub fn leave(&self, room: &Room, id: u64) {
        room.members.lock().remove(&id);
    }

    /// The room named `name`, if it has members here.
    pub fn room(&self, name: &str) -> Option<Arc<Room>> {
        self.rooms.get(name).map(|r| r.clone())
    }

    /// Refuses new joins and disconnects every member.
    pub fn close_all(&self) {
        self.closing.store(true, Relaxed);
        for room in self.rooms.iter() {
            for (_, slot) in room.members.lock().drain() {
                slot.link.kick(Kick::ShuttingDown);
            }
        }
    }

    fn remove_if_empty(&self, room: &Arc<Room>) -> bool {
        let removed = self
            .rooms
            .remove_if(&room.name, |_, r| {
                Arc::ptr_eq(r, room) && r.members.lock().is_empty()
            })
            .is_some();
        if removed {
            self.metrics.rooms.fetch_sub(1, Relaxed);
        }
        removed
    }
}

impl EventSink for RoomHub {
    fn deliver(&self, room: &str, event: Arc<str>) {
        if let Some(r) = self.rooms.get(room) {
            r.push(event);
        }
    }
}

/// Timing of a room task.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Batch tick.
    pub batch: Duration,
    /// Online count and leaderboard period.
    pub stats: Duration,
    /// Consecutive missed batches before a member is disconnected.
    pub max_lag: u32,
}

/// How often a room reads the stock of the sale it shows while it may change: one store read
/// per room and instance at this period, not one per batch.
const SALE_REFRESH: Duration = Duration::from_millis(250);

/// Runs a room until it has no members: likes aggregation, stats, batching, fan-out.
pub async fn run(hub: Arc<RoomHub>, room: Arc<Room>, store: Arc<dyn Store>, timing: Timing) {
    let mut tick = tokio::time::interval(timing.batch);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_stats: Option<Instant> = None;
    let mut last_sale: Option<Instant> = None;
    let mut seq = 0u64;
    loop {
        tick.tick().await;
        let likes = room.likes.swap(0, Relaxed);
        if likes > 0 {
            tokio::spawn(publish_likes(room.clone(), store.clone(), likes));
        }
        if last_sale.is_none_or(|t| t.elapsed() >= SALE_REFRESH) {
            if let Some(id) = room.sale_due(now_ms()) {
                last_sale = Some(Instant::now());
                if !room.sale_running.swap(true, Relaxed) {
                    tokio::spawn(refresh_sale(room.clone(), store.clone(), id));
                }
            }
        }
        if last_stats.is_none_or(|t| t.elapsed() >= timing.stats) {
            last_stats = Some(Instant::now());
            if !room.stats_running.swap(true, Relaxed) {
                tokio::spawn(refresh_stats(room.clone(), store.clone(), timing.stats));
            }
        }
        let events = room.pending.lock().take();
        if !events.is_empty() {
            seq += 1;
            broadcast(&room, &hub.metrics, seq, &events, timing.max_lag);
        }
        if room.members.lock().is_empty() && hub.remove_if_empty(&room) {
            return;
        }
    }
}

fn broadcast(room: &Room, metrics: &Metrics, seq: u64, events: &[Arc<str>], max_lag: u32) {
    let batch = Utf8Bytes::from(encode_batch(&room.name, seq, events));
    let len = batch.as_str().len() as u64;
    let mut sent = 0u64;
    let mut missed = 0u64;
    let mut members = room.members.lock();
    members.retain(|_, slot| match slot.tx.try_send(batch.clone()) {
        Ok(()) => {
            slot.missed = 0;
            sent += 1;
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            slot.missed += 1;
            missed += 1;
            if slot.missed >= max_lag {
                slot.link.kick(Kick::Lagging {
                    missed: slot.missed,
                });
                metrics.lagging_dropped.fetch_add(1, Relaxed);
                false
            } else {
                true
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
    drop(members);
    metrics.batches.fetch_add(1, Relaxed);
    metrics.events.fetch_add(events.len() as u64, Relaxed);
    metrics.batches_missed.fetch_add(missed, Relaxed);
    metrics.sent(sent, sent * len);
}

async fn publish_likes(room: Arc<Room>, store: Arc<dyn Store>, delta: u64) {
    let result = async {
        let total = store.add_likes(&room.name, delta).await?;
        store
            .publish(&room.name, Event::Likes { delta, total }.encode())
            .await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(room = %room.name, error = %e, "likes not published");
    }
}

async fn refresh_stats(room: Arc<Room>, store: Arc<dyn Store>, period: Duration) {
    let ttl_ms = (period.as_millis() as u64).saturating_mul(3);
    let local = room.member_count() as u64;
    match store.online(&room.name, local, ttl_ms).await {
        Ok(count) => room.push(Event::Online { count }.encode()),
        Err(e) => tracing::warn!(room = %room.name, error = %e, "online count failed"),
    }
    match store.leaderboard(&room.name, LEADERBOARD_SIZE).await {
        Ok(top) => {
            let mut last = room.leaderboard.lock();
            if *last != top {
                room.push(Event::Leaderboard { top: &top }.encode());
                *last = top;
            }
        }
        Err(e) => tracing::warn!(room = %room.name, error = %e, "leaderboard failed"),
    }
    match store.room_sale(&room.name).await {
        Ok(Some(id)) => room.adopt_sale(id),
        Ok(None) => {}
        Err(e) => tracing::warn!(room = %room.name, error = %e, "room sale unknown"),
    }
    room.stats_running.store(false, Relaxed);
}

/// Reads sale `id` and tells the members when its stock changed.
async fn refresh_sale(room: Arc<Room>, store: Arc<dyn Store>, id: String) {
    match store.sale(&id).await {
        Ok(Some(state)) => {
            let mut shown = room.sale.lock();
            if let Some(s) = shown.as_mut().filter(|s| s.id == id) {
                s.start_at_ms = state.spec.start_at_ms;
                if s.remaining != Some(state.remaining) {
                    s.remaining = Some(state.remaining);
                    let phase = state.phase(now_ms());
                    room.push(
                        Event::Sale {
                            sale: &state,
                            phase,
                        }
                        .encode(),
                    );
                }
            }
        }
        Ok(None) => {
            let mut shown = room.sale.lock();
            if shown.as_ref().is_some_and(|s| s.id == id) {
                *shown = None;
            }
        }
        Err(e) => tracing::warn!(room = %room.name, error = %e, "sale not read"),
    }
    room.sale_running.store(false, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: PendingLimits = PendingLimits {
        max_events: 64,
        max_bytes: 1 << 20,
    };

    #[tokio::test]
    async fn full_queue_misses_batches_then_kicks() {
        let metrics = Arc::new(Metrics::default());
        let hub = RoomHub::new(1, ROOMY, metrics.clone());
        let slow = hub.join("r").unwrap();
        let mut fast = hub.join("r").unwrap();
        assert!(slow.created && !fast.created);
        let ev: Arc<str> = Event::Online { count: 2 }.encode();
        for seq in 1..=3 {
            broadcast(&slow.room, &metrics, seq, std::slice::from_ref(&ev), 2);
            let got = fast.rx.recv().await.unwrap();
            assert!(got.as_str().contains(&format!("\"seq\":{seq}")));
        }
        assert_eq!(slow.link.kicked().await, Kick::Lagging { missed: 2 });
        assert_eq!(slow.room.member_count(), 1);
        assert_eq!(metrics.lagging_dropped.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn every_member_gets_the_same_buffer() {
        let metrics = Arc::new(Metrics::default());
        let hub = RoomHub::new(4, ROOMY, metrics.clone());
        let mut a = hub.join("r").unwrap();
        let mut b = hub.join("r").unwrap();
        broadcast(
            &a.room,
            &metrics,
            1,
            &[Event::Online { count: 2 }.encode()],
            4,
        );
        let (x, y) = (a.rx.recv().await.unwrap(), b.rx.recv().await.unwrap());
        assert_eq!(x.as_str().as_ptr(), y.as_str().as_ptr());
    }

    #[test]
    fn closing_hub_kicks_and_refuses() {
        let hub = RoomHub::new(4, ROOMY, Arc::new(Metrics::default()));
        let m = hub.join("r").unwrap();
        hub.close_all();
        assert_eq!(m.link.reason(), Some(Kick::ShuttingDown));
        assert!(hub.join("r").is_none());
    }

    #[test]
    fn a_flooded_room_keeps_notices_and_counts_dropped_chat() {
        let metrics = Arc::new(Metrics::default());
        let limits = PendingLimits {
            max_events: 4,
            max_bytes: 1 << 20,
        };
        let hub = RoomHub::new(4, limits, metrics.clone());
        let m = hub.join("r").unwrap();
        let notice = Event::Notice {
            text: "sale starts",
            level: "info",
        }
        .encode();
        m.room.push(notice.clone());
        for i in 0..10 {
            hub.deliver(
                "r",
                Event::Join {
                    user: &format!("u{i}"),
                }
                .encode(),
            );
        }
        let events = m.room.pending.lock().take();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0], notice);
        let text = metrics.render("memory");
        assert!(text.contains("business_events_dropped_total{priority=\"low\"} 7"));
        assert!(text.contains("business_events_dropped_total{priority=\"high\"} 0"));
    }
}
