//! HTTP-FLV fan-out: one origin connection per stream however many viewers, a GOP cache so
//! late joiners start at a keyframe, and the upstream closed shortly after the last viewer.
//! The start cache, viewer queues and skip policy are media-core's fan-out core, the same the
//! origin's hub uses; each tag's bytes are built once and shared by every viewer.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use media_core::fanout::{Class, Mailbox, QueueConfig, StartCache, Unit, ViewerQueue};
use media_core::flv::{self, Tag};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::upstream::Upstream;

/// When a viewer skips to the next keyframe: more tags queued, or one queued longer.
const VIEWER_QUEUE: QueueConfig = QueueConfig {
    max_frames: 1024,
    max_delay: Duration::from_secs(3),
    audio_rides_video: true,
};

/// Longest GOP kept, in tags and bytes, so a stream without keyframes cannot grow memory.
const MAX_GOP_TAGS: usize = 4096;
const MAX_GOP_BYTES: usize = 16 << 20;

/// Offset of the audio/video flags byte in the FLV file header.
const FLAGS_AT: usize = 4;

/// What the upstream connection answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opened {
    /// 200: tags are flowing.
    Live,
    /// The origin's non-200 status, or 502 when no origin answered.
    Failed(u16),
}

/// One tag as it fans out: what it is, and its whole FLV form built once.
#[derive(Debug, Clone)]
struct EdgeTag {
    class: Class,
    size: usize,
    wire: Bytes,
}

impl EdgeTag {
    fn new(tag: &Tag) -> Self {
        let class = match tag.tag_type {
            flv::TAG_SCRIPT => Class::Script,
            flv::TAG_AUDIO => match flv::parse_audio(&tag.data) {
                Ok(a) if a.sequence_header => Class::AudioHeader,
                _ => Class::Audio,
            },
            _ => match flv::parse_video(&tag.data) {
                Ok(v) if v.packet == flv::VideoPacket::SequenceHeader => Class::VideoHeader,
                Ok(v) if v.keyframe && v.packet == flv::VideoPacket::Nalu => Class::Keyframe,
                _ => Class::Video,
            },
        };
        let mut wire = BytesMut::new();
        flv::write_tag(&mut wire, tag.tag_type, tag.timestamp, &tag.data);
        Self {
            class,
            size: tag.data.len(),
            wire: wire.freeze(),
        }
    }
}

impl Unit for EdgeTag {
    fn class(&self) -> Class {
        self.class
    }

    fn size(&self) -> usize {
        self.size
    }
}

/// What the channel knows: the origin's track flags, the start cache, the viewers.
struct State {
    /// Audio and video flags of the origin's FLV header.
    has_audio: bool,
    has_video: bool,
    start: StartCache<EdgeTag>,
    viewers: Vec<Arc<Mailbox<EdgeTag>>>,
}

/// One stream relayed from the origin.
struct Channel {
    state: Mutex<State>,
    opened: watch::Receiver<Option<Opened>>,
    viewers: AtomicUsize,
    stop: CancellationToken,
}

/// The relayed streams by path.
pub struct FlvFanout {
    channels: Mutex<HashMap<String, Arc<Channel>>>,
    upstream: Arc<Upstream>,
    metrics: Arc<Metrics>,
    linger: Duration,
}

impl FlvFanout {
    /// No streams yet; upstreams are closed `linger` after their last viewer leaves.
    pub fn new(upstream: Arc<Upstream>, metrics: Arc<Metrics>, linger: Duration) -> Arc<Self> {
        Arc::new(Self {
            channels: Mutex::new(HashMap::new()),
            upstream,
            metrics,
            linger,
        })
    }

    /// Streams relayed right now.
    pub fn upstreams(&self) -> usize {
        self.channels.lock().len()
    }

    /// Closes every upstream and ends every viewer's stream.
    pub fn close_all(&self) {
        for (_, channel) in self.channels.lock().drain() {
            channel.stop.cancel();
        }
    }

