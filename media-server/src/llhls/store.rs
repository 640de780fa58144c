//! In-memory LL-HLS state per stream: the packager (which keeps the window of parts,
//! segments and init segments), when each part was completed, and the event that wakes the
//! requests held on the stream.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use media_core::hls::ll::{LiveEdge, LlHlsConfig, Packager, PartId, RenditionReport, Skip};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use serde::Serialize;
use tokio::sync::watch;

use super::held::HeldLimiter;
use crate::poll_rate::PollRate;

/// Most part completion times remembered per stream, far more than a window holds.
const COMPLETED_PARTS: usize = 1024;

/// Everything the LL-HLS handlers share: the streams, the packager settings and the cap on
/// held requests.
#[derive(Debug, Clone)]
pub struct LlHls {
    /// Every stream's state.
    pub store: LlStore,
    /// The packager settings of every stream.
    pub config: LlHlsConfig,
    /// Held requests per client address.
    pub held: Arc<HeldLimiter>,
}

/// A stream's packager and the completion time of its recent parts.
#[derive(Debug)]
pub struct LlState {
    /// The packager of this stream.
    pub packager: Packager,
    completed: VecDeque<(PartId, u64)>,
    /// The part of the last chunk drained: a chunk of another one starts a part.
    pub(super) last_chunk: Option<PartId>,
}

impl LlState {
    /// When part `id` was completed, in unix milliseconds, while remembered.
    pub fn completed_ms(&self, id: PartId) -> Option<u64> {
        self.completed
            .iter()
            .rev()
            .find(|(p, _)| *p == id)
            .map(|&(_, ms)| ms)
    }

    /// Records that part `id` was completed at `unix_ms`.
    pub(super) fn record_part(&mut self, id: PartId, unix_ms: u64) {
        if self.completed.len() >= COMPLETED_PARTS {
            self.completed.pop_front();
        }
        self.completed.push_back((id, unix_ms));
    }
}

/// One stream: its state, and a counter of packager events that held requests watch.
#[derive(Debug)]
pub struct LlStream {
    state: RwLock<LlState>,
    /// Parts, segments, init segments, the first chunk of a part, and the stream's end: what
    /// held playlist and part requests wait for.
    events: watch::Sender<u64>,
    /// Every chunk: what responses streaming a part as it fills wait for.
    chunks: watch::Sender<u64>,
    closed: AtomicBool,
    /// Playlist requests, for the viewer estimate.
    polls: Mutex<PollRate>,
    /// The playlist as last rendered per `_HLS_skip` form, so that the requests a part wakes
    /// together share one rendering.
    rendered: Mutex<Vec<Rendered>>,
}

/// A rendered playlist and what it was rendered from.
#[derive(Debug)]
struct Rendered {
    edge: LiveEdge,
    skip: Skip,
    reports: Vec<RenditionReport>,
    text: Bytes,
}

/// What a drain of the packager's events calls for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wake {
    /// A part, segment or init segment was finished, or a part started.
    pub events: bool,
    /// A chunk was written.
    pub chunks: bool,
}

impl LlStream {
    /// A stream around a new packager.
    pub fn new(packager: Packager) -> Self {
        Self {
            state: RwLock::new(LlState {
                packager,
                completed: VecDeque::new(),
                last_chunk: None,
            }),
            events: watch::channel(0).0,
            chunks: watch::channel(0).0,
            closed: AtomicBool::new(false),
            polls: Mutex::new(PollRate::new(Instant::now())),
            rendered: Mutex::new(Vec::new()),
        }
    }

    /// Reads the state; never held across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, LlState> {
        self.state.read()
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, LlState> {
        self.state.write()
    }

    /// The media playlist now, in `skip` form with `reports`: rendered once per change of the
    /// stream and shared by every request that asks before the next one.
    pub fn playlist(&self, skip: Skip, reports: &[RenditionReport]) -> Bytes {
        let st = self.read();
        let edge = st.packager.live_edge();
        let mut rendered = self.rendered.lock();
        let fresh = |r: &&mut Rendered| r.edge == edge && r.reports == reports;
        if let Some(r) = rendered.iter_mut().find(|r| r.skip == skip).filter(fresh) {
            return r.text.clone();
        }
        let text = Bytes::from(st.packager.render(skip, reports));
        rendered.retain(|r| r.skip != skip);
        rendered.push(Rendered {
            edge,
            skip,
            reports: reports.to_vec(),
            text: text.clone(),
        });
        text
    }

