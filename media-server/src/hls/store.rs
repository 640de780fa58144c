//! In-memory HLS state per stream: the playlist window and the segment bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use media_core::hls::{ListedSegment, Playlist, Segment};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::poll_rate::PollRate;

/// One stream's playlist and segments.
#[derive(Debug)]
pub struct HlsStream {
    name: String,
    playlist: Playlist,
    segments: VecDeque<(u64, Bytes)>,
    text: Bytes,
    next_sequence: u64,
    keep: usize,
    changed: watch::Sender<u64>,
    polls: Mutex<PollRate>,
    forced_cuts: u64,
    /// Which segmenter writes here now; see [`HlsStore::create`].
    owner: u64,
    /// The next segment follows another life of the stream.
    discontinuity: bool,
    /// Input DTS (ms) and wall clock (unix ms) the segments are dated from: the first
    /// segment's start, taken again after a discontinuity or a timestamp jump back.
    clock: Option<(u64, u64)>,
}

impl HlsStream {
    fn new(name: String, window: usize, keep_extra: usize, target: u64) -> Self {
        Self {
            name,
            playlist: Playlist::new(window, target),
            segments: VecDeque::new(),
            text: Bytes::new(),
            next_sequence: 0,
            keep: window.saturating_add(keep_extra),
            changed: watch::channel(0).0,
            polls: Mutex::new(PollRate::new(Instant::now())),
            forced_cuts: 0,
            owner: 0,
            discontinuity: false,
            clock: None,
        }
    }

    /// Adds a finished segment, ending at wall clock `now_unix_ms`, slides the window and
    /// re-renders the playlist.
    pub fn add(&mut self, segment: Segment, discontinuity: bool, now_unix_ms: u64) {
        let discontinuity = discontinuity || std::mem::take(&mut self.discontinuity);
        let seq = self.next_sequence;
        self.next_sequence += 1;
        if !segment.keyframe_start {
            self.forced_cuts += 1;
        }
        let program_date_time_ms = self.date(&segment, discontinuity, now_unix_ms);
        self.playlist.push(ListedSegment {
            sequence: seq,
            duration: segment.duration,
            uri: format!("{}/{seq}.ts", self.name),
            discontinuity,
            program_date_time_ms,
        });
        self.segments.push_back((seq, segment.data));
        while self.segments.len() > self.keep {
            self.segments.pop_front();
        }
        self.text = Bytes::from(self.playlist.render());
        self.changed.send_replace(seq + 1);
    }

    /// Wall clock of `segment`'s first frame: the clock's start advanced by input time, so
    /// consecutive segments are dated exactly one duration apart.
    fn date(&mut self, segment: &Segment, discontinuity: bool, now_unix_ms: u64) -> u64 {
        let start = segment.start_dts_ms;
        let (dts, wall) = match self.clock {
            Some((dts, wall)) if !discontinuity && start >= dts => (dts, wall),
            _ => {
                let duration_ms = (segment.duration.clamp(0.0, 86_400.0) * 1000.0) as u64;
                *self
                    .clock
                    .insert((start, now_unix_ms.saturating_sub(duration_ms)))
            }
        };
        wall.saturating_add(start - dts)
    }

    /// The rendered playlist; empty until the first segment.
    pub fn playlist_text(&self) -> Bytes {
        self.text.clone()
    }

    /// The playlist model.
    pub fn playlist(&self) -> &Playlist {
        &self.playlist
    }

