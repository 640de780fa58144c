//! One stream key's shared state: publisher slot, sequence headers, GOP cache, viewers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use media_core::rtmp::StreamMetadata;
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use media_core::fanout::StartCache;

use super::frame::{Frame, FrameKind};
use super::viewer::{Protocol, ViewerTx};

/// A stream key and everything the hub knows about it.
#[derive(Debug)]
pub struct Stream {
    key: String,
    pub(crate) state: Mutex<StreamState>,
    /// Frames received from publishers.
    pub(crate) frames_in: AtomicU64,
    /// Frames dropped for viewers that fell behind.
    pub(crate) frames_dropped: AtomicU64,
}

/// The live publisher of a stream.
#[derive(Debug)]
pub(crate) struct PublisherSlot {
    pub epoch: u32,
    pub cancel: CancellationToken,
    pub last_media: Instant,
    pub started: Instant,
}

/// Codec facts learned from sequence headers.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MediaInfo {
    /// RFC 6381 video codec, e.g. `avc1.64001f`.
    pub video_codec: Option<String>,
    /// Coded width from the SPS.
    pub width: Option<u32>,
    /// Coded height from the SPS.
    pub height: Option<u32>,
    /// RFC 6381 audio codec, e.g. `mp4a.40.2`.
    pub audio_codec: Option<String>,
    /// Audio sample rate in Hz.
    pub sample_rate: Option<u32>,
    /// Audio channel count.
    pub channels: Option<u8>,
}

/// Input rate over a rolling window of about two seconds.
#[derive(Debug)]
pub(crate) struct RateMeter {
    window_start: Instant,
    bytes: u64,
    video_frames: u64,
    pub bitrate_bps: f64,
    pub fps: f64,
    last_keyframe_dts: Option<u64>,
    /// Milliseconds between the last two video keyframes.
    pub keyframe_interval_ms: Option<u64>,
}

impl RateMeter {
    fn new() -> Self {
        Self {
            window_start: Instant::now(),
            bytes: 0,
            video_frames: 0,
            bitrate_bps: 0.0,
            fps: 0.0,
            last_keyframe_dts: None,
            keyframe_interval_ms: None,
        }
    }

    fn record(&mut self, frame: &Frame) {
        self.bytes += frame.payload.len() as u64;
        if frame.kind == FrameKind::Video && !frame.header {
            self.video_frames += 1;
            if frame.keyframe {
                if let Some(last) = self.last_keyframe_dts.filter(|&last| frame.dts > last) {
                    self.keyframe_interval_ms = Some(frame.dts - last);
                }
                self.last_keyframe_dts = Some(frame.dts);
            }
        }
        let elapsed = self.window_start.elapsed();
        if elapsed >= Duration::from_secs(2) {
            let secs = elapsed.as_secs_f64();
            self.bitrate_bps = self.bytes as f64 * 8.0 / secs;
            self.fps = self.video_frames as f64 / secs;
            *self = Self {
                bitrate_bps: self.bitrate_bps,
                fps: self.fps,
                last_keyframe_dts: self.last_keyframe_dts,
                keyframe_interval_ms: self.keyframe_interval_ms,
                ..Self::new()
            };
        }
    }
}

/// Mutable per-stream state, behind one short-held lock.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub epoch: u32,
    pub publisher: Option<PublisherSlot>,
    pub idle_since: Option<Instant>,
    pub metadata: Option<Arc<StreamMetadata>>,
    pub start: StartCache<Frame>,
    pub viewers: Vec<ViewerTx>,
    pub last_dts: Option<u64>,
    pub info: MediaInfo,
    pub rate: RateMeter,
}

impl StreamState {
    /// Sends a frame to every viewer, caching it as header, metadata or GOP as fits; returns
    /// the frames dropped for viewers that are behind.
    pub fn dispatch(&mut self, now: Instant, frame: Frame) -> u64 {
        self.rate.record(&frame);
        self.last_dts = Some(self.last_dts.map_or(frame.dts, |d| d.max(frame.dts)));
        self.start.record(&frame);
        let headers = self.start.headers();
        let mut dropped = 0;
        self.viewers
            .retain(|v| match v.offer(now, &frame, headers) {
                Some(n) => {
                    dropped += n;
                    true
                }
                None => false,
            });
        dropped
    }

    /// Viewers per protocol.
    pub fn viewer_count(&self, protocol: Protocol) -> usize {
        self.viewers
            .iter()
            .filter(|v| v.protocol == protocol)
            .count()
    }
}

impl Stream {
    pub(crate) fn new(key: String, start: StartCache<Frame>) -> Self {
        Self {
            key,
            state: Mutex::new(StreamState {
                epoch: 0,
                publisher: None,
                idle_since: Some(Instant::now()),
                metadata: None,
                start,
                viewers: Vec::new(),
                last_dts: None,
                info: MediaInfo::default(),
                rate: RateMeter::new(),
            }),
            frames_in: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
        }
    }

    /// The stream key, `app/name`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// True while a publisher is attached.
    pub fn is_live(&self) -> bool {
        self.state.lock().publisher.is_some()
    }

    /// Current metadata as the publisher sent it.
    pub fn metadata(&self) -> Option<Arc<StreamMetadata>> {
        self.state.lock().metadata.clone()
    }

    /// Codec facts from the sequence headers.
    pub fn info(&self) -> MediaInfo {
        self.state.lock().info.clone()
    }

    /// Measured input (frames per second, bits per second) over the last couple of seconds.
    pub fn input_rate(&self) -> (f64, f64) {
        let state = self.state.lock();
        (state.rate.fps, state.rate.bitrate_bps)
    }

    /// The current publish session; 0 before the first.
    pub fn epoch(&self) -> u32 {
        self.state.lock().epoch
    }

    /// Counts frames received and frames dropped for viewers.
    pub(crate) fn count(&self, dropped: u64) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        if dropped > 0 {
            self.frames_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    pub(crate) fn remove_viewer(&self, id: u64) {
        self.state.lock().viewers.retain(|v| v.id != id);
    }

    /// Closes every viewer queue (the stream is going away).
    pub(crate) fn close(&self) {
        let mut state = self.state.lock();
        state.viewers.clear();
        if let Some(p) = state.publisher.take() {
            p.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_interval_is_the_distance_between_the_last_two_keyframes() {
        let video = |dts, keyframe| {
            Frame::new(
                FrameKind::Video,
                dts,
                0,
                keyframe,
                false,
                1,
                bytes::Bytes::from_static(b"x"),
            )
        };
        let mut rate = RateMeter::new();
        rate.record(&video(0, true));
        assert_eq!(rate.keyframe_interval_ms, None);
        for dts in (33..2000).step_by(33) {
            rate.record(&video(dts, false));
        }
        rate.record(&video(2000, true));
        assert_eq!(rate.keyframe_interval_ms, Some(2000));
        rate.record(&video(3000, true));
        assert_eq!(rate.keyframe_interval_ms, Some(1000));
    }
}
