//! The JSON report (schema `livepulse-load/1`, documented in `docs/LOAD_REPORT.md`): built from
//! what each workload recorded, and merged exactly across shards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::generator::GeneratorReport;
use crate::histogram::{self, Summary};
use crate::metrics::{Recorded, DIGITS, SECOND_DIGITS};
use crate::shard::Shard;
use crate::thresholds::{self, ThresholdResult};

/// The schema identifier written into every report.
pub const SCHEMA: &str = "livepulse-load/1";

/// A whole run (or several merged shards).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Scenario name.
    pub scenario: String,
    /// Wall-clock start of the run, unix milliseconds.
    pub started_unix_ms: u64,
    /// Planned length of the run in seconds.
    pub duration_secs: f64,
    /// The shards this report covers.
    pub shards: Vec<Shard>,
    /// Each shard's view of its own limits.
    pub generators: Vec<GeneratorReport>,
    /// One entry per workload.
    pub workloads: Vec<WorkloadReport>,
    /// Every threshold and whether it held.
    pub thresholds: Vec<ThresholdResult>,
    /// True when every threshold held.
    pub passed: bool,
}

/// What one workload did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadReport {
    /// Workload name.
    pub name: String,
    /// Driver kind, e.g. `hls-play`.
    pub driver: String,
    /// The target URL (template).
    pub target: String,
    /// Arrival model as configured.
    pub model: serde_json::Value,
    /// The operation `p99` and friends refer to in thresholds.
    pub primary: String,
    /// Threshold expressions of this workload.
    pub threshold_exprs: Vec<String>,
    /// Arrival accounting.
    pub arrivals: Arrivals,
    /// Latency per operation.
    pub operations: BTreeMap<String, Summary>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Outcomes by kind.
    pub outcomes: BTreeMap<String, u64>,
    /// Errors over (primary operations + errors).
    pub error_rate: f64,
    /// Seconds the workload was scheduled to run.
    pub active_secs: f64,
    /// Primary operations per second over `active_secs`.
    pub throughput_per_sec: f64,
    /// Bytes received.
    pub bytes: u64,
    /// Media quality, for player workloads.
    pub media: Option<MediaReport>,
    /// One entry per second from the run's start.
    pub timeline: Vec<SecondReport>,
    /// Actual starts per 100 ms from the run's start.
    pub arrivals_100ms: Vec<u64>,
    /// Measured pulses.
    pub pulses: Vec<PulseReport>,
}

/// Arrival accounting: what was planned, started, and dropped, and how late starts were.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Arrivals {
    /// Iterations that started.
    pub started: u64,
    /// Arrivals that could not start because too many were in flight.
    pub dropped: u64,
    /// Closed-model sessions that ended early (refused, failed or over) and started again
    /// after a backoff.
    #[serde(default)]
    pub restarts: u64,
    /// Delay of actual starts behind intended starts (the generator's own lag).
    pub start_lag: Summary,
}

/// Media quality over all sessions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MediaReport {
    /// Sessions that ended.
    pub sessions: u64,
    /// Sessions that never started playing.
    pub startup_failures: u64,
    /// Stalls after startup.
    pub stalls: u64,
    /// Time stalled.
    pub stall_ms: f64,
    /// Time viewed after startup (playing plus stalled).
    pub viewing_secs: f64,
    /// Stalls per viewer-minute.
    pub stalls_per_viewer_minute: f64,
    /// Stalled time over viewing time.
    pub stall_ratio: f64,
    /// Reconnects.
    pub reconnects: u64,
    /// Frames whose DTS went backwards.
    pub dts_backwards: u64,
    /// Frames carrying a wall-clock stamp.
    pub latency_samples: u64,
    /// Stamped frames received after catching up with the live edge (`live_latency` samples).
    #[serde(default)]
    pub live_latency_samples: u64,
    /// Joins (session starts, reconnections) that caught up with the live edge.
    #[serde(default)]
    pub joins_caught_up: u64,
    /// Frames (audio and video) received before catching up, over those joins.
    #[serde(default)]
    pub join_burst_frames: u64,
    /// `join_burst_frames / joins_caught_up`.
    #[serde(default)]
    pub join_burst_frames_avg: f64,
    /// Sessions with stamped frames that never caught up (absent from `live_latency`).
    #[serde(default)]
    pub never_caught_up: u64,
    /// LL-HLS requests, when sessions played LL-HLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llhls: Option<LlHlsReport>,
}

