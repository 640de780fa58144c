//! End-to-end latency from the publisher's SEI wall-clock stamps.

use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use media_core::avc::{annexb_nalus, annexb_to_avcc, nal_type, NAL_SEI};
use media_core::sei::find_stamp;
use serde::Serialize;

/// Largest latency recorded (10 minutes); larger samples are clamped to it.
const MAX_MICROS: u64 = 600_000_000;
/// Two significant digits (1 %) keep the histogram a few KiB per player.
const SIGNIFICANT_DIGITS: u8 = 2;

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
    /// Frames that carried a stamp.
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
        let micros = now_micros.saturating_sub(stamp_micros).clamp(1, MAX_MICROS);
        self.histogram.saturating_record(micros);
        self.last_ms = Some(now_micros.saturating_sub(stamp_micros) as f64 / 1000.0);
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
}
