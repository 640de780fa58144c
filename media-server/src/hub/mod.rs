//! Stream registry, GOP cache and fan-out from one publisher to many viewers.

mod frame;
mod publisher;
mod stream;
mod subscription;
mod viewer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use media_core::fanout::{Mailbox, QueueConfig, StartCache, ViewerQueue};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use frame::{Frame, FrameKind, RTMP_STREAM_ID};
pub use publisher::{MediaError, Publisher};
pub use stream::{MediaInfo, Stream};
pub use subscription::Subscription;
pub use viewer::Protocol;

use crate::config::{HubConfig, OnConflict};
use stream::PublisherSlot;
use viewer::ViewerTx;

/// New streams an output may have waiting before it misses one.
const NEW_STREAMS_QUEUE: usize = 1024;

/// A stream just created, with an output's subscription attached before its first frame.
#[derive(Debug)]
pub struct NewStream {
    /// The stream.
    pub stream: Arc<Stream>,
    /// The output's subscription, made when the stream was created.
    pub sub: Subscription,
}

/// Longest an output inside the server may fall behind before it skips: long enough that
/// only a stalled output does.
const INTERNAL_MAX_DELAY: Duration = Duration::from_secs(60);

/// Why a publish was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    /// Another publisher is live on the key and the policy is `refuse`.
    #[error("stream {0} is already being published")]
    Busy(String),
}

/// Viewer counts per protocol.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ViewerCounts {
    /// HTTP-FLV viewers.
    pub http_flv: usize,
    /// RTMP play viewers.
    pub rtmp: usize,
    /// HLS viewers, estimated from playlist requests.
    pub hls: usize,
}

/// One stream as reported by the stats API.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStats {
    /// `app/name`.
    pub key: String,
    /// True while a publisher is attached.
    pub live: bool,
    /// Codec facts from the sequence headers.
    #[serde(flatten)]
    pub media: MediaInfo,
    /// Measured video frame rate.
    pub fps: f64,
    /// Measured input bitrate in kbit/s.
    pub bitrate_in_kbps: f64,
    /// Seconds between the last two video keyframes (the encoder's GOP), once two arrived.
    pub keyframe_interval_secs: Option<f64>,
    /// Seconds since the current publisher started.
    pub uptime_secs: f64,
    /// Publish sessions seen on this key.
    pub publishes: u32,
    /// Frames received from publishers.
    pub frames_in: u64,
    /// Frames dropped for viewers that fell behind.
    pub frames_dropped: u64,
    /// Frames in the GOP cache.
    pub gop_frames: usize,
    /// Viewers per protocol.
    pub viewers: ViewerCounts,
    /// Problems with the stream its publisher should fix, e.g. keyframes too far apart.
    pub warnings: Vec<String>,
}

/// The stream registry; cheap to clone.
#[derive(Clone, Debug)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    config: HubConfig,
    on_conflict: OnConflict,
    next_viewer: AtomicU64,
    outputs: Mutex<Vec<mpsc::Sender<NewStream>>>,
}

