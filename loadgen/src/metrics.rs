//! What one workload measured: HDR histograms per operation, a per-second timeline, errors by
//! kind, outcomes, arrival timing (start lag, 100 ms arrival buckets, pulse skew) and media QoE.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::histogram::{self, Micros};
use crate::report::SecondOp;

/// Significant digits of whole-run histograms.
pub const DIGITS: u8 = 3;
/// Significant digits of per-second histograms (smaller, for the timeline).
pub const SECOND_DIGITS: u8 = 2;
/// Seconds a timeline second stays open for late samples before it is packed.
const OPEN_SECONDS: usize = 5;

/// Media quality totals over all sessions of a workload.
#[derive(Debug, Clone, Default)]
pub struct MediaTotals {
    /// Sessions that ended.
    pub sessions: u64,
    /// Sessions that never started playing.
    pub startup_failures: u64,
    /// Stalls after startup.
    pub stalls: u64,
    /// Time stalled after startup.
    pub stall_ms: f64,
    /// Playing plus stalled time after startup.
    pub viewing_ms: f64,
    /// Reconnects.
    pub reconnects: u64,
    /// Frames whose DTS went backwards.
    pub dts_backwards: u64,
    /// Stamped frames (end-to-end latency samples).
    pub latency_samples: u64,
    /// Stamped frames received after catching up with the live edge (live latency samples).
    pub live_latency_samples: u64,
    /// Joins (session starts, reconnections) that caught up with the live edge.
    pub joins_caught_up: u64,
    /// Frames received before catching up, over the joins that caught up.
    pub join_burst_frames: u64,
    /// Sessions with stamped frames that never caught up with the live edge.
    pub never_caught_up: u64,
    /// Sessions that played LL-HLS.
    pub llhls_sessions: u64,
    /// LL-HLS media playlist requests.
    pub playlist_requests: u64,
    /// LL-HLS blocking playlist reloads.
    pub blocking_playlist_requests: u64,
    /// LL-HLS part requests.
    pub part_requests: u64,
    /// LL-HLS requests for preload-hinted parts.
    pub hinted_part_requests: u64,
}

/// One second of the timeline.
#[derive(Debug, Default)]
pub struct Second {
    /// Iterations started.
    pub started: u64,
    /// Errors.
    pub errors: u64,
    /// Active users, sampled once in the second.
    pub active: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Per-operation samples.
    pub ops: BTreeMap<String, SecondHistogram>,
}

/// One operation's samples in one second of the timeline. A second is packed into its report
/// form (percentiles and the encoded histogram, a few hundred bytes) once the run has moved
/// [`OPEN_SECONDS`] past it, so a long run keeps no whole histogram per second; a late sample
/// unpacks it again, exactly.
#[derive(Debug)]
pub enum SecondHistogram {
    /// Still recording.
    Open(Micros),
    /// Packed.
    Packed(SecondOp),
}

impl Default for SecondHistogram {
    fn default() -> Self {
        Self::Open(histogram::new(SECOND_DIGITS))
    }
}

impl SecondHistogram {
    /// The histogram to record into, unpacked if needed.
    fn open(&mut self) -> &mut Micros {
        if let Self::Packed(op) = self {
            let h = histogram::decode(&op.histogram, SECOND_DIGITS)
                .unwrap_or_else(|_| histogram::new(SECOND_DIGITS));
            *self = Self::Open(h);
        }
        match self {
            Self::Open(h) => h,
            Self::Packed(_) => unreachable!("unpacked above"),
        }
    }

    /// Packs the samples into their report form.
    fn pack(&mut self) {
        if let Self::Open(h) = self {
            *self = Self::Packed(SecondOp::of(h));
        }
    }

