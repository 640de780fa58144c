//! Everything a session counts, turned into [`Progress`] and [`Summary`].

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::latency::{unix_micros, Latency, LiveEdge};
use crate::qoe::{Buffer, QoeConfig};
use crate::summary::{LlHlsRequests, PerTrack, Progress, Protocol, Summary};

/// An elementary stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Track {
    Video,
    Audio,
}

/// Counters, the buffer model and the latency histogram of one session.
pub(crate) struct Stats {
    /// Stamps are read for latency; off, frames are only counted.
    stamps: bool,
    url: String,
    protocol: Option<Protocol>,
    started: Instant,
    buffer: Buffer,
    latency: Latency,
    live_edge: LiveEdge,
    bytes: u64,
    video_frames: u64,
    audio_frames: u64,
    first_video_keyframe: Option<bool>,
    dts_backwards: PerTrack,
    last_dts: [Option<i64>; 2],
    discontinuities: u64,
    reconnects: u64,
    errors: BTreeMap<String, u64>,
    llhls: Option<LlHlsRequests>,
    tick_at: Duration,
    tick_bytes: u64,
}

impl Stats {
    pub(crate) fn new(url: &str, protocol: Option<Protocol>, qoe: QoeConfig) -> Self {
        Self {
            stamps: true,
            url: url.to_string(),
            protocol,
            started: Instant::now(),
            buffer: Buffer::new(qoe),
            latency: Latency::new(),
            live_edge: LiveEdge::new(),
            bytes: 0,
            video_frames: 0,
            audio_frames: 0,
            first_video_keyframe: None,
            dts_backwards: PerTrack::default(),
            last_dts: [None, None],
            discontinuities: 0,
            reconnects: 0,
            errors: BTreeMap::new(),
            llhls: None,
            tick_at: Duration::ZERO,
            tick_bytes: 0,
        }
    }

    /// Wall time since the session started.
    pub(crate) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The protocol the stream turned out to use (an HLS URL may serve LL-HLS).
    pub(crate) fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = Some(protocol);
    }

    /// The LL-HLS request counters, created on first use.
    pub(crate) fn llhls(&mut self) -> &mut LlHlsRequests {
        self.llhls.get_or_insert_with(LlHlsRequests::default)
    }

    pub(crate) fn add_bytes(&mut self, n: usize) {
        self.bytes += n as u64;
    }

    /// Turns latency measurement on or off.
    pub(crate) fn set_stamps(&mut self, on: bool) {
        self.stamps = on;
    }

    /// True when latency stamps are read.
    pub(crate) fn stamps(&self) -> bool {
        self.stamps
    }

    /// One received frame with its DTS in milliseconds; for video, whether it is a keyframe
    /// and its SEI stamp, taken as available to the player now.
    pub(crate) fn frame(&mut self, track: Track, dts_ms: i64, keyframe: bool, stamp: Option<u64>) {
        let stamp = stamp.filter(|_| self.stamps);
        let slot = match track {
            Track::Video => {
                self.video_frames += 1;
                self.first_video_keyframe.get_or_insert(keyframe);
                0
            }
            Track::Audio => {
                self.audio_frames += 1;
                1
            }
        };
        if self.last_dts[slot].is_some_and(|last| dts_ms < last) {
            match track {
                Track::Video => self.dts_backwards.video += 1,
                Track::Audio => self.dts_backwards.audio += 1,
            }
        }
        self.last_dts[slot] = Some(dts_ms);
        let latency = stamp.map(|stamp| {
            let now_micros = unix_micros();
            self.latency.record(stamp, now_micros);
            now_micros.saturating_sub(stamp)
        });
        let now = self.now();
        self.live_edge.frame(now, latency);
    }

    /// A new connection: its first frames are a new join burst (a GOP cache, for instance).
    pub(crate) fn rejoin(&mut self) {
        self.live_edge.rejoin();
    }

    /// Forgets the previous DTS of each track: a new connection or a discontinuity starts a
    /// new timeline.
    pub(crate) fn new_timeline(&mut self) {
        self.last_dts = [None, None];
    }

    /// Media `[start, end)` of the continuous playback timeline is available now.
    pub(crate) fn media(&mut self, start: Duration, end: Duration) {
        let now = self.now();
        self.buffer.on_media(now, start, end);
    }

    pub(crate) fn discontinuity(&mut self) {
        self.discontinuities += 1;
    }

    pub(crate) fn reconnected(&mut self) {
        self.reconnects += 1;
    }

    /// Counts an error of `kind`.
    pub(crate) fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
    }

    /// The live view; the bitrate covers the time since the previous call.
    pub(crate) fn progress(&mut self) -> Progress {
        let now = self.now();
        self.buffer.advance(now);
        self.live_edge.settle(now);
        let window = now.saturating_sub(self.tick_at);
        let bitrate_kbps = kbps(self.bytes - self.tick_bytes, window);
        self.tick_at = now;
        self.tick_bytes = self.bytes;
        let report = self.buffer.report(now);
        Progress {
            elapsed_secs: now.as_secs_f64(),
            state: self.buffer.state(),
            buffer_ms: self.buffer.buffered(now).as_millis() as u64,
            bitrate_kbps,
            latency_ms: self.latency.last_ms(),
            live_latency_ms: self.live_edge.last_ms(),
            stalls: report.stalls,
            reconnects: self.reconnects,
        }
    }

    /// The totals now.
    pub(crate) fn summary(&self) -> Summary {
        let now = self.now();
        let qoe = self.buffer.report(now);
        let mut live_edge = self.live_edge.clone();
        live_edge.settle(now);
        let viewing = qoe.played + qoe.stall_time;
        let stalls_per_minute = if viewing.is_zero() {
            0.0
        } else {
            qoe.stalls as f64 * 60.0 / viewing.as_secs_f64()
        };
        Summary {
            url: self.url.clone(),
            protocol: self.protocol,
            startup_ms: qoe.startup.map(|d| d.as_secs_f64() * 1000.0),
            stalls: qoe.stalls,
            stall_ms: qoe.stall_time.as_secs_f64() * 1000.0,
            stalls_per_minute,
            played_secs: qoe.played.as_secs_f64(),
            elapsed_secs: now.as_secs_f64(),
            bytes: self.bytes,
            bitrate_kbps: kbps(self.bytes, now),
            video_frames: self.video_frames,
            audio_frames: self.audio_frames,
            first_video_keyframe: self.first_video_keyframe,
            dts_backwards: self.dts_backwards,
            discontinuities: self.discontinuities,
            reconnects: self.reconnects,
            latency: self.latency.summary(),
            live_latency: live_edge.live().summary(),
            joins: live_edge.joins().to_vec(),
            errors: self.errors.clone(),
            llhls: self.llhls,
            latency_histogram: self.latency.histogram().clone(),
            live_latency_histogram: live_edge.live().histogram().clone(),
        }
    }
}

