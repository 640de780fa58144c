//! In-memory HLS state per stream: the playlist window and the segment bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media_core::hls::{Playlist, Segment};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

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
    polls: Mutex<VecDeque<Instant>>,
}

impl HlsStream {
    fn new(name: String, window: usize, keep_extra: usize, target: u64) -> Self {
        Self {
            name,
            playlist: Playlist::new(window, target),
            segments: VecDeque::new(),
            text: Bytes::new(),
            next_sequence: 0,
            keep: window + keep_extra,
            changed: watch::channel(0).0,
            polls: Mutex::new(VecDeque::new()),
        }
    }

    /// Adds a finished segment, slides the window and re-renders the playlist.
    pub fn add(&mut self, segment: Segment, discontinuity: bool) {
        let seq = self.next_sequence;
        self.next_sequence += 1;
        self.playlist.push(
            seq,
            segment.duration,
            format!("{}/{seq}.ts", self.name),
            discontinuity,
        );
        self.segments.push_back((seq, segment.data));
        while self.segments.len() > self.keep {
            self.segments.pop_front();
        }
        self.text = Bytes::from(self.playlist.render());
        self.changed.send_replace(seq + 1);
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

    /// Records a playlist request, for the viewer estimate.
    pub fn record_poll(&self) {
        self.polls.lock().push_back(Instant::now());
    }

    /// Playlist requests within the last target duration: about one per active viewer.
    pub fn estimated_viewers(&self) -> usize {
        let window = Duration::from_secs(self.playlist.target_duration().max(1));
        let mut polls = self.polls.lock();
        while polls.front().is_some_and(|t| t.elapsed() > window) {
            polls.pop_front();
        }
        polls.len()
    }
}

/// Every stream's HLS state, by stream key.
#[derive(Debug, Clone, Default)]
pub struct HlsStore {
    streams: Arc<RwLock<HashMap<String, Arc<RwLock<HlsStream>>>>>,
}

impl HlsStore {
    /// Creates (or replaces) the state for `key`.
    pub fn create(
        &self,
        key: &str,
        window: usize,
        keep_extra: usize,
        target: u64,
    ) -> Arc<RwLock<HlsStream>> {
        let name = key.rsplit('/').next().unwrap_or(key).to_string();
        let s = Arc::new(RwLock::new(HlsStream::new(
            name, window, keep_extra, target,
        )));
        self.streams.write().insert(key.to_string(), s.clone());
        s
    }

    /// Looks up a stream.
    pub fn get(&self, key: &str) -> Option<Arc<RwLock<HlsStream>>> {
        self.streams.read().get(key).cloned()
    }

    /// Removes a stream's state.
    pub fn remove(&self, key: &str) {
        self.streams.write().remove(key);
    }

    /// Estimated HLS viewers for `key`.
    pub fn viewers(&self, key: &str) -> usize {
        self.get(key).map_or(0, |s| s.read().estimated_viewers())
    }
}