    /// The report form.
    pub fn report(&self) -> SecondOp {
        match self {
            Self::Open(h) => SecondOp::of(h),
            Self::Packed(op) => op.clone(),
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        match self {
            Self::Open(h) => h.len(),
            Self::Packed(op) => op.count,
        }
    }
}

/// Observed timing of one pulse.
#[derive(Debug, Clone, Copy)]
pub struct PulseSeen {
    /// First actual start.
    pub first: Instant,
    /// Last actual start.
    pub last: Instant,
    /// Largest delay of an actual start behind its intended start.
    pub max_lag: Duration,
    /// Starts seen.
    pub count: u64,
}

/// Everything recorded while the workload ran.
#[derive(Debug)]
pub struct Recorded {
    /// Whole-run histograms per operation.
    pub ops: BTreeMap<String, Micros>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Outcomes by kind (e.g. flash-sale `success`, `sold_out`; HTTP status classes).
    pub outcomes: BTreeMap<String, u64>,
    /// The timeline, one entry per second from the run's start.
    pub seconds: Vec<Second>,
    /// Seconds before this one are packed.
    packed: usize,
    /// Actual starts per 100 ms from the run's start.
    pub arrivals_100ms: Vec<u64>,
    /// Delay of each actual start behind its intended start.
    pub start_lag: Micros,
    /// Observed pulses, by pulse number.
    pub pulses: BTreeMap<u32, PulseSeen>,
    /// Media totals.
    pub media: MediaTotals,
    /// Whether this workload produced media metrics.
    pub has_media: bool,
    /// Bytes received.
    pub bytes: u64,
    /// Arrivals dropped (too many in flight).
    pub dropped: u64,
    /// Closed-model sessions restarted after ending early.
    pub restarts: u64,
}

impl Recorded {
    fn empty() -> Self {
        Recorded {
            ops: BTreeMap::new(),
            errors: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            seconds: Vec::new(),
            packed: 0,
            arrivals_100ms: Vec::new(),
            start_lag: histogram::new(DIGITS),
            pulses: BTreeMap::new(),
            media: MediaTotals::default(),
            has_media: false,
            bytes: 0,
            dropped: 0,
            restarts: 0,
        }
    }
}

/// A workload's recorder, shared by all its tasks.
pub struct Metrics {
    t0: Instant,
    active: AtomicU64,
    dropped: AtomicU64,
    restarts: AtomicU64,
    inner: Mutex<Recorded>,
}

impl Metrics {
    /// A recorder whose timeline starts at `t0` (the run's start).
    pub fn new(t0: Instant) -> Self {
        Self {
            t0,
            active: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            inner: Mutex::new(Recorded::empty()),
        }
    }

    fn second(r: &mut Recorded, index: usize) -> &mut Second {
        if r.seconds.len() <= index {
            r.seconds.resize_with(index + 1, Second::default);
        }
        let settled = index.saturating_sub(OPEN_SECONDS);
        if r.packed < settled {
            for second in &mut r.seconds[r.packed..settled] {
                second.ops.values_mut().for_each(SecondHistogram::pack);
            }
            r.packed = settled;
        }
        &mut r.seconds[index]
    }

    fn second_of(&self, at: Instant) -> usize {
        at.saturating_duration_since(self.t0).as_secs() as usize
    }

    /// An iteration meant to start at `intended` started at `actual`.
    pub fn started(&self, intended: Instant, actual: Instant, pulse: Option<u32>) {
        let lag = actual.saturating_duration_since(intended);
        let since = actual.saturating_duration_since(self.t0);
        let bucket = (since.as_millis() / 100) as usize;
        let mut r = self.inner.lock();
        histogram::record(&mut r.start_lag, lag.as_micros() as u64);
        if r.arrivals_100ms.len() <= bucket {
            r.arrivals_100ms.resize(bucket + 1, 0);
        }
        r.arrivals_100ms[bucket] += 1;
        Self::second(&mut r, since.as_secs() as usize).started += 1;
        if let Some(p) = pulse {
            let seen = r.pulses.entry(p).or_insert(PulseSeen {
                first: actual,
                last: actual,
                max_lag: lag,
                count: 0,
            });
            seen.first = seen.first.min(actual);
            seen.last = seen.last.max(actual);
            seen.max_lag = seen.max_lag.max(lag);
            seen.count += 1;
        }
    }

