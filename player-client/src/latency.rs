//! End-to-end latency from the publisher's SEI wall-clock stamps, and when a viewer has caught
//! up with the live edge.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use media_core::avc::{annexb_nalus, annexb_to_avcc, nal_type, NAL_SEI};
use media_core::sei::find_stamp;
use serde::Serialize;

/// Largest latency recorded (10 minutes); larger samples are clamped to it.
const MAX_MICROS: u64 = 600_000_000;
/// Two significant digits (1 %) keep the histogram a few KiB per player.
const SIGNIFICANT_DIGITS: u8 = 2;
/// How far latency may fall below a candidate catch-up frame's without disproving it: jitter,
/// not media arriving ahead of real time.
pub const CATCH_UP_TOLERANCE: Duration = Duration::from_millis(50);
/// Wall time a candidate catch-up frame must hold (latency not falling more than
/// [`CATCH_UP_TOLERANCE`] below it) before the viewer counts as caught up.
pub const CATCH_UP_SETTLE: Duration = Duration::from_millis(500);
/// Samples held while a candidate settles. Real-time media cannot fill it within
/// [`CATCH_UP_SETTLE`]; if broken stamps do, the candidate is confirmed.
const MAX_PENDING: usize = 1024;

/// The livepulse stamp of an AVCC frame whose NALU lengths are `nalu_length_size` bytes.
pub fn stamp_in_avcc(frame: &[u8], nalu_length_size: u8) -> Option<u64> {
    find_stamp(frame, nalu_length_size)
}

/// The livepulse stamp of an Annex B access unit (as carried in MPEG-TS).
pub fn stamp_in_annexb(access_unit: &[u8]) -> Option<u64> {
    if !annexb_nalus(access_unit)
        .iter()
        .any(|n| nal_type(n) == NAL_SEI)
    {
        return None;
    }
    find_stamp(&annexb_to_avcc(access_unit), 4)
}

/// Microseconds since the Unix epoch now.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Latency percentiles in milliseconds; `None` without samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Stamped frames counted.
    pub samples: u64,
    /// Median latency.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency.
    pub p99_ms: Option<f64>,
    /// Largest latency.
    pub max_ms: Option<f64>,
}

/// Collects latency samples.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u32>,
    last_ms: Option<f64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty recorder.
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Self {
            histogram,
            last_ms: None,
        }
    }

    /// Records the latency of a frame stamped at `stamp_micros` and available at `now_micros`.
    /// A stamp from the future (clock skew between hosts) counts as zero latency.
    pub fn record(&mut self, stamp_micros: u64, now_micros: u64) {
        self.record_micros(now_micros.saturating_sub(stamp_micros));
    }

    fn record_micros(&mut self, micros: u64) {
        self.histogram
            .saturating_record(micros.clamp(1, MAX_MICROS));
        self.last_ms = Some(micros as f64 / 1000.0);
    }

    /// The most recent sample in milliseconds.
    pub fn last_ms(&self) -> Option<f64> {
        self.last_ms
    }

    /// All samples, in microseconds.
    pub fn histogram(&self) -> &Histogram<u32> {
        &self.histogram
    }

    /// Count and percentiles.
    pub fn summary(&self) -> LatencySummary {
        let samples = self.histogram.len();
        let ms = |micros: u64| (samples > 0).then(|| micros as f64 / 1000.0);
        LatencySummary {
            samples,
            p50_ms: ms(self.histogram.value_at_quantile(0.5)),
            p99_ms: ms(self.histogram.value_at_quantile(0.99)),
            max_ms: ms(self.histogram.max()),
        }
    }
}

/// One join (the session's start or a reconnection) that caught up with the live edge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Join {
    /// Session time at which the first live frame arrived.
    pub caught_up_secs: f64,
    /// Frames (audio and video) received on this join before that frame: the join burst.
    pub burst_frames: u64,
    /// Wall time from this join's first frame to its first live frame.
    pub catch_up_ms: f64,
}