/// LL-HLS requests over the sessions that played LL-HLS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlHlsReport {
    /// Sessions that played LL-HLS.
    pub sessions: u64,
    /// Media playlist requests.
    pub playlist_requests: u64,
    /// Blocking playlist reloads (`_HLS_msn`/`_HLS_part`), held until their part exists.
    pub blocking_playlist_requests: u64,
    /// Part requests.
    pub part_requests: u64,
    /// Requests for the part named by `EXT-X-PRELOAD-HINT`.
    pub hinted_part_requests: u64,
    /// `playlist_requests / sessions`.
    pub playlist_requests_per_viewer: f64,
    /// `blocking_playlist_requests / sessions`.
    pub blocking_playlist_requests_per_viewer: f64,
    /// `part_requests / sessions`.
    pub part_requests_per_viewer: f64,
}

impl LlHlsReport {
    /// Adds another report's counters.
    fn add(&mut self, other: &LlHlsReport) {
        self.sessions += other.sessions;
        self.playlist_requests += other.playlist_requests;
        self.blocking_playlist_requests += other.blocking_playlist_requests;
        self.part_requests += other.part_requests;
        self.hinted_part_requests += other.hinted_part_requests;
    }

    /// Recomputes the per-viewer averages.
    fn derive(&mut self) {
        let per = |n: u64| {
            if self.sessions > 0 {
                n as f64 / self.sessions as f64
            } else {
                0.0
            }
        };
        self.playlist_requests_per_viewer = per(self.playlist_requests);
        self.blocking_playlist_requests_per_viewer = per(self.blocking_playlist_requests);
        self.part_requests_per_viewer = per(self.part_requests);
    }
}

/// One second of the timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondReport {
    /// Seconds from the run's start.
    pub t: u64,
    /// Iterations started.
    pub started: u64,
    /// Errors.
    pub errors: u64,
    /// Active users (sampled; summed across shards).
    pub active: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Operations completed in this second.
    pub ops: BTreeMap<String, SecondOp>,
}

/// One operation in one second.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondOp {
    /// Completions.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// [`histogram::encode`]d, 2 significant digits.
    pub histogram: String,
}

/// One pulse: planned shape and measured start skew.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PulseReport {
    /// Pulse number.
    pub pulse: u32,
    /// Starts seen.
    pub count: u64,
    /// First actual start, ms from the run's start.
    pub first_ms: f64,
    /// Last actual start, ms from the run's start.
    pub last_ms: f64,
    /// `last_ms - first_ms`: for a zero window, the send skew.
    pub skew_ms: f64,
    /// Largest delay of a start behind its intended time.
    pub max_lag_ms: f64,
}

impl SecondOp {
    /// The report form of one second's samples.
    pub fn of(h: &histogram::Micros) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            histogram: histogram::encode(h),
        }
    }
}

/// What a workload was, for its report.
pub struct WorkloadInfo {
    /// Name.
    pub name: String,
    /// Driver kind.
    pub driver: String,
    /// Target URL.
    pub target: String,
    /// Arrival model.
    pub model: serde_json::Value,
    /// Primary operation.
    pub primary: String,
    /// Threshold expressions.
    pub thresholds: Vec<String>,
    /// Seconds the workload was meant to run.
    pub active_secs: f64,
}

