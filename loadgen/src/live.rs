//! Live progress on the terminal: elapsed/total, and per workload the current rate, active
//! users, p99 and errors, redrawn in place each second. Silent when stderr is not a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// The progress view.
pub struct Live {
    enabled: bool,
    total: Duration,
    lines: usize,
}

impl Live {
    /// A view that draws only if `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, total: Duration) -> Self {
        Self {
            enabled: wanted && std::io::stderr().is_terminal(),
            total,
            lines: 0,
        }
    }

    /// Redraws: `workloads` are (name, primary operation, metrics).
    pub fn show(&mut self, elapsed: Duration, cores: f64, workloads: &[(&str, &str, &Metrics)]) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let mut out = String::new();
        if self.lines > 0 {
            out.push_str(&format!("\x1b[{}A", self.lines));
        }
        out.push_str(&format!(
            "\x1b[2K[{:>5.0}s / {:.0}s]  generator CPU {:.2} cores\n",
            elapsed.as_secs_f64(),
            self.total.as_secs_f64(),
            cores
        ));
        for (name, op, m) in workloads {
            out.push_str(&format!("\x1b[2K  {}\n", line(name, op, m, now)));
        }
        self.lines = workloads.len() + 1;
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }

    /// Leaves the last frame on screen.
    pub fn finish(&mut self) {
        if self.enabled && self.lines > 0 {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// One workload's status line.
pub fn line(name: &str, op: &str, m: &Metrics, now: Instant) -> String {
    let (count, _, p99) = m.last_second(now, op);
    let p99 = p99.map_or_else(|| "-".to_string(), |v| format!("{v:.1} ms"));
    format!(
        "{name:<16} {count:>7} {op}/s  {:>6} active  p99 {p99:>10}  errors {}",
        m.active_now(),
        m.error_total()
    )
}