    /// An arrival that could not start (too many in flight).
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    /// A closed-model user's session ended early and will start again after a backoff.
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Relaxed);
    }

    /// Records one `op` that took `latency`, completing now.
    pub fn record(&self, op: &str, latency: Duration) {
        self.record_at(op, latency, Instant::now());
    }

    /// Records one `op` that took `latency`, completing at `at`.
    pub fn record_at(&self, op: &str, latency: Duration, at: Instant) {
        let micros = latency.as_micros() as u64;
        let sec = self.second_of(at);
        let mut r = self.inner.lock();
        histogram::record(op_histogram(&mut r.ops, op, DIGITS), micros);
        let second = Self::second(&mut r, sec);
        histogram::record(second_histogram(&mut second.ops, op), micros);
    }

    /// Records a successful `op` with its outcome and body size under one lock (the hot path of
    /// request drivers).
    pub fn completed(&self, op: &str, latency: Duration, outcome: &str, bytes: u64) {
        let micros = latency.as_micros() as u64;
        let sec = self.second_of(Instant::now());
        let mut r = self.inner.lock();
        histogram::record(op_histogram(&mut r.ops, op, DIGITS), micros);
        r.bytes += bytes;
        match r.outcomes.get_mut(outcome) {
            Some(n) => *n += 1,
            None => {
                r.outcomes.insert(outcome.to_string(), 1);
            }
        }
        let second = Self::second(&mut r, sec);
        second.bytes += bytes;
        histogram::record(second_histogram(&mut second.ops, op), micros);
    }

    /// Records a received message under one lock: its `bytes` and one `op` sample per entry of
    /// `micros` (e.g. every chat stamp in a batch).
    pub fn received(&self, op: &str, micros: &[u64], bytes: u64) {
        let sec = self.second_of(Instant::now());
        let mut r = self.inner.lock();
        r.bytes += bytes;
        if !micros.is_empty() {
            let total = op_histogram(&mut r.ops, op, DIGITS);
            for &us in micros {
                histogram::record(total, us);
            }
        }
        let second = Self::second(&mut r, sec);
        second.bytes += bytes;
        if !micros.is_empty() {
            let per_second = second_histogram(&mut second.ops, op);
            for &us in micros {
                histogram::record(per_second, us);
            }
        }
    }

    /// Adds one `op` sample to the timeline only (when the run totals come from elsewhere).
    pub fn sample_second(&self, op: &str, latency: Duration, at: Instant) {
        let sec = self.second_of(at);
        let mut r = self.inner.lock();
        let second = Self::second(&mut r, sec);
        histogram::record(
            second_histogram(&mut second.ops, op),
            latency.as_micros() as u64,
        );
    }

    /// Adds a whole histogram of `op` samples (e.g. a player's latency) to the run totals.
    pub fn merge_op(&self, op: &str, h: &Micros) {
        let mut r = self.inner.lock();
        histogram::merge(op_histogram(&mut r.ops, op, DIGITS), h);
    }

    /// Records an error of `kind`, now.
    pub fn error(&self, kind: &str) {
        self.errors(kind, 1);
    }

    /// Records `n` errors of `kind`, now.
    pub fn errors(&self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        let sec = self.second_of(Instant::now());
        let mut r = self.inner.lock();
        *r.errors.entry(kind.to_string()).or_default() += n;
        Self::second(&mut r, sec).errors += n;
    }

    /// Records a panic of one iteration as a `panic` error, now; true for the workload's first.
    pub fn panicked(&self) -> bool {
        let sec = self.second_of(Instant::now());
        let mut r = self.inner.lock();
        let count = r.errors.entry("panic".to_string()).or_default();
        *count += 1;
        let first = *count == 1;
        Self::second(&mut r, sec).errors += 1;
        first
    }

    /// Counts an outcome of `kind`.
    pub fn outcome(&self, kind: &str) {
        *self
            .inner
            .lock()
            .outcomes
            .entry(kind.to_string())
            .or_default() += 1;
    }

    /// Counts `n` bytes received now.
    pub fn bytes(&self, n: u64) {
        let sec = self.second_of(Instant::now());
        let mut r = self.inner.lock();
        r.bytes += n;
        Self::second(&mut r, sec).bytes += n;
    }

    /// Adds the end of one media session.
    pub fn media(&self, add: impl FnOnce(&mut MediaTotals)) {
        let mut r = self.inner.lock();
        r.has_media = true;
        add(&mut r.media);
    }

    /// Marks a user or session active until the guard drops.
    pub fn active(&self) -> ActiveGuard<'_> {
        self.active.fetch_add(1, Relaxed);
        ActiveGuard(&self.active)
    }

    /// Users or sessions active now.
    pub fn active_now(&self) -> u64 {
        self.active.load(Relaxed)
    }

    /// Samples the active count into the current second.
    pub fn sample(&self, now: Instant) {
        let active = self.active_now();
        let sec = self.second_of(now);
        Self::second(&mut self.inner.lock(), sec).active = active;
    }

    /// Errors and the given op's count and p99 in the second before `now`, for the live view.
    pub fn last_second(&self, now: Instant, op: &str) -> (u64, u64, Option<f64>) {
        let sec = self.second_of(now).saturating_sub(1);
        let r = self.inner.lock();
        let Some(s) = r.seconds.get(sec) else {
            return (0, 0, None);
        };
        let count = s.ops.get(op).map_or(0, SecondHistogram::count);
        let p99 = match s.ops.get(op) {
            Some(SecondHistogram::Open(h)) if !h.is_empty() => {
                Some(h.value_at_quantile(0.99) as f64 / 1000.0)
            }
            Some(SecondHistogram::Packed(p)) if p.count > 0 => Some(p.p99_ms),
            _ => None,
        };
        (count, s.errors, p99)
    }

    /// Total errors so far.
    pub fn error_total(&self) -> u64 {
        self.inner.lock().errors.values().sum()
    }

    /// Takes everything recorded.
    pub fn finish(&self) -> Recorded {
        Recorded {
            dropped: self.dropped.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
            ..std::mem::replace(&mut *self.inner.lock(), Recorded::empty())
        }
    }
}

