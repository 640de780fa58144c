//! The generator's own limits: CPU, memory, late and dropped arrivals, so a run never blames
//! the server for the load generator's bottleneck.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::shard::Shard;

/// A second counts as saturated above this share of the cores.
const SATURATED: f64 = 0.9;
/// Start lag p99 above this means arrivals started late.
const LATE_MS: f64 = 50.0;

/// What one generator process used and whether it was the bottleneck.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratorReport {
    /// Which shard.
    pub shard: Shard,
    /// Host name.
    pub host: String,
    /// Cores available to the process.
    pub cores: usize,
    /// CPU seconds used (user + system).
    pub cpu_secs: f64,
    /// Average cores busy over the run.
    pub cpu_cores_avg: f64,
    /// Busiest second, in cores.
    pub cpu_cores_peak: f64,
    /// Seconds in which the generator used more than 90% of its cores.
    pub saturated_secs: u64,
    /// Peak resident memory.
    pub max_rss_bytes: u64,
    /// Arrivals dropped across workloads.
    pub dropped: u64,
    /// Worst start-lag p99 across workloads, ms.
    pub start_lag_p99_ms: f64,
    /// Human-readable warnings when the generator limited the run.
    pub warnings: Vec<String>,
}

/// CPU seconds used by this process so far.
pub fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a live rusage; RUSAGE_SELF covers all threads.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Peak resident set size in bytes (0 where unknown).
pub fn max_rss_bytes() -> u64 {
    status_kib("VmHWM:") * 1024
}

/// Current resident set size in bytes (0 where unknown).
pub fn rss_bytes() -> u64 {
    status_kib("VmRSS:") * 1024
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Tracks CPU use second by second.
pub struct CpuMonitor {
    started: Instant,
    cpu_at_start: f64,
    last: (Instant, f64),
    peak: f64,
    saturated_secs: u64,
    cores: usize,
}

impl Default for CpuMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuMonitor {
    /// Starts measuring now.
    pub fn new() -> Self {
        let now = Instant::now();
        let cpu = cpu_secs();
        Self {
            started: now,
            cpu_at_start: cpu,
            last: (now, cpu),
            peak: 0.0,
            saturated_secs: 0,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Samples; returns the cores busy since the previous sample.
    pub fn sample(&mut self) -> f64 {
        let now = Instant::now();
        let cpu = cpu_secs();
        let wall = now.duration_since(self.last.0).as_secs_f64();
        let cores = if wall > 0.0 {
            (cpu - self.last.1) / wall
        } else {
            0.0
        };
        self.last = (now, cpu);
        self.peak = self.peak.max(cores);
        if cores > SATURATED * self.cores as f64 {
            self.saturated_secs += 1;
        }
        cores
    }

    /// The report for this process.
    pub fn report(&self, shard: Shard, dropped: u64, start_lag_p99_ms: f64) -> GeneratorReport {
        let cpu = cpu_secs() - self.cpu_at_start;
        let wall = self.started.elapsed().as_secs_f64();
        let mut warnings = Vec::new();
        if self.saturated_secs > 0 {
            warnings.push(format!(
                "the generator used over {:.0}% of its {} cores for {} s (peak {:.2}): \
                 latencies and rates in those seconds may reflect the generator, not the server",
                SATURATED * 100.0,
                self.cores,
                self.saturated_secs,
                self.peak
            ));
        }
        if dropped > 0 {
            warnings.push(format!(
                "{dropped} arrivals were dropped because max_in_flight iterations were running"
            ));
        }
        if start_lag_p99_ms > LATE_MS {
            warnings.push(format!(
                "arrivals started late (start lag p99 {start_lag_p99_ms:.1} ms): the generator \
                 could not keep the schedule"
            ));
        }
        GeneratorReport {
            shard,
            host: host_name(),
            cores: self.cores,
            cpu_secs: cpu,
            cpu_cores_avg: if wall > 0.0 { cpu / wall } else { 0.0 },
            cpu_cores_peak: self.peak,
            saturated_secs: self.saturated_secs,
            max_rss_bytes: max_rss_bytes(),
            dropped,
            start_lag_p99_ms,
            warnings,
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_itself() {
        let mut m = CpuMonitor::new();
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed().as_millis() < 50 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(m.sample() > 0.0);
        let r = m.report(Shard::WHOLE, 3, 80.0);
        assert!(r.cpu_secs > 0.0);
        assert!(r.max_rss_bytes > 0);
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    }
}