fn kbps(bytes: u64, over: Duration) -> f64 {
    if over.is_zero() {
        0.0
    } else {
        bytes as f64 * 8.0 / over.as_secs_f64() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        Stats::new(
            "rtmp://h/a/b",
            Some(Protocol::Rtmp),
            QoeConfig {
                startup_buffer: Duration::ZERO,
                rebuffer: Duration::from_millis(500),
            },
        )
    }

    #[test]
    fn dts_backwards_is_counted_per_track_and_reset_by_a_new_timeline() {
        let mut s = stats();
        s.frame(Track::Video, 0, true, None);
        s.frame(Track::Video, 40, false, None);
        s.frame(Track::Video, 20, false, None);
        s.frame(Track::Audio, 10, false, None);
        s.frame(Track::Audio, 5, false, None);
        s.new_timeline();
        s.frame(Track::Video, 0, true, None);
        let sum = s.summary();
        assert_eq!(sum.dts_backwards, PerTrack { video: 1, audio: 1 });
        assert_eq!((sum.video_frames, sum.audio_frames), (4, 2));
        assert_eq!(sum.first_video_keyframe, Some(true));
    }

    #[test]
    fn stamped_frames_give_latency_samples() {
        let mut s = stats();
        let now = unix_micros();
        s.frame(Track::Video, 0, true, Some(now - 150_000));
        s.frame(Track::Video, 40, false, None);
        let sum = s.summary();
        assert_eq!(sum.latency.samples, 1);
        let p50 = sum.latency.p50_ms.expect("one sample");
        assert!((150.0..10_000.0).contains(&p50), "{p50}");
        let progress = s.progress();
        assert!(progress.latency_ms.is_some());
        assert_eq!(progress.live_latency_ms, None, "not caught up yet");
        assert_eq!(sum.live_latency.samples, 0);
        let json = serde_json::to_value(&sum).expect("serializes");
        assert_eq!(json["live_latency"]["samples"], 0);
        assert_eq!(json["joins"], serde_json::json!([]));
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let mut s = stats();
        s.error("connect");
        s.error("connect");
        s.error("http_404");
        let errors = s.summary().errors;
        assert_eq!(errors.get("connect"), Some(&2));
        assert_eq!(errors.get("http_404"), Some(&1));
        let json = serde_json::to_value(s.summary()).expect("serializes");
        assert_eq!(json["protocol"], "rtmp");
        assert_eq!(json["dts_backwards"]["video"], 0);
        assert!(json["startup_ms"].is_null());
    }
}