    /// A segment by sequence number, while still kept.
    pub fn segment(&self, seq: u64) -> Option<Bytes> {
        self.segments
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, b)| b.clone())
    }

    /// (peak, average) bits per second over the listed segments still kept; `None` before the
    /// first segment.
    pub fn bandwidth(&self) -> Option<(u64, u64)> {
        let mut peak = 0.0f64;
        let (mut bits, mut secs) = (0.0f64, 0.0f64);
        for (seq, duration) in self.playlist.segments() {
            let Some(data) = self.segment(seq) else {
                continue;
            };
            if duration <= 0.0 {
                continue;
            }
            let b = data.len() as f64 * 8.0;
            peak = peak.max(b / duration);
            bits += b;
            secs += duration;
        }
        (secs > 0.0).then(|| (peak.ceil() as u64, (bits / secs).ceil() as u64))
    }

    /// Resolves when a segment is added.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Segments that had to be cut without a keyframe (keyframes too far apart).
    pub fn forced_cuts(&self) -> u64 {
        self.forced_cuts
    }

    /// Records a playlist request at `now`, for the viewer estimate.
    pub fn record_poll(&self, now: Instant) {
        self.polls.lock().record(now);
    }

    /// Playlist requests within the last target duration: about one per active viewer.
    pub fn estimated_viewers(&self, now: Instant) -> usize {
        self.polls
            .lock()
            .recent(now, self.playlist.target_duration())
    }
}

/// Stream keys whose next sequence number is remembered after their state is removed.
const RETIRED_KEYS: usize = 4096;

/// Every stream's HLS state, by stream key.
#[derive(Debug, Clone, Default)]
pub struct HlsStore {
    streams: Arc<RwLock<HashMap<String, Arc<RwLock<HlsStream>>>>>,
    owners: Arc<AtomicU64>,
    retired: Arc<Mutex<Retired>>,
}

/// The next sequence number of streams that ended, so one that comes back carries on from
/// it; the oldest are forgotten past [`RETIRED_KEYS`].
#[derive(Debug, Default)]
struct Retired {
    next_sequence: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl Retired {
    fn insert(&mut self, key: &str, next_sequence: u64) {
        if self
            .next_sequence
            .insert(key.to_string(), next_sequence)
            .is_none()
        {
            self.order.push_back(key.to_string());
        }
        while self.order.len() > RETIRED_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.next_sequence.remove(&old);
            }
        }
    }

    fn take(&mut self, key: &str) -> u64 {
        let next = self.next_sequence.remove(key);
        if next.is_some() {
            self.order.retain(|k| k != key);
        }
        next.unwrap_or(0)
    }
}

/// A segmenter's claim on a key's HLS state, from [`HlsStore::create`].
#[derive(Debug)]
pub struct Claim {
    /// The state to write segments to.
    pub state: Arc<RwLock<HlsStream>>,
    owner: u64,
}

impl HlsStore {
    /// Claims the state for `key`, creating it. A stream that comes back carries on from its
    /// last life: the sequence numbers continue after a discontinuity, so a player never sees
    /// the media sequence go back. If the last life's state is still here (its segmenter not
    /// yet gone), the new one takes it over and the old segmenter's [`HlsStore::remove`]
    /// leaves it alone.
    pub fn create(&self, key: &str, window: usize, keep_extra: usize, target: u64) -> Claim {
        let owner = self.owners.fetch_add(1, Ordering::Relaxed) + 1;
        let mut streams = self.streams.write();
        let state = match streams.get(key) {
            Some(old) => {
                let mut s = old.write();
                s.owner = owner;
                s.discontinuity = s.next_sequence > 0;
                drop(s);
                old.clone()
            }
            None => {
                let name = key.rsplit('/').next().unwrap_or(key).to_string();
                let mut s = HlsStream::new(name, window, keep_extra, target);
                s.owner = owner;
                s.next_sequence = self.retired.lock().take(key);
                s.discontinuity = s.next_sequence > 0;
                let s = Arc::new(RwLock::new(s));
                streams.insert(key.to_string(), s.clone());
                s
            }
        };
        Claim { state, owner }
    }

    /// Looks up a stream.
    pub fn get(&self, key: &str) -> Option<Arc<RwLock<HlsStream>>> {
        self.streams.read().get(key).cloned()
    }

    /// Removes the state claimed by `claim`, unless a newer claim took it over.
    pub fn remove(&self, key: &str, claim: &Claim) {
        let mut streams = self.streams.write();
        if let Some(s) = streams.get(key) {
            let s = s.read();
            if s.owner == claim.owner {
                self.retired.lock().insert(key, s.next_sequence);
                drop(s);
                streams.remove(key);
            }
        }
    }

