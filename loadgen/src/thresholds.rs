//! Pass/fail conditions such as `p99 < 250ms`, `error_rate < 0.1%`, `stall_ratio < 1%`.
//!
//! Metrics: `pNN` (`p50`, `p99`, `p99.9`), `mean`, `max` of the workload's primary operation,
//! or of any operation as `OP.p99` (`startup.p99`, `latency.p50`, `live_latency.p99`,
//! `catch_up.p99`, `start_lag.p99`); counters `count`, `errors`, `dropped`, `error_rate`,
//! `throughput` (per second), `stall_ratio`, `stalls_per_minute`, `startup_failures`,
//! `join_burst_frames_avg`, `never_caught_up`, and `outcome.KIND` (e.g. `outcome.success`).
//! Values take `us`, `ms`, `s` for latencies (compared in ms) and `%` for ratios.

use serde::{Deserialize, Serialize};

use crate::report::WorkloadReport;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Metric name as written.
    pub metric: String,
    /// Comparison.
    pub cmp: Cmp,
    /// Right-hand side, in ms for latencies and as a fraction for percentages.
    pub value: f64,
}

/// A threshold's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// Workload it applies to.
    pub workload: String,
    /// The expression.
    pub expr: String,
    /// The measured value (ms for latencies, fraction for ratios).
    pub actual: Option<f64>,
    /// Whether it held.
    pub passed: bool,
    /// Why it could not be evaluated, if so.
    pub note: Option<String>,
}

impl Threshold {
    /// Parses `METRIC OP VALUE`.
    pub fn parse(expr: &str) -> anyhow::Result<Self> {
        let ops = [
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("==", Cmp::Eq),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
        ];
        let (metric, cmp, rhs) = ops
            .iter()
            .find_map(|(tok, cmp)| {
                expr.split_once(tok)
                    .map(|(l, r)| (l.trim().to_string(), *cmp, r.trim()))
            })
            .ok_or_else(|| anyhow::anyhow!("threshold {expr:?} has no <, <=, >, >= or =="))?;
        anyhow::ensure!(!metric.is_empty(), "threshold {expr:?} has no metric");
        Self::check_metric(&metric).map_err(|e| anyhow::anyhow!("threshold {expr:?}: {e}"))?;
        let value = parse_value(rhs).map_err(|e| anyhow::anyhow!("threshold {expr:?}: {e}"))?;
        Ok(Threshold { metric, cmp, value })
    }

    fn check_metric(metric: &str) -> anyhow::Result<()> {
        let known = [
            "count",
            "errors",
            "dropped",
            "error_rate",
            "throughput",
            "stall_ratio",
            "stalls_per_minute",
            "startup_failures",
            "join_burst_frames_avg",
            "never_caught_up",
        ];
        if metric.starts_with("outcome.") || known.contains(&metric) || split_op(metric).is_some() {
            return Ok(());
        }
        anyhow::bail!("unknown metric {metric:?}")
    }

    fn holds(&self, actual: f64) -> bool {
        match self.cmp {
            Cmp::Lt => actual < self.value,
            Cmp::Le => actual <= self.value,
            Cmp::Gt => actual > self.value,
            Cmp::Ge => actual >= self.value,
            Cmp::Eq => (actual - self.value).abs() < 1e-9,
        }
    }
}

fn is_percentile(stat: &str) -> bool {
    stat.strip_prefix('p')
        .and_then(|n| n.parse::<f64>().ok())
        .is_some_and(|p| (0.0..=100.0).contains(&p))
}

fn is_stat(stat: &str) -> bool {
    is_percentile(stat) || matches!(stat, "mean" | "max" | "count")
}

/// Splits a latency metric into (operation, statistic); `None` operation means the primary.
fn split_op(metric: &str) -> Option<(Option<&str>, &str)> {
    if is_stat(metric) {
        return Some((None, metric));
    }
    let (op, stat) = metric.split_once('.')?;
    (!op.is_empty() && is_stat(stat)).then_some((Some(op), stat))
}