impl WorkloadReport {
    /// Builds the report of one workload.
    pub fn build(info: WorkloadInfo, r: Recorded, t0: std::time::Instant) -> Self {
        let ms_since =
            |i: std::time::Instant| i.saturating_duration_since(t0).as_secs_f64() * 1000.0;
        let pulses = r
            .pulses
            .iter()
            .map(|(&pulse, p)| PulseReport {
                pulse,
                count: p.count,
                first_ms: ms_since(p.first),
                last_ms: ms_since(p.last),
                skew_ms: (p.last - p.first).as_secs_f64() * 1000.0,
                max_lag_ms: p.max_lag.as_secs_f64() * 1000.0,
            })
            .collect();
        let timeline = r
            .seconds
            .iter()
            .enumerate()
            .map(|(t, s)| SecondReport {
                t: t as u64,
                started: s.started,
                errors: s.errors,
                active: s.active,
                bytes: s.bytes,
                ops: s.ops.iter().map(|(k, h)| (k.clone(), h.report())).collect(),
            })
            .collect();
        let mut report = WorkloadReport {
            name: info.name,
            driver: info.driver,
            target: info.target,
            model: info.model,
            primary: info.primary,
            threshold_exprs: info.thresholds,
            arrivals: Arrivals {
                started: r.start_lag.len(),
                dropped: r.dropped,
                restarts: r.restarts,
                start_lag: Summary::of(&r.start_lag),
            },
            operations: r
                .ops
                .iter()
                .map(|(k, h)| (k.clone(), Summary::of(h)))
                .collect(),
            errors: r.errors,
            outcomes: r.outcomes,
            error_rate: 0.0,
            active_secs: info.active_secs,
            throughput_per_sec: 0.0,
            bytes: r.bytes,
            media: r.has_media.then(|| MediaReport {
                sessions: r.media.sessions,
                startup_failures: r.media.startup_failures,
                stalls: r.media.stalls,
                stall_ms: r.media.stall_ms,
                viewing_secs: r.media.viewing_ms / 1000.0,
                reconnects: r.media.reconnects,
                dts_backwards: r.media.dts_backwards,
                latency_samples: r.media.latency_samples,
                live_latency_samples: r.media.live_latency_samples,
                joins_caught_up: r.media.joins_caught_up,
                join_burst_frames: r.media.join_burst_frames,
                never_caught_up: r.media.never_caught_up,
                llhls: (r.media.llhls_sessions > 0).then(|| LlHlsReport {
                    sessions: r.media.llhls_sessions,
                    playlist_requests: r.media.playlist_requests,
                    blocking_playlist_requests: r.media.blocking_playlist_requests,
                    part_requests: r.media.part_requests,
                    hinted_part_requests: r.media.hinted_part_requests,
                    ..LlHlsReport::default()
                }),
                ..MediaReport::default()
            }),
            timeline,
            arrivals_100ms: r.arrivals_100ms,
            pulses,
        };
        report.derive();
        report
    }

    /// Recomputes the ratios from the counters.
    fn derive(&mut self) {
        let active_secs = self.active_secs;
        let ok = self.operations.get(&self.primary).map_or(0, |s| s.count);
        let errors: u64 = self.errors.values().sum();
        self.error_rate = if ok + errors == 0 {
            0.0
        } else {
            errors as f64 / (ok + errors) as f64
        };
        self.throughput_per_sec = if active_secs > 0.0 {
            ok as f64 / active_secs
        } else {
            0.0
        };
        if let Some(m) = &mut self.media {
            let minutes = m.viewing_secs / 60.0;
            m.stalls_per_viewer_minute = if minutes > 0.0 {
                m.stalls as f64 / minutes
            } else {
                0.0
            };
            m.stall_ratio = if m.viewing_secs > 0.0 {
                m.stall_ms / 1000.0 / m.viewing_secs
            } else {
                0.0
            };
            m.join_burst_frames_avg = if m.joins_caught_up > 0 {
                m.join_burst_frames as f64 / m.joins_caught_up as f64
            } else {
                0.0
            };
            if let Some(ll) = &mut m.llhls {
                ll.derive();
            }
        }
    }
}