/// Splits latency samples into the join burst and live latency.
///
/// A viewer joining a live stream first receives cached media at once (an FLV/RTMP GOP cache,
/// HLS segments behind the live edge). Those stamps are old, and latency falls frame after
/// frame for as long as media arrives ahead of real time. The first stamped frame of a join is
/// the candidate catch-up point, and so is every later one whose latency is more than
/// [`CATCH_UP_TOLERANCE`] below the current candidate's. A candidate that holds for
/// [`CATCH_UP_SETTLE`] of wall time is where the viewer caught up: latency from that frame on
/// is live latency, frames before it are the join burst. Latency rising later (falling
/// behind) stays live. Sans-I/O: the session time comes with every call.
#[derive(Debug, Clone)]
pub struct LiveEdge {
    live: Latency,
    joins: Vec<Join>,
    phase: Phase,
}

#[derive(Debug, Clone)]
enum Phase {
    /// Receiving the join burst; `frames` counts every frame of this join so far.
    Joining {
        first_frame: Option<Duration>,
        frames: u64,
        candidate: Option<Candidate>,
    },
    /// Caught up: every sample is live latency.
    Live,
}

impl Phase {
    fn joining() -> Self {
        Phase::Joining {
            first_frame: None,
            frames: 0,
            candidate: None,
        }
    }
}

/// A stamped frame that may be the first live one, and the samples since.
#[derive(Debug, Clone)]
struct Candidate {
    at: Duration,
    latency_micros: u64,
    join: Join,
    pending: Vec<u64>,
}

impl Default for LiveEdge {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveEdge {
    /// Waiting for the first join's frames.
    pub fn new() -> Self {
        Self {
            live: Latency::new(),
            joins: Vec::new(),
            phase: Phase::joining(),
        }
    }

    /// A new connection: its frames start a new join burst. A join still settling is dropped.
    pub fn rejoin(&mut self) {
        self.phase = Phase::joining();
    }

    /// A frame received at session time `now`, with its latency if it carried a stamp.
    pub fn frame(&mut self, now: Duration, latency_micros: Option<u64>) {
        self.settle(now);
        let Phase::Joining {
            first_frame,
            frames,
            candidate,
        } = &mut self.phase
        else {
            if let Some(micros) = latency_micros {
                self.live.record_micros(micros);
            }
            return;
        };
        let first = *first_frame.get_or_insert(now);
        if let Some(micros) = latency_micros {
            let tolerance = CATCH_UP_TOLERANCE.as_micros() as u64;
            match candidate {
                Some(c) if micros.saturating_add(tolerance) >= c.latency_micros => {
                    c.pending.push(micros);
                }
                _ => {
                    *candidate = Some(Candidate {
                        at: now,
                        latency_micros: micros,
                        join: Join {
                            caught_up_secs: now.as_secs_f64(),
                            burst_frames: *frames,
                            catch_up_ms: now.saturating_sub(first).as_secs_f64() * 1000.0,
                        },
                        pending: vec![micros],
                    });
                }
            }
        }
        *frames += 1;
        if candidate
            .as_ref()
            .is_some_and(|c| c.pending.len() >= MAX_PENDING)
        {
            self.confirm();
        }
    }

    /// Confirms a candidate that has held for [`CATCH_UP_SETTLE`] by session time `now`.
    pub fn settle(&mut self, now: Duration) {
        if let Phase::Joining {
            candidate: Some(c), ..
        } = &self.phase
        {
            if now.saturating_sub(c.at) >= CATCH_UP_SETTLE {
                self.confirm();
            }
        }
    }

    fn confirm(&mut self) {
        let Phase::Joining { candidate, .. } = &mut self.phase else {
            return;
        };
        let Some(c) = candidate.take() else {
            return;
        };
        for micros in c.pending {
            self.live.record_micros(micros);
        }
        self.joins.push(c.join);
        self.phase = Phase::Live;
    }

    /// Latency of the frames received once caught up.
    pub fn live(&self) -> &Latency {
        &self.live
    }

    /// The joins that caught up, in order.
    pub fn joins(&self) -> &[Join] {
        &self.joins
    }