    /// Estimated HLS viewers for `key`.
    pub fn viewers(&self, key: &str) -> usize {
        self.get(key)
            .map_or(0, |s| s.read().estimated_viewers(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn segment(index: u64) -> Segment {
        Segment {
            index,
            duration: 1.0,
            start_dts_ms: index * 1000,
            keyframe_start: true,
            data: Bytes::from_static(b"ts"),
        }
    }

    fn listed(store: &HlsStore, key: &str) -> Vec<u64> {
        store.get(key).map_or_else(Vec::new, |s| {
            s.read()
                .playlist()
                .segments()
                .iter()
                .map(|&(q, _)| q)
                .collect()
        })
    }

    #[test]
    fn segments_are_dated_by_input_time_from_the_first_one() {
        let store = HlsStore::default();
        let out = store.create("live/d", 5, 0, 1);
        // The first segment ends at 10.000 s wall clock, so it began at 9.000 s; the next ones
        // are dated by their DTS whenever they are added.
        out.state.write().add(segment(0), false, 10_000);
        out.state.write().add(segment(1), false, 11_250);
        out.state.write().add(segment(0), true, 20_000);
        let text = String::from_utf8_lossy(&out.state.read().playlist_text()).into_owned();
        let dates: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
            .collect();
        assert_eq!(
            dates,
            [
                "1970-01-01T00:00:09.000Z",
                "1970-01-01T00:00:10.000Z",
                "1970-01-01T00:00:19.000Z"
            ],
            "{text}"
        );
    }

    #[test]
    fn a_new_life_survives_the_old_segmenter_leaving_late() {
        let store = HlsStore::default();
        let old = store.create("live/a", 3, 0, 1);
        old.state.write().add(segment(0), false, 0);
        let new = store.create("live/a", 3, 0, 1);
        store.remove("live/a", &old);
        new.state.write().add(segment(0), false, 0);
        assert_eq!(listed(&store, "live/a"), [0, 1], "taken over, not removed");
        let text = store.get("live/a").unwrap().read().playlist_text();
        assert!(String::from_utf8_lossy(&text).contains("#EXT-X-DISCONTINUITY"));
        store.remove("live/a", &new);
        assert!(store.get("live/a").is_none());
    }

    #[test]
    fn a_new_life_after_the_old_one_left_carries_on() {
        let store = HlsStore::default();
        let old = store.create("live/a", 3, 0, 1);
        old.state.write().add(segment(0), false, 0);
        old.state.write().add(segment(1), false, 0);
        store.remove("live/a", &old);
        let new = store.create("live/a", 3, 0, 1);
        new.state.write().add(segment(0), false, 0);
        assert_eq!(listed(&store, "live/a"), [2]);
        let text = String::from_utf8_lossy(&new.state.read().playlist_text()).into_owned();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:2"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY"), "{text}");
    }

    #[test]
    fn retired_keys_are_bounded() {
        let mut retired = Retired::default();
        for i in 0..RETIRED_KEYS + 10 {
            retired.insert(&format!("live/{i}"), 5);
        }
        assert_eq!(retired.next_sequence.len(), RETIRED_KEYS);
        assert_eq!(retired.take("live/0"), 0, "the oldest forgotten");
        assert_eq!(retired.take(&format!("live/{}", RETIRED_KEYS + 9)), 5);
        assert_eq!(retired.order.len(), RETIRED_KEYS - 1);
    }

    #[test]
    fn poll_rate_counts_the_window_in_fixed_memory() {
        let t0 = Instant::now();
        let mut rate = PollRate::new(t0);
        for ms in (0..10_000).step_by(10) {
            rate.record(t0 + Duration::from_millis(ms));
        }
        let end = t0 + Duration::from_millis(9_999);
        assert_eq!(rate.recent(end, 2), 200);
        assert_eq!(rate.recent(end, 1), 100);
        assert_eq!(
            rate.recent(end + Duration::from_secs(100), 2),
            0,
            "old seconds expire"
        );
        assert_eq!(
            rate.recent(end, 1000),
            1000,
            "the window is capped by the ring"
        );
    }
}