impl Report {
    /// Evaluates every workload's thresholds and sets `passed`.
    pub fn evaluate(&mut self) {
        self.thresholds = self
            .workloads
            .iter()
            .flat_map(|w| {
                w.threshold_exprs
                    .iter()
                    .map(move |expr| thresholds::evaluate(w, expr))
            })
            .collect();
        self.passed = self.thresholds.iter().all(|t| t.passed);
    }

    /// Merges shard reports exactly: counters add up, histograms are merged, ratios and
    /// percentiles are recomputed from the merged data.
    pub fn merge(reports: Vec<Report>) -> anyhow::Result<Report> {
        let mut iter = reports.into_iter();
        let mut out = iter
            .next()
            .ok_or_else(|| anyhow::anyhow!("nothing to merge"))?;
        anyhow::ensure!(
            out.schema == SCHEMA,
            "unknown report schema {:?}",
            out.schema
        );
        for r in iter {
            anyhow::ensure!(r.schema == SCHEMA, "unknown report schema {:?}", r.schema);
            anyhow::ensure!(
                r.scenario == out.scenario,
                "reports of different scenarios: {:?} and {:?}",
                out.scenario,
                r.scenario
            );
            for s in &r.shards {
                anyhow::ensure!(!out.shards.contains(s), "shard {s} appears twice");
            }
            out.started_unix_ms = out.started_unix_ms.min(r.started_unix_ms);
            out.duration_secs = out.duration_secs.max(r.duration_secs);
            out.shards.extend(r.shards);
            out.generators.extend(r.generators);
            for w in r.workloads {
                match out.workloads.iter_mut().find(|o| o.name == w.name) {
                    Some(o) => merge_workload(o, w)?,
                    None => out.workloads.push(w),
                }
            }
        }
        out.shards.sort_by_key(|s| s.index);
        out.evaluate();
        Ok(out)
    }
}

fn merge_summary(into: &mut Summary, other: &Summary, digits: u8) -> anyhow::Result<()> {
    let mut a = histogram::decode(&into.histogram, digits)?;
    histogram::merge(&mut a, &histogram::decode(&other.histogram, digits)?);
    *into = Summary::of(&a);
    Ok(())
}

fn add_counts(into: &mut BTreeMap<String, u64>, other: BTreeMap<String, u64>) {
    for (k, v) in other {
        *into.entry(k).or_default() += v;
    }
}