    /// `GET /{app}/{stream}.flv` through the shared upstream.
    pub async fn play(self: &Arc<Self>, path: &str) -> Response {
        let channel = self.join(path);
        let viewer = Viewer {
            fanout: self.clone(),
            path: path.to_string(),
            channel: channel.clone(),
        };
        let mut opened = channel.opened.clone();
        let state = match opened.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(Opened::Failed(502)),
            Err(_) => Opened::Failed(502),
        };
        if let Opened::Failed(code) = state {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            return (status, "stream not available\n").into_response();
        }
        let (header, mailbox) = {
            let mut s = channel.state.lock();
            let header = flv::file_header(s.has_audio, s.has_video);
            let queue = ViewerQueue::new(VIEWER_QUEUE, s.start.startup(), Instant::now());
            let mailbox = Arc::new(Mailbox::new(queue));
            s.viewers.push(mailbox.clone());
            (header, mailbox)
        };
        let out = ViewerOut {
            viewer,
            mailbox,
            chunks: VecDeque::from([Bytes::copy_from_slice(&header)]),
            batch: Vec::new(),
        };
        let metrics = self.metrics.clone();
        let stream = futures::stream::unfold(out, move |mut out| {
            let metrics = metrics.clone();
            async move {
                let chunk = out.next().await?;
                metrics.egress_bytes.inc_by(chunk.len() as u64);
                Some((Ok::<_, Infallible>(chunk), out))
            }
        });
        let mut r = Body::from_stream(stream).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("video/x-flv"),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        );
        h.insert("x-cache", HeaderValue::from_static("FANOUT"));
        r
    }

    /// The channel for `path`, opening the upstream if there is none; counts a viewer.
    fn join(self: &Arc<Self>, path: &str) -> Arc<Channel> {
        let mut channels = self.channels.lock();
        if let Some(c) = channels.get(path) {
            c.viewers.fetch_add(1, Ordering::SeqCst);
            return c.clone();
        }
        let (opened_tx, opened) = watch::channel(None);
        let channel = Arc::new(Channel {
            state: Mutex::new(State {
                has_audio: false,
                has_video: false,
                start: StartCache::new(MAX_GOP_TAGS, MAX_GOP_BYTES),
                viewers: Vec::new(),
            }),
            opened,
            viewers: AtomicUsize::new(1),
            stop: CancellationToken::new(),
        });
        channels.insert(path.to_string(), channel.clone());
        let fanout = self.clone();
        let relay = channel.clone();
        let path = path.to_string();
        tokio::spawn(async move {
            fanout.relay(&path, &relay, opened_tx).await;
            relay.stop.cancel();
            relay.end_viewers();
            let mut channels = fanout.channels.lock();
            if channels.get(&path).is_some_and(|c| Arc::ptr_eq(c, &relay)) {
                channels.remove(&path);
            }
        });
        channel
    }

    /// Reads the origin stream into the channel until it ends or the channel is stopped.
    async fn relay(&self, path: &str, channel: &Channel, opened: watch::Sender<Option<Opened>>) {
        let mut response = match self.upstream.open(path).await {
            Ok(r) if r.status() == reqwest::StatusCode::OK => r,
            Ok(r) => {
                let _ = opened.send(Some(Opened::Failed(r.status().as_u16())));
                return;
            }
            Err(e) => {
                tracing::warn!(%path, "no origin for FLV stream: {e}");
                let _ = opened.send(Some(Opened::Failed(502)));
                return;
            }
        };
        let mut opened = Some(opened);
        let mut head = Vec::new();
        let mut reader = flv::Reader::new();
        loop {
            let chunk = tokio::select! {
                _ = channel.stop.cancelled() => return,
                c = response.chunk() => c,
            };
            let chunk = match chunk {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(%path, "origin FLV stream broke: {e}");
                    return;
                }
            };
            self.metrics.back_origin_bytes.inc_by(chunk.len() as u64);
            if let Some(tx) = opened.take_if(|_| {
                head.extend_from_slice(&chunk[..chunk.len().min(FLAGS_AT + 1)]);
                head.len() > FLAGS_AT
            }) {
                let flags = head[FLAGS_AT];
                let mut s = channel.state.lock();
                s.has_audio = flags & 0x04 != 0;
                s.has_video = flags & 0x01 != 0;
                drop(s);
                let _ = tx.send(Some(Opened::Live));
            }
            reader.push(&chunk);
            loop {
                match reader.next_tag() {
                    Ok(Some(tag)) => channel.publish(tag),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(%path, "bad FLV from origin: {e}");
                        return;
                    }
                }
            }
        }
    }

    /// Called when a viewer leaves: closes the upstream after `linger` if nobody came back.
    fn leave(self: &Arc<Self>, path: &str, channel: &Arc<Channel>) {
        if channel.viewers.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        let fanout = self.clone();
        let path = path.to_string();
        let channel = channel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(fanout.linger).await;
            let mut channels = fanout.channels.lock();
            if channel.viewers.load(Ordering::SeqCst) == 0 {
                channel.stop.cancel();
                if channels
                    .get(&path)
                    .is_some_and(|c| Arc::ptr_eq(c, &channel))
                {
                    channels.remove(&path);
                }
            }
        });
    }
}

impl Channel {
    /// Records a tag for late joiners and offers it to current viewers.
    fn publish(&self, tag: Tag) {
        let tag = EdgeTag::new(&tag);
        let now = Instant::now();
        let mut s = self.state.lock();
        s.start.record(&tag);
        let State { start, viewers, .. } = &mut *s;
        let headers = start.headers();
        viewers.retain(|v| v.offer(now, &tag, headers).is_some());
    }

    /// The stream ended: every viewer gets what is queued, then the end of its response.
    fn end_viewers(&self) {
        for v in self.state.lock().viewers.drain(..) {
            v.close();
        }
    }
}

/// Counts a viewer while its response body lives.
struct Viewer {
    fanout: Arc<FlvFanout>,
    path: String,
    channel: Arc<Channel>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.fanout.leave(&self.path, &self.channel);
    }
}

/// The byte stream of one viewer: FLV header, start tags, then live tags, each tag's bytes
/// shared with every other viewer.
struct ViewerOut {
    viewer: Viewer,
    mailbox: Arc<Mailbox<EdgeTag>>,
    chunks: VecDeque<Bytes>,
    batch: Vec<EdgeTag>,
}

impl ViewerOut {
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(c) = self.chunks.pop_front() {
            return Some(c);
        }
        let (mailbox, batch) = (&self.mailbox, &mut self.batch);
        let open = tokio::select! {
            _ = self.viewer.channel.stop.cancelled() => false,
            open = poll_fn(|cx| mailbox.poll_drain(cx, batch)) => open,
        };
        if !open {
            return None;
        }
        self.chunks.extend(self.batch.drain(..).map(|t| t.wire));
        self.chunks.pop_front()
    }
}

impl Drop for ViewerOut {
    fn drop(&mut self) {
        self.mailbox.leave();
    }
}
