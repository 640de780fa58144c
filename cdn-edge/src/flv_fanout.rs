//! HTTP-FLV fan-out: one origin connection per stream however many viewers, a GOP cache so
//! late joiners start at a keyframe, and the upstream closed shortly after the last viewer.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use media_core::flv::{self, Tag};
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::upstream::Upstream;

/// Tags a viewer may have queued before it skips to the next keyframe.
const VIEWER_QUEUE: usize = 1024;

/// Longest GOP kept, in tags, so a stream without keyframes cannot grow memory.
const MAX_GOP_TAGS: usize = 4096;

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

/// What a new viewer needs before live tags.
#[derive(Default)]
struct Start {
    /// Audio and video flags of the origin's FLV header.
    has_audio: bool,
    has_video: bool,
    metadata: Option<Tag>,
    video_config: Option<Tag>,
    audio_config: Option<Tag>,
    gop: Vec<Tag>,
}

/// One stream relayed from the origin.
struct Channel {
    start: Mutex<Start>,
    tx: broadcast::Sender<Tag>,
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
        let (header, queued, rx) = {
            let s = channel.start.lock();
            let header = flv::file_header(s.has_audio, s.has_video);
            let queued: VecDeque<Tag> = [&s.metadata, &s.video_config, &s.audio_config]
                .into_iter()
                .flatten()
                .chain(s.gop.iter())
                .cloned()
                .collect();
            (header, queued, channel.tx.subscribe())
        };
        let out = ViewerOut {
            viewer,
            rx,
            queued,
            chunks: VecDeque::from([Bytes::copy_from_slice(&header)]),
            framer: flv::StreamFramer::new(),
            skip_to_keyframe: false,
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
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
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
            start: Mutex::new(Start::default()),
            tx: broadcast::channel(VIEWER_QUEUE).0,
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
                let mut s = channel.start.lock();
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

/// True for a video tag holding a keyframe picture (not a sequence header).
fn is_keyframe(tag: &Tag) -> bool {
    tag.tag_type == flv::TAG_VIDEO
        && flv::parse_video(&tag.data)
            .is_ok_and(|v| v.keyframe && v.packet == flv::VideoPacket::Nalu)
}

impl Channel {
    /// Records a tag for late joiners and sends it to current viewers.
    fn publish(&self, tag: Tag) {
        let mut s = self.start.lock();
        match tag.tag_type {
            flv::TAG_SCRIPT => s.metadata = Some(tag.clone()),
            flv::TAG_VIDEO
                if flv::parse_video(&tag.data)
                    .is_ok_and(|v| v.packet == flv::VideoPacket::SequenceHeader) =>
            {
                s.video_config = Some(tag.clone());
            }
            flv::TAG_AUDIO if flv::parse_audio(&tag.data).is_ok_and(|a| a.sequence_header) => {
                s.audio_config = Some(tag.clone());
            }
            _ if is_keyframe(&tag) => {
                s.gop.clear();
                s.gop.push(tag.clone());
            }
            _ if !s.gop.is_empty() && s.gop.len() < MAX_GOP_TAGS => s.gop.push(tag.clone()),
            _ => {}
        }
        let _ = self.tx.send(tag);
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

/// The byte stream of one viewer: FLV header, start tags, then live tags. Tag bodies are
/// shared with every other viewer, never copied.
struct ViewerOut {
    viewer: Viewer,
    rx: broadcast::Receiver<Tag>,
    queued: VecDeque<Tag>,
    chunks: VecDeque<Bytes>,
    framer: flv::StreamFramer,
    skip_to_keyframe: bool,
}

impl ViewerOut {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(c) = self.chunks.pop_front() {
                return Some(c);
            }
            let tag = match self.queued.pop_front() {
                Some(t) => t,
                None => self.live_tag().await?,
            };
            let prefix = self
                .framer
                .prefix(tag.tag_type, tag.timestamp, tag.data.len());
            self.chunks.push_back(prefix);
            self.chunks.push_back(tag.data);
        }
    }

    /// The next live tag; a viewer that fell behind resumes at the next keyframe.
    async fn live_tag(&mut self) -> Option<Tag> {
        loop {
            let tag = tokio::select! {
                _ = self.viewer.channel.stop.cancelled() => return None,
                t = self.rx.recv() => t,
            };
            match tag {
                Ok(t) if self.skip_to_keyframe && t.tag_type != flv::TAG_SCRIPT => {
                    if is_keyframe(&t) {
                        self.skip_to_keyframe = false;
                        return Some(t);
                    }
                }
                Ok(t) => return Some(t),
                Err(broadcast::error::RecvError::Lagged(_)) => self.skip_to_keyframe = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
