//! The plain-text summary printed at the end of a run.

use std::fmt::Write;

use crate::report::Report;

/// Renders `report` for a terminal.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let shards = if report.shards.len() > 1 {
        format!(" ({} shards)", report.shards.len())
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "scenario {:?}{shards}: {:.0} s",
        report.scenario, report.duration_secs
    );
    for w in &report.workloads {
        let _ = writeln!(s, "\n{} ({} → {})", w.name, w.driver, w.target);
        let _ = writeln!(
            s,
            "  started {}  dropped {}  restarts {}  start lag p99 {:.2} ms  throughput {:.1}/s  error rate {:.3}%",
            w.arrivals.started,
            w.arrivals.dropped,
            w.arrivals.restarts,
            w.arrivals.start_lag.p99_ms,
            w.throughput_per_sec,
            w.error_rate * 100.0
        );
        let _ = writeln!(
            s,
            "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        for (op, o) in &w.operations {
            let _ = writeln!(
                s,
                "  {op:<10} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                o.count, o.p50_ms, o.p90_ms, o.p99_ms, o.p999_ms, o.max_ms
            );
        }
        if let Some(m) = &w.media {
            let _ = writeln!(
                s,
                "  media: {} sessions, {} never started, {} stalls ({:.2}/viewer-min, stall ratio {:.3}%), {} reconnects",
                m.sessions,
                m.startup_failures,
                m.stalls,
                m.stalls_per_viewer_minute,
                m.stall_ratio * 100.0,
                m.reconnects
            );
            let catch_up = w.operations.get("catch_up").map_or_else(String::new, |c| {
                format!(", catch-up p50 {:.2} ms p99 {:.2} ms", c.p50_ms, c.p99_ms)
            });
            let _ = writeln!(
                s,
                "  join: {} joins caught up with the live edge after {:.1} frames on average{catch_up}; {} sessions never caught up; live latency from {} of {} stamped frames",
                m.joins_caught_up,
                m.join_burst_frames_avg,
                m.never_caught_up,
                m.live_latency_samples,
                m.latency_samples
            );
            if let Some(ll) = &m.llhls {
                let _ = writeln!(
                    s,
                    "  ll-hls: {} sessions; per viewer {:.1} playlist requests ({:.1} blocking), {:.1} part requests ({} of {} in all were preload hints)",
                    ll.sessions,
                    ll.playlist_requests_per_viewer,
                    ll.blocking_playlist_requests_per_viewer,
                    ll.part_requests_per_viewer,
                    ll.hinted_part_requests,
                    ll.part_requests
                );
            }
        }
        if !w.outcomes.is_empty() {
            let _ = writeln!(s, "  outcomes: {}", pairs(&w.outcomes));
        }
        if !w.errors.is_empty() {
            let _ = writeln!(s, "  errors: {}", pairs(&w.errors));
        }
        for p in &w.pulses {
            let _ = writeln!(
                s,
                "  pulse {}: {} starts from {:.1} ms to {:.1} ms (skew {:.1} ms, max lag {:.1} ms)",
                p.pulse, p.count, p.first_ms, p.last_ms, p.skew_ms, p.max_lag_ms
            );
        }
        let _ = writeln!(s, "  bytes {}", w.bytes);
    }
    for g in &report.generators {
        let _ = writeln!(
            s,
            "\ngenerator {} (shard {}): CPU {:.2} cores avg, {:.2} peak of {}; RSS peak {:.1} MiB",
            g.host,
            g.shard,
            g.cpu_cores_avg,
            g.cpu_cores_peak,
            g.cores,
            g.max_rss_bytes as f64 / (1 << 20) as f64
        );
        for warning in &g.warnings {
            let _ = writeln!(s, "  warning: {warning}");
        }
    }
    if !report.thresholds.is_empty() {
        let _ = writeln!(s, "\nthresholds:");
        for t in &report.thresholds {
            let actual = t
                .actual
                .map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"));
            let note = t
                .note
                .as_deref()
                .map_or(String::new(), |n| format!(" ({n})"));
            let _ = writeln!(
                s,
                "  {} {}: {} (actual {actual}){note}",
                if t.passed { "ok  " } else { "FAIL" },
                t.workload,
                t.expr
            );
        }
    }
    s
}

fn pairs(m: &std::collections::BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