    /// The most recent live sample in milliseconds; `None` while joining.
    pub fn last_ms(&self) -> Option<f64> {
        match self.phase {
            Phase::Live => self.live.last_ms(),
            Phase::Joining { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_core::avc::avcc_to_annexb;
    use media_core::sei::insert_stamp;

    fn frame() -> Vec<u8> {
        let mut out = Vec::new();
        for nalu in [&[0x09u8, 0xF0][..], &[0x65, 0x88, 0x84, 0x00]] {
            out.extend_from_slice(&(nalu.len() as u32).to_be_bytes());
            out.extend_from_slice(nalu);
        }
        out
    }

    #[test]
    fn stamps_are_found_in_avcc_and_annexb() {
        let stamped = insert_stamp(&frame(), 4, 1_700_000_000_123_456).expect("valid frame");
        assert_eq!(stamp_in_avcc(&stamped, 4), Some(1_700_000_000_123_456));
        let mut annexb = Vec::new();
        avcc_to_annexb(&stamped, 4, &mut annexb).expect("valid frame");
        assert_eq!(stamp_in_annexb(&annexb), Some(1_700_000_000_123_456));
        assert_eq!(stamp_in_avcc(&frame(), 4), None);
        let mut plain = Vec::new();
        avcc_to_annexb(&frame(), 4, &mut plain).expect("valid frame");
        assert_eq!(stamp_in_annexb(&plain), None);
    }

    #[test]
    fn two_byte_nalu_lengths() {
        let two: Vec<u8> = [&[0x00u8, 0x02, 0x41, 0x9A][..]].concat();
        let stamped = insert_stamp(&two, 2, 42).expect("valid frame");
        assert_eq!(stamp_in_avcc(&stamped, 2), Some(42));
    }

    #[test]
    fn percentiles_in_milliseconds() {
        let mut l = Latency::new();
        assert_eq!(l.summary().samples, 0);
        assert_eq!(l.summary().p50_ms, None);
        let now = 1_700_000_000_000_000;
        for ms in 1..=100u64 {
            l.record(now - ms * 1000, now);
        }
        let s = l.summary();
        assert_eq!(s.samples, 100);
        let close = |v: Option<f64>, want: f64| (v.expect("a value") - want).abs() <= want * 0.02;
        assert!(close(s.p50_ms, 50.0), "{s:?}");
        assert!(close(s.p99_ms, 99.0), "{s:?}");
        assert!(close(s.max_ms, 100.0), "{s:?}");
        assert_eq!(l.last_ms(), Some(100.0));
    }

    #[test]
    fn future_stamps_count_as_zero_and_huge_ones_are_clamped() {
        let mut l = Latency::new();
        l.record(2_000, 1_000);
        l.record(0, u64::MAX);
        let s = l.summary();
        assert_eq!(s.samples, 2);
        assert!(s.p50_ms.expect("a value") < 0.01);
        assert!(s.max_ms.expect("a value") >= 599_000.0);
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// A GOP cache delivered at once from `at` (ms): `count` video frames, each followed by an
    /// audio frame, the last published `newest_ms` ago, 33 ms apart, arriving 100 µs apart.
    fn burst(edge: &mut LiveEdge, at: u64, count: u64, newest_ms: u64) {
        for i in 0..count {
            let now = ms(at) + Duration::from_micros(100 * i);
            let age_ms = newest_ms + 33 * (count - 1 - i);
            edge.frame(now, Some(age_ms * 1000));
            edge.frame(now, None);
        }
    }

    /// Live video frames at 30 fps from `at` (ms), latency `latency_ms` plus 0..4 ms of jitter,
    /// each followed by an audio frame.
    fn live(edge: &mut LiveEdge, at: u64, count: u64, latency_ms: u64) {
        for i in 0..count {
            let now = ms(at + 33 * i);
            edge.frame(now, Some((latency_ms + i % 5) * 1000));
            edge.frame(now, None);
        }
    }

    #[test]
    fn a_join_burst_of_cached_frames_stays_out_of_live_latency() {
        let mut edge = LiveEdge::new();
        // 60 cached frames, 2 s to 100 ms old, at 200 ms into the session; live from 233 ms.
        burst(&mut edge, 200, 60, 100);
        assert_eq!(edge.last_ms(), None, "still joining");
        live(&mut edge, 233, 90, 30);
        let live_latency = edge.live().summary();
        assert_eq!(live_latency.samples, 90, "{live_latency:?}");
        let max = live_latency.max_ms.expect("live samples");
        assert!((30.0..35.0).contains(&max), "{live_latency:?}");
        assert_eq!(edge.joins().len(), 1);
        let join = edge.joins()[0];
        assert_eq!(join.burst_frames, 120, "60 video and 60 audio frames");
        assert!((join.catch_up_ms - 33.0).abs() < 0.01, "{join:?}");
        assert!((join.caught_up_secs - 0.233).abs() < 1e-9, "{join:?}");
        assert!(edge.last_ms().is_some_and(|l| l < 35.0));
    }

    #[test]
    fn a_pause_in_the_burst_does_not_end_it() {
        let mut edge = LiveEdge::new();
        // The first half of the cache, a 120 ms pause (latency rises), then the rest.
        for i in 0..60u64 {
            let pause = if i < 30 { 0 } else { 120_000 };
            let now = Duration::from_micros(100 * i + pause);
            edge.frame(now, Some((100 + 33 * (59 - i)) * 1000 + pause));
        }
        live(&mut edge, 200, 60, 30);
        let live_latency = edge.live().summary();
        assert_eq!(live_latency.samples, 60, "{live_latency:?}");
        assert!(
            live_latency.max_ms.is_some_and(|m| m < 35.0),
            "{live_latency:?}"
        );
        assert_eq!(edge.joins()[0].burst_frames, 60);
    }

    #[test]
    fn cached_frames_within_the_tolerance_of_the_live_edge_count_as_live() {
        let mut edge = LiveEdge::new();
        // The newest cached frame is 40 ms old: as good as live.
        burst(&mut edge, 0, 10, 40);
        live(&mut edge, 33, 30, 30);
        // Latency falls 33 ms a frame, so the candidate moves every other frame and settles on
        // the frame 73 ms old, within the tolerance of the 30 ms live frames.
        let join = edge.joins()[0];
        assert_eq!(join.burst_frames, 16, "{join:?}");
        let max = edge.live().summary().max_ms.expect("live samples");
        assert!((72.0..74.0).contains(&max), "{max}");
    }

    #[test]
    fn falling_behind_after_catching_up_stays_live_and_a_rejoin_starts_a_new_burst() {
        let mut edge = LiveEdge::new();
        burst(&mut edge, 0, 30, 100);
        live(&mut edge, 33, 30, 30);
        // Falling behind: latency climbs to 1 s.
        for i in 0..30u64 {
            edge.frame(ms(1_100 + 66 * i), Some((40 + 33 * i) * 1000));
        }
        assert_eq!(edge.live().summary().samples, 60);
        assert!(edge.live().summary().max_ms.is_some_and(|m| m > 900.0));
        edge.rejoin();
        assert_eq!(edge.last_ms(), None);
        burst(&mut edge, 5_000, 45, 100);
        live(&mut edge, 5_033, 30, 30);
        assert_eq!(edge.live().summary().samples, 90);
        let joins = edge.joins();
        assert_eq!(joins.len(), 2);
        assert_eq!(joins[1].burst_frames, 90);
        assert!((joins[1].caught_up_secs - 5.033).abs() < 1e-9);
    }

    #[test]
    fn a_candidate_is_confirmed_only_once_it_has_held() {
        let mut edge = LiveEdge::new();
        burst(&mut edge, 0, 30, 100);
        edge.frame(ms(33), Some(30_000));
        edge.settle(ms(33) + CATCH_UP_SETTLE - ms(1));
        assert!(edge.joins().is_empty());
        assert_eq!(edge.live().summary().samples, 0);
        edge.settle(ms(33) + CATCH_UP_SETTLE);
        assert_eq!(edge.joins().len(), 1);
        assert_eq!(edge.live().summary().samples, 1);
    }

    #[test]
    fn unstamped_media_never_catches_up() {
        let mut edge = LiveEdge::new();
        for i in 0..300 {
            edge.frame(ms(33 * i), None);
        }
        edge.settle(ms(60_000));
        assert!(edge.joins().is_empty());
        assert_eq!(edge.last_ms(), None);
    }
}
