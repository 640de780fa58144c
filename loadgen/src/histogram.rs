//! HDR histograms in microseconds: creation, percentile summaries and a compact text encoding
//! (HdrHistogram V2 + deflate, base64) so shard reports merge exactly.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A latency histogram in microseconds.
pub type Micros = Histogram<u64>;

/// A histogram with `digits` significant digits that grows to fit any value.
pub fn new(digits: u8) -> Micros {
    let mut h = Histogram::new(digits).expect("1..=5 significant digits are valid");
    h.auto(true);
    h
}

/// Largest value kept: one hour in microseconds; larger samples are clamped to it.
pub const MAX_MICROS: u64 = 3_600_000_000;

/// Records `count` samples of `micros`, clamped to `1..=MAX_MICROS`, growing `h` as needed.
pub fn record_n(h: &mut Micros, micros: u64, count: u64) {
    // Auto-resizing recording cannot fail below MAX_MICROS with a 64-bit index.
    let _ = h.record_n(micros.clamp(1, MAX_MICROS), count);
}

/// Records one sample; see [`record_n`].
pub fn record(h: &mut Micros, micros: u64) {
    record_n(h, micros, 1);
}

/// Encodes `h` as base64 of the V2 deflate format.
pub fn encode(h: &Micros) -> String {
    let mut out = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut out) {
        Ok(_) => STANDARD.encode(out),
        Err(_) => String::new(),
    }
}

/// Decodes [`encode`]'s output; an empty string is an empty histogram.
pub fn decode(text: &str, digits: u8) -> anyhow::Result<Micros> {
    if text.is_empty() {
        return Ok(new(digits));
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| anyhow::anyhow!("histogram is not base64: {e}"))?;
    let mut h: Micros = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("histogram does not decode: {e:?}"))?;
    h.auto(true);
    Ok(h)
}

/// Count and percentiles of one operation, in milliseconds, with the histogram that produced
/// them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Smallest sample.
    pub min_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// [`encode`]d histogram in microseconds, for exact merging.
    pub histogram: String,
}

impl Summary {
    /// Summarizes `h`.
    pub fn of(h: &Micros) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |p: f64| {
            if h.is_empty() {
                0.0
            } else {
                ms(h.value_at_quantile(p))
            }
        };
        Summary {
            count: h.len(),
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            min_ms: if h.is_empty() { 0.0 } else { ms(h.min()) },
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
            histogram: encode(h),
        }
    }

    /// The percentile `p` (0–100) of this summary in milliseconds, by name.
    pub fn percentile(&self, p: f64) -> anyhow::Result<f64> {
        let h = decode(&self.histogram, 3)?;
        Ok(if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(p / 100.0) as f64 / 1000.0
        })
    }
}

/// A copy of a histogram with 32-bit counts (as players keep them).
pub fn from_u32(h: &Histogram<u32>) -> Micros {
    let mut out = new(h.sigfig());
    for v in h.iter_recorded() {
        record_n(
            &mut out,
            v.value_iterated_to(),
            u64::from(v.count_at_value()),
        );
    }
    out
}

/// Adds `other` into `into`, growing it as needed.
pub fn merge(into: &mut Micros, other: &Micros) {
    if into.add(other).is_err() {
        for v in other.iter_recorded() {
            record_n(into, v.value_iterated_to(), v.count_at_value());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut h = new(3);
        for v in [1u64, 10, 100, 1_000, 250_000, 3_000_000] {
            h.record(v).expect("auto-resizing");
        }
        let back = decode(&encode(&h), 3).expect("decodes");
        assert_eq!(back, h);
        let s = Summary::of(&h);
        assert_eq!(s.count, 6);
        assert!((s.max_ms - 3000.0).abs() < 3.0);
        assert!(decode("not base64!", 3).is_err());
        assert!(decode("", 3).expect("empty").is_empty());
    }
}