fn parse_value(s: &str) -> anyhow::Result<f64> {
    let (num, scale) = if let Some(n) = s.strip_suffix('%') {
        (n, 0.01)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("bad value {s:?}"))?;
    Ok(v * scale)
}

/// The value of `metric` in `w`, or why there is none.
fn measure(w: &WorkloadReport, metric: &str) -> Result<f64, String> {
    let media = || {
        w.media
            .as_ref()
            .ok_or_else(|| format!("{metric} needs a player workload"))
    };
    match metric {
        "count" => return Ok(w.operations.get(&w.primary).map_or(0, |s| s.count) as f64),
        "errors" => return Ok(w.errors.values().sum::<u64>() as f64),
        "dropped" => return Ok(w.arrivals.dropped as f64),
        "error_rate" => return Ok(w.error_rate),
        "throughput" => return Ok(w.throughput_per_sec),
        "stall_ratio" => return media().map(|m| m.stall_ratio),
        "stalls_per_minute" => return media().map(|m| m.stalls_per_viewer_minute),
        "startup_failures" => return media().map(|m| m.startup_failures as f64),
        "join_burst_frames_avg" => return media().map(|m| m.join_burst_frames_avg),
        "never_caught_up" => return media().map(|m| m.never_caught_up as f64),
        _ => {}
    }
    if let Some(kind) = metric.strip_prefix("outcome.") {
        return Ok(w.outcomes.get(kind).copied().unwrap_or(0) as f64);
    }
    let (op, stat) = split_op(metric).ok_or_else(|| format!("unknown metric {metric:?}"))?;
    let op = op.unwrap_or(&w.primary);
    let summary = if op == "start_lag" {
        &w.arrivals.start_lag
    } else {
        w.operations
            .get(op)
            .ok_or_else(|| format!("no {op:?} samples"))?
    };
    match stat {
        "mean" => Ok(summary.mean_ms),
        "max" => Ok(summary.max_ms),
        "count" => Ok(summary.count as f64),
        p => {
            let p: f64 = p[1..]
                .parse()
                .map_err(|_| format!("bad percentile {p:?}"))?;
            summary.percentile(p).map_err(|e| e.to_string())
        }
    }
}

/// Evaluates `expr` against `w`. A metric that cannot be measured fails the threshold.
pub fn evaluate(w: &WorkloadReport, expr: &str) -> ThresholdResult {
    let result = |actual, passed, note| ThresholdResult {
        workload: w.name.clone(),
        expr: expr.to_string(),
        actual,
        passed,
        note,
    };
    match Threshold::parse(expr) {
        Err(e) => result(None, false, Some(e.to_string())),
        Ok(t) => match measure(w, &t.metric) {
            Ok(v) => result(Some(v), t.holds(v), None),
            Err(why) => result(None, false, Some(why)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let t = Threshold::parse("p99 < 250ms").expect("valid");
        assert_eq!((t.metric.as_str(), t.cmp, t.value), ("p99", Cmp::Lt, 250.0));
        let t = Threshold::parse("error_rate < 0.1%").expect("valid");
        assert!((t.value - 0.001).abs() < 1e-12);
        let t = Threshold::parse("startup.p99.9 <= 2s").expect("valid");
        assert_eq!((t.metric.as_str(), t.value), ("startup.p99.9", 2000.0));
        assert!(Threshold::parse("outcome.success == 1000").is_ok());
        assert!(Threshold::parse("p99 250ms").is_err());
        assert!(Threshold::parse("latency_avg < 1").is_err());
        assert!(Threshold::parse("p99 < fast").is_err());
    }

    #[test]
    fn percentile_forms() {
        assert!(is_percentile("p99.9"));
        assert!(!is_percentile("p101"));
        assert!(!is_percentile("x99"));
        assert_eq!(split_op("p99.9"), Some((None, "p99.9")));
        assert_eq!(split_op("startup.p99.9"), Some((Some("startup"), "p99.9")));
        assert_eq!(split_op("latency.max"), Some((Some("latency"), "max")));
        assert_eq!(split_op("latency.avg"), None);
    }
}