/// The histogram of `op` in `ops`, created on first use without allocating on later ones.
fn op_histogram<'a>(ops: &'a mut BTreeMap<String, Micros>, op: &str, digits: u8) -> &'a mut Micros {
    if !ops.contains_key(op) {
        ops.insert(op.to_string(), histogram::new(digits));
    }
    ops.get_mut(op).expect("inserted above")
}

fn second_histogram<'a>(
    ops: &'a mut BTreeMap<String, SecondHistogram>,
    op: &str,
) -> &'a mut Micros {
    if !ops.contains_key(op) {
        ops.insert(op.to_string(), SecondHistogram::default());
    }
    ops.get_mut(op).expect("inserted above").open()
}

/// Keeps a user counted as active.
pub struct ActiveGuard<'a>(&'a AtomicU64);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_seconds_are_packed_and_a_late_sample_unpacks_exactly() {
        let t0 = Instant::now();
        let m = Metrics::new(t0);
        let at = |s: u64, ms: u64| t0 + Duration::from_millis(s * 1000 + ms);
        for s in 0..60 {
            for i in 0..50 {
                m.record_at("op", Duration::from_micros(100 + i * 37 + s), at(s, i));
            }
        }
        {
            let r = m.inner.lock();
            let packed = |s: usize| matches!(r.seconds[s].ops["op"], SecondHistogram::Packed(_));
            assert!((0..54).all(packed), "seconds well behind are packed");
            assert!(!(55..60).any(packed), "the last seconds stay open");
            let SecondHistogram::Packed(p) = &r.seconds[3].ops["op"] else {
                unreachable!("checked above");
            };
            assert_eq!(p.count, 50);
        }
        m.record_at("op", Duration::from_millis(900), at(3, 500));
        let r = m.finish();
        let direct = |s: u64, late: Option<u64>| {
            let mut h = histogram::new(SECOND_DIGITS);
            for i in 0..50 {
                histogram::record(&mut h, 100 + i * 37 + s);
            }
            late.into_iter()
                .for_each(|us| histogram::record(&mut h, us));
            SecondOp::of(&h)
        };
        let same = |a: SecondOp, b: SecondOp| {
            assert_eq!(
                (a.count, a.p50_ms, a.p99_ms, a.max_ms),
                (b.count, b.p50_ms, b.p99_ms, b.max_ms)
            );
        };
        same(r.seconds[3].ops["op"].report(), direct(3, Some(900_000)));
        same(r.seconds[10].ops["op"].report(), direct(10, None));
        same(r.seconds[59].ops["op"].report(), direct(59, None));
    }

    #[test]
    fn records_ops_errors_and_arrivals() {
        let t0 = Instant::now();
        let m = Metrics::new(t0);
        m.started(t0, t0 + Duration::from_millis(150), Some(0));
        m.started(t0, t0 + Duration::from_millis(50), Some(0));
        m.record_at(
            "request",
            Duration::from_millis(5),
            t0 + Duration::from_millis(1500),
        );
        m.error("connect");
        assert!(m.panicked());
        assert!(!m.panicked());
        {
            let _a = m.active();
            assert_eq!(m.active_now(), 1);
        }
        assert_eq!(m.active_now(), 0);
        let r = m.finish();
        assert_eq!(r.arrivals_100ms, [1, 1]);
        assert_eq!(r.seconds.len(), 2);
        assert_eq!(r.seconds[1].ops["request"].count(), 1);
        assert_eq!(r.errors["connect"], 1);
        assert_eq!(r.errors["panic"], 2);
        let p = r.pulses[&0];
        assert_eq!(p.last - p.first, Duration::from_millis(100));
        assert_eq!(p.max_lag, Duration::from_millis(150));
    }
}