fn add_series(into: &mut Vec<u64>, other: &[u64]) {
    if into.len() < other.len() {
        into.resize(other.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(other) {
        *a += b;
    }
}

fn merge_workload(o: &mut WorkloadReport, w: WorkloadReport) -> anyhow::Result<()> {
    o.active_secs = o.active_secs.max(w.active_secs);
    for (k, s) in &w.operations {
        match o.operations.get_mut(k) {
            Some(into) => merge_summary(into, s, DIGITS)?,
            None => {
                o.operations.insert(k.clone(), s.clone());
            }
        }
    }
    o.arrivals.started += w.arrivals.started;
    o.arrivals.dropped += w.arrivals.dropped;
    o.arrivals.restarts += w.arrivals.restarts;
    merge_summary(&mut o.arrivals.start_lag, &w.arrivals.start_lag, DIGITS)?;
    add_counts(&mut o.errors, w.errors);
    add_counts(&mut o.outcomes, w.outcomes);
    o.bytes += w.bytes;
    o.media = match (o.media.take(), w.media) {
        (Some(mut a), Some(b)) => {
            a.sessions += b.sessions;
            a.startup_failures += b.startup_failures;
            a.stalls += b.stalls;
            a.stall_ms += b.stall_ms;
            a.viewing_secs += b.viewing_secs;
            a.reconnects += b.reconnects;
            a.dts_backwards += b.dts_backwards;
            a.latency_samples += b.latency_samples;
            a.live_latency_samples += b.live_latency_samples;
            a.joins_caught_up += b.joins_caught_up;
            a.join_burst_frames += b.join_burst_frames;
            a.never_caught_up += b.never_caught_up;
            a.llhls = match (a.llhls.take(), b.llhls) {
                (Some(mut x), Some(y)) => {
                    x.add(&y);
                    Some(x)
                }
                (x, y) => x.or(y),
            };
            Some(a)
        }
        (a, b) => a.or(b),
    };
    for s in w.timeline {
        let t = s.t as usize;
        while o.timeline.len() <= t {
            let t = o.timeline.len() as u64;
            o.timeline.push(SecondReport {
                t,
                started: 0,
                errors: 0,
                active: 0,
                bytes: 0,
                ops: BTreeMap::new(),
            });
        }
        let into = &mut o.timeline[t];
        into.started += s.started;
        into.errors += s.errors;
        into.active += s.active;
        into.bytes += s.bytes;
        for (k, op) in s.ops {
            let merged = match into.ops.get(&k) {
                Some(a) => {
                    let mut h = histogram::decode(&a.histogram, SECOND_DIGITS)?;
                    histogram::merge(&mut h, &histogram::decode(&op.histogram, SECOND_DIGITS)?);
                    SecondOp::of(&h)
                }
                None => op,
            };
            into.ops.insert(k, merged);
        }
    }
    add_series(&mut o.arrivals_100ms, &w.arrivals_100ms);
    for p in w.pulses {
        match o.pulses.iter_mut().find(|q| q.pulse == p.pulse) {
            Some(q) => {
                q.count += p.count;
                q.first_ms = q.first_ms.min(p.first_ms);
                q.last_ms = q.last_ms.max(p.last_ms);
                q.skew_ms = q.last_ms - q.first_ms;
                q.max_lag_ms = q.max_lag_ms.max(p.max_lag_ms);
            }
            None => o.pulses.push(p),
        }
    }
    o.derive();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::metrics::Metrics;

    fn info() -> WorkloadInfo {
        WorkloadInfo {
            name: "w".into(),
            driver: "http".into(),
            target: "http://x/".into(),
            model: serde_json::json!({"kind": "closed"}),
            primary: "request".into(),
            thresholds: vec!["p99 < 250ms".into()],
            active_secs: 10.0,
        }
    }

    fn report(m: &Metrics, t0: Instant, shard: Shard) -> Report {
        let mut r = Report {
            schema: SCHEMA.into(),
            scenario: "s".into(),
            started_unix_ms: 0,
            duration_secs: 10.0,
            shards: vec![shard],
            generators: Vec::new(),
            workloads: vec![WorkloadReport::build(info(), m.finish(), t0)],
            thresholds: Vec::new(),
            passed: true,
        };
        r.evaluate();
        r
    }

    /// Deterministic, skewed samples: shard 0 sees a fast server, shard 1 a slow one.
    fn sample(i: u64) -> (u64, Duration, Duration) {
        let shard = i % 2;
        let base = if shard == 0 { 800 } else { 40_000 };
        let micros =
            base + (i * 7919) % (base / 2 + 1) + if i.is_multiple_of(97) { 300_000 } else { 0 };
        (
            shard,
            Duration::from_micros(micros),
            Duration::from_millis(i % 5_000),
        )
    }

    #[test]
    fn merged_shards_equal_one_run_over_the_same_samples() {
        let t0 = Instant::now();
        let whole = Metrics::new(t0);
        let shards = [Metrics::new(t0), Metrics::new(t0)];
        for i in 0..20_000 {
            let (s, latency, at) = sample(i);
            for m in [&whole, &shards[s as usize]] {
                m.started(t0 + at, t0 + at, None);
                m.record_at("request", latency, t0 + at);
            }
            if i.is_multiple_of(1000) {
                whole.error("timeout");
                shards[s as usize].error("timeout");
            }
        }
        let one = report(&whole, t0, Shard::WHOLE);
        let parts: Vec<Report> = shards
            .iter()
            .enumerate()
            .map(|(i, m)| {
                report(
                    m,
                    t0,
                    Shard {
                        index: i as u64,
                        count: 2,
                    },
                )
            })
            .collect();
        let p99s: Vec<f64> = parts
            .iter()
            .map(|r| r.workloads[0].operations["request"].p99_ms)
            .collect();
        let merged = Report::merge(parts).expect("merges");

        let (a, b) = (&one.workloads[0], &merged.workloads[0]);
        let (x, y) = (&a.operations["request"], &b.operations["request"]);
        assert_eq!(x.count, y.count);
        for p in [50.0, 90.0, 99.0, 99.9, 100.0] {
            assert_eq!(x.percentile(p).ok(), y.percentile(p).ok(), "p{p}");
        }
        assert_eq!(
            (x.p50_ms, x.p90_ms, x.p99_ms, x.p999_ms, x.max_ms),
            (y.p50_ms, y.p90_ms, y.p99_ms, y.p999_ms, y.max_ms)
        );
        assert!((x.mean_ms - y.mean_ms).abs() < 1e-6);
        // Averaging the shards' percentiles would be wrong; merging histograms is not.
        let averaged = (p99s[0] + p99s[1]) / 2.0;
        assert!(
            (averaged - y.p99_ms).abs() > 10.0,
            "{averaged} vs {}",
            y.p99_ms
        );

        assert_eq!(a.errors, b.errors);
        assert_eq!(a.arrivals.started, b.arrivals.started);
        assert_eq!(a.arrivals_100ms, b.arrivals_100ms);
        assert_eq!(a.error_rate, b.error_rate);
        assert_eq!(a.timeline.len(), b.timeline.len());
        for (s, t) in a.timeline.iter().zip(&b.timeline) {
            assert_eq!(s.started, t.started);
            assert_eq!(s.ops["request"].count, t.ops["request"].count);
            assert_eq!(s.ops["request"].p99_ms, t.ops["request"].p99_ms);
        }
        assert_eq!(merged.shards.len(), 2);
        assert_eq!(merged.thresholds.len(), 1);
        assert_eq!(merged.thresholds[0].actual, one.thresholds[0].actual);
    }

    #[test]
    fn merge_refuses_mismatches() {
        let t0 = Instant::now();
        let m = Metrics::new(t0);
        let a = report(&m, t0, Shard::WHOLE);
        let mut b = a.clone();
        assert!(
            Report::merge(vec![a.clone(), b.clone()]).is_err(),
            "same shard twice"
        );
        b.shards = vec![Shard { index: 1, count: 2 }];
        b.scenario = "other".into();
        assert!(Report::merge(vec![a.clone(), b.clone()]).is_err());
        b.scenario = "s".into();
        b.schema = "v0".into();
        assert!(Report::merge(vec![a, b]).is_err());
    }

    #[test]
    fn join_bursts_reach_the_report_thresholds_and_merge() {
        let t0 = Instant::now();
        let player = |joins: u64, frames: u64, catch_up_ms: u64| {
            let m = Metrics::new(t0);
            for i in 0..joins {
                m.record_at(
                    "catch_up",
                    Duration::from_millis(catch_up_ms + i),
                    t0 + Duration::from_secs(1),
                );
            }
            m.record_at("live_latency", Duration::from_millis(30), t0);
            m.media(|t| {
                t.sessions += joins + 1;
                t.latency_samples += 100;
                t.live_latency_samples += 1;
                t.joins_caught_up += joins;
                t.join_burst_frames += frames;
                t.never_caught_up += 1;
            });
            let mut info = info();
            info.driver = "flv-play".into();
            info.primary = "startup".into();
            info.thresholds = vec![
                "catch_up.p99 < 50ms".into(),
                "live_latency.p99 < 100ms".into(),
                "join_burst_frames_avg <= 100".into(),
                "never_caught_up == 0".into(),
            ];
            WorkloadReport::build(info, m.finish(), t0)
        };
        let mut r = Report {
            schema: SCHEMA.into(),
            scenario: "s".into(),
            started_unix_ms: 0,
            duration_secs: 10.0,
            shards: vec![Shard { index: 0, count: 2 }],
            generators: Vec::new(),
            workloads: vec![player(4, 400, 10)],
            thresholds: Vec::new(),
            passed: true,
        };
        r.evaluate();
        let passed: Vec<bool> = r.thresholds.iter().map(|t| t.passed).collect();
        assert_eq!(passed, [true, true, true, false], "{:?}", r.thresholds);
        let media = r.workloads[0].media.clone().expect("player workload");
        assert_eq!(media.join_burst_frames_avg, 100.0);

        let mut other = r.clone();
        other.shards = vec![Shard { index: 1, count: 2 }];
        other.workloads = vec![player(1, 200, 80)];
        let merged = Report::merge(vec![r, other]).expect("merges");
        let w = &merged.workloads[0];
        let media = w.media.as_ref().expect("player workload");
        assert_eq!((media.joins_caught_up, media.join_burst_frames), (5, 600));
        assert_eq!((media.never_caught_up, media.live_latency_samples), (2, 2));
        assert_eq!(media.join_burst_frames_avg, 120.0);
        assert_eq!(w.operations["catch_up"].count, 5);
        let passed: Vec<bool> = merged.thresholds.iter().map(|t| t.passed).collect();
        assert_eq!(
            passed,
            [false, true, false, false],
            "{:?}",
            merged.thresholds
        );
        let text = crate::text::render(&merged);
        assert!(
            text.contains("join: 5 joins caught up with the live edge after 120.0 frames"),
            "{text}"
        );
    }

    #[test]
    fn llhls_requests_per_viewer_reach_the_report_and_merge() {
        let t0 = Instant::now();
        let viewers = |sessions: u64, parts: u64| {
            let m = Metrics::new(t0);
            m.media(|t| {
                t.sessions += sessions;
                t.llhls_sessions += sessions;
                t.playlist_requests += parts + sessions;
                t.blocking_playlist_requests += parts;
                t.part_requests += parts;
                t.hinted_part_requests += parts / 2;
            });
            let mut info = info();
            info.driver = "llhls-play".into();
            info.primary = "startup".into();
            WorkloadReport::build(info, m.finish(), t0)
        };
        let one = viewers(2, 120);
        let ll = one.media.as_ref().and_then(|m| m.llhls.clone());
        let ll = ll.expect("LL-HLS requests");
        assert_eq!(
            (ll.part_requests_per_viewer, ll.playlist_requests_per_viewer),
            (60.0, 61.0)
        );
        let json = serde_json::to_value(&one).expect("serializes");
        assert_eq!(
            json["media"]["llhls"]["blocking_playlist_requests_per_viewer"],
            60.0
        );
        let report = |shard, w| Report {
            schema: SCHEMA.into(),
            scenario: "s".into(),
            started_unix_ms: 0,
            duration_secs: 10.0,
            shards: vec![Shard {
                index: shard,
                count: 2,
            }],
            generators: Vec::new(),
            workloads: vec![w],
            thresholds: Vec::new(),
            passed: true,
        };
        let merged =
            Report::merge(vec![report(0, one), report(1, viewers(1, 90))]).expect("merges");
        let media = merged.workloads[0].media.as_ref().expect("player workload");
        let ll = media.llhls.as_ref().expect("LL-HLS requests");
        assert_eq!(
            (ll.sessions, ll.part_requests, ll.hinted_part_requests),
            (3, 210, 105)
        );
        assert_eq!(ll.part_requests_per_viewer, 70.0);
        let text = crate::text::render(&merged);
        assert!(
            text.contains("ll-hls: 3 sessions; per viewer 71.0 playlist requests (70.0 blocking), 70.0 part requests"),
            "{text}"
        );
        // Reports without LL-HLS sessions read and write as before.
        let flv = WorkloadReport::build(info(), Metrics::new(t0).finish(), t0);
        let json = serde_json::to_value(&flv).expect("serializes");
        assert!(json.get("media").is_none_or(|m| m.get("llhls").is_none()));
    }
}