    /// Records a playlist request at `now`, for the viewer estimate.
    pub fn record_poll(&self, now: Instant) {
        self.polls.lock().record(now);
    }

    /// Players following the stream: a player reloads the playlist about once per part, so
    /// the requests of the last target duration times `PART-TARGET` over it.
    pub fn estimated_viewers(&self, now: Instant) -> usize {
        let (window_secs, window_us, part_us) = {
            let st = self.read();
            let c = st.packager.config();
            (
                c.target_duration,
                c.target_duration_us().max(1),
                c.part_target_us(),
            )
        };
        let polls = self.polls.lock().recent(now, window_secs) as u64;
        let viewers = polls.saturating_mul(part_us).saturating_add(window_us / 2) / window_us;
        usize::try_from(viewers).unwrap_or(usize::MAX)
    }

    /// Resolves `changed()` at the next finished part, segment or init segment, part start,
    /// or the stream's end. Subscribe before looking at the state, so that no event between
    /// the two is missed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.events.subscribe()
    }

    /// Like [`Self::subscribe`], and also at every chunk.
    pub fn subscribe_chunks(&self) -> watch::Receiver<u64> {
        self.chunks.subscribe()
    }

    /// Wakes the requests waiting for what `wake` says happened.
    pub(super) fn notify(&self, wake: Wake) {
        if wake.events {
            self.events.send_modify(|n| *n = n.wrapping_add(1));
        }
        if wake.events || wake.chunks {
            self.chunks.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Marks the stream ended and wakes every held request.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify(Wake {
            events: true,
            chunks: true,
        });
    }

    /// True once the stream's packager task has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The stream's LL-HLS figures for the stats API.
    pub fn stats(&self) -> LlHlsStats {
        let st = self.read();
        let config = st.packager.config();
        let last = st.packager.live_edge().last_part;
        LlHlsStats {
            part_target_ms: u64::try_from(config.part_target.as_millis()).unwrap_or(u64::MAX),
            target_duration_secs: config.target_duration,
            last_msn: last.map(|p| p.msn),
            last_part: last.map(|p| p.part),
            forced_cuts: st.packager.forced_cuts(),
        }
    }
}

/// A stream's LL-HLS figures in `/api/v1/streams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LlHlsStats {
    /// `PART-TARGET` in milliseconds.
    pub part_target_ms: u64,
    /// `EXT-X-TARGETDURATION` in seconds.
    pub target_duration_secs: u64,
    /// Media Sequence Number of the last part's segment; none before the first part.
    pub last_msn: Option<u64>,
    /// Index of the last part in its segment.
    pub last_part: Option<u64>,
    /// Segments started without a keyframe.
    pub forced_cuts: u64,
}

/// Every stream's LL-HLS state, by stream key.
#[derive(Debug, Clone, Default)]
pub struct LlStore {
    streams: Arc<RwLock<HashMap<String, Arc<LlStream>>>>,
}

impl LlStore {
    /// Puts `stream` under `key`, replacing a previous life's state whose task has not yet
    /// left.
    pub fn insert(&self, key: &str, stream: Arc<LlStream>) {
        self.streams.write().insert(key.to_string(), stream);
    }

    /// Looks up a stream.
    pub fn get(&self, key: &str) -> Option<Arc<LlStream>> {
        self.streams.read().get(key).cloned()
    }

    /// Removes `stream` from `key`, unless a newer one replaced it.
    pub fn remove(&self, key: &str, stream: &Arc<LlStream>) {
        let mut streams = self.streams.write();
        if streams.get(key).is_some_and(|s| Arc::ptr_eq(s, stream)) {
            streams.remove(key);
        }
    }
}