impl Hub {
    /// An empty hub.
    pub fn new(config: HubConfig, on_conflict: OnConflict) -> Self {
        Self {
            inner: Arc::new(Inner {
                streams: Mutex::new(HashMap::new()),
                config,
                on_conflict,
                next_viewer: AtomicU64::new(1),
                outputs: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Registers an output: it gets every stream created from now on, each with an internal
    /// subscription made before the stream's first frame, so the output sees all of it.
    pub fn new_streams(&self) -> mpsc::Receiver<NewStream> {
        let (tx, rx) = mpsc::channel(NEW_STREAMS_QUEUE);
        self.inner.outputs.lock().push(tx);
        rx
    }

    /// Hands a new stream to every output still registered.
    fn announce(&self, stream: &Arc<Stream>) {
        let mut outputs = self.inner.outputs.lock();
        outputs.retain(|tx| !tx.is_closed());
        for tx in outputs.iter() {
            let sub = self.subscribe_stream(stream.clone(), Protocol::Internal);
            let new = NewStream {
                stream: stream.clone(),
                sub,
            };
            if tx.try_send(new).is_err() {
                tracing::warn!(
                    stream = stream.key(),
                    "an output is behind and misses a stream"
                );
            }
        }
    }

    /// Claims `key` for publishing, per the conflict policy. A publisher silent for longer
    /// than the publisher timeout is considered gone and always replaced.
    pub fn publish(&self, key: &str) -> Result<Publisher, PublishError> {
        let (stream, created) = {
            let mut streams = self.inner.streams.lock();
            match streams.get(key) {
                Some(s) => (s.clone(), false),
                None => {
                    let c = &self.inner.config;
                    let s = Arc::new(Stream::new(
                        key.to_string(),
                        StartCache::new(c.gop_max_frames, c.gop_max_bytes),
                    ));
                    streams.insert(key.to_string(), s.clone());
                    (s, true)
                }
            }
        };
        let publisher = {
            let mut state = stream.state.lock();
            if let Some(current) = &state.publisher {
                let silent = current.last_media.elapsed() >= self.inner.config.publisher_timeout();
                if !silent && self.inner.on_conflict == OnConflict::Refuse {
                    return Err(PublishError::Busy(key.to_string()));
                }
                current.cancel.cancel();
            }
            state.epoch += 1;
            state.start.clear_gop();
            let cancel = CancellationToken::new();
            state.publisher = Some(PublisherSlot {
                epoch: state.epoch,
                cancel: cancel.clone(),
                last_media: Instant::now(),
                started: Instant::now(),
            });
            state.idle_since = None;
            Publisher::new(
                stream.clone(),
                state.epoch,
                cancel,
                publisher::next_base(state.last_dts),
            )
        };
        if created {
            self.announce(&stream);
        }
        Ok(publisher)
    }

    /// Attaches a viewer to `key`; `None` if no such stream exists.
    pub fn subscribe(&self, key: &str, protocol: Protocol) -> Option<Subscription> {
        let stream = self.get(key)?;
        Some(self.subscribe_stream(stream, protocol))
    }

    /// Attaches a viewer to a stream already looked up.
    pub fn subscribe_stream(&self, stream: Arc<Stream>, protocol: Protocol) -> Subscription {
        let id = self.inner.next_viewer.fetch_add(1, Ordering::Relaxed);
        let c = &self.inner.config;
        let limits = QueueConfig {
            max_frames: c.viewer_queue_frames,
            audio_rides_video: c.audio_rides_video,
            max_delay: match protocol {
                Protocol::Internal => INTERNAL_MAX_DELAY,
                Protocol::HttpFlv | Protocol::Rtmp => c.viewer_max_delay(),
            },
        };
        let mailbox = {
            let mut state = stream.state.lock();
            let queue = ViewerQueue::new(limits, state.start.startup(), Instant::now());
            let mailbox = Arc::new(Mailbox::new(queue));
            state
                .viewers
                .push(ViewerTx::new(id, protocol, mailbox.clone()));
            mailbox
        };
        Subscription::new(mailbox, stream, id)
    }

    /// Looks up a stream by key.
    pub fn get(&self, key: &str) -> Option<Arc<Stream>> {
        self.inner.streams.lock().get(key).cloned()
    }

    /// Every stream's stats (HLS viewer counts are filled in by the HLS output).
    pub fn stats(&self) -> Vec<StreamStats> {
        let streams: Vec<Arc<Stream>> = self.inner.streams.lock().values().cloned().collect();
        let mut out: Vec<StreamStats> = streams
            .iter()
            .map(|s| {
                let st = s.state.lock();
                StreamStats {
                    key: s.key().to_string(),
                    live: st.publisher.is_some(),
                    media: st.info.clone(),
                    fps: (st.rate.fps * 100.0).round() / 100.0,
                    bitrate_in_kbps: (st.rate.bitrate_bps / 10.0).round() / 100.0,
                    keyframe_interval_secs: st
                        .rate
                        .keyframe_interval_ms
                        .map(|ms| ms as f64 / 1000.0),
                    uptime_secs: st
                        .publisher
                        .as_ref()
                        .map_or(0.0, |p| p.started.elapsed().as_secs_f64()),
                    publishes: st.epoch,
                    frames_in: s.frames_in.load(Ordering::Relaxed),
                    frames_dropped: s.frames_dropped.load(Ordering::Relaxed),
                    gop_frames: st.start.gop().len(),
                    viewers: ViewerCounts {
                        http_flv: st.viewer_count(Protocol::HttpFlv),
                        rtmp: st.viewer_count(Protocol::Rtmp),
                        hls: 0,
                    },
                    warnings: Vec::new(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Removes every stream, disconnecting publishers and ending viewers.
    pub fn close_all(&self) {
        let streams: Vec<Arc<Stream>> = self.inner.streams.lock().drain().map(|(_, s)| s).collect();
        for s in streams {
            s.close();
        }
    }

    /// Evicts publishers silent past the timeout and removes streams idle past the linger
    /// time, closing their viewers. Run periodically.
    pub fn sweep(&self) {
        let timeout = self.inner.config.publisher_timeout();
        let linger = self.inner.config.linger();
        let mut streams = self.inner.streams.lock();
        streams.retain(|_, stream| {
            let mut state = stream.state.lock();
            if state
                .publisher
                .as_ref()
                .is_some_and(|p| p.last_media.elapsed() >= timeout)
            {
                if let Some(p) = state.publisher.take() {
                    tracing::info!(stream = stream.key(), "publisher silent, evicting");
                    p.cancel.cancel();
                }
                state.idle_since = Some(Instant::now());
            }
            let expired = state.idle_since.is_some_and(|t| t.elapsed() >= linger);
            drop(state);
            if expired {
                tracing::info!(stream = stream.key(), "stream idle, removing");
                stream.close();
            }
            !expired
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn hub(on_conflict: OnConflict) -> Hub {
        Hub::new(HubConfig::default(), on_conflict)
    }

    fn avc(keyframe: bool) -> Bytes {
        let first = if keyframe { 0x17 } else { 0x27 };
        Bytes::from(vec![first, 1, 0, 0, 0, 0, 0, 0, 1, 0x65])
    }

    #[tokio::test]
    async fn second_publisher_refused_or_takes_over() {
        let h = hub(OnConflict::Refuse);
        let p1 = h.publish("live/a").expect("first publish");
        assert_eq!(
            h.publish("live/a").map(|_| ()),
            Err(PublishError::Busy("live/a".into()))
        );
        drop(p1);
        assert!(h.publish("live/a").is_ok(), "republish after leave");

        let h = hub(OnConflict::Takeover);
        let p1 = h.publish("live/b").expect("first publish");
        let _p2 = h.publish("live/b").expect("takeover");
        p1.kicked().await;
    }

    #[tokio::test]
    async fn viewer_starts_at_keyframe_and_timeline_continues_across_republish() {
        let h = hub(OnConflict::Refuse);
        let mut p = h.publish("live/a").expect("publish");
        p.push_video(1000, avc(false)).expect("video");
        p.push_video(1033, avc(true)).expect("video");
        p.push_video(1066, avc(false)).expect("video");
        let mut sub = h
            .subscribe("live/a", Protocol::HttpFlv)
            .expect("stream exists");
        let first = sub.recv().await.expect("gop frame");
        assert!(first.is_sync_point());
        assert_eq!(first.dts, 33);
        drop(p);
        let mut p = h.publish("live/a").expect("republish");
        p.push_video(0, avc(true)).expect("video");
        let _ = sub.recv().await.expect("second gop frame");
        let after = sub.recv().await.expect("republished frame");
        assert!(after.dts > 66, "timeline continues, got {}", after.dts);
        assert_eq!(after.epoch, 2);
        assert!(h.subscribe("live/none", Protocol::Rtmp).is_none());
    }
}
