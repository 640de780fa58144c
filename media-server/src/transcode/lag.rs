//! Whether a transcoder keeps up with real time: media time processed against wall time.

use std::time::{Duration, Instant};

/// Tracks how far processing has fallen behind the media clock.
///
/// Lag is wall time elapsed minus media time processed, relative to the smallest lag seen, so
/// start-up bursts and a publisher's own pacing do not count. Past `max_lag` it asks for one
/// rendition to be dropped, then waits another `max_lag` of media before asking again.
#[derive(Debug)]
pub struct LagMonitor {
    max_lag: Duration,
    start: Option<(Instant, u64)>,
    baseline: f64,
    quiet_until_dts: u64,
}

impl LagMonitor {
    /// A monitor allowing `max_lag` behind real time.
    pub fn new(max_lag: Duration) -> Self {
        Self {
            max_lag,
            start: None,
            baseline: f64::MAX,
            quiet_until_dts: 0,
        }
    }

    /// Records that media up to `dts_ms` was processed at `now`. Returns the lag in seconds
    /// when a rendition should be dropped.
    pub fn observe(&mut self, now: Instant, dts_ms: u64) -> Option<f64> {
        let (t0, d0) = match self.start {
            Some((t0, d0)) if dts_ms >= d0 => (t0, d0),
            _ => {
                self.start = Some((now, dts_ms));
                self.baseline = 0.0;
                return None;
            }
        };
        let lag = now.duration_since(t0).as_secs_f64() - (dts_ms - d0) as f64 / 1000.0;
        self.baseline = self.baseline.min(lag);
        let behind = lag - self.baseline;
        if behind > self.max_lag.as_secs_f64() && dts_ms >= self.quiet_until_dts {
            self.baseline = lag;
            self.quiet_until_dts = dts_ms + self.max_lag.as_millis() as u64;
            return Some(behind);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_and_bursts_are_fine_falling_behind_is_not() {
        let t0 = Instant::now();
        let mut m = LagMonitor::new(Duration::from_secs(2));
        // A one-second burst, then real time for a minute.
        for i in 0..30u64 {
            assert_eq!(m.observe(t0, i * 33), None);
        }
        for s in 1..60u64 {
            assert_eq!(
                m.observe(t0 + Duration::from_secs(s), 1000 + s * 1000),
                None
            );
        }
        // Processing at half speed: asks once past 2 s behind, then stays quiet for 2 s of media.
        let t1 = t0 + Duration::from_secs(60);
        let mut asked = Vec::new();
        for s in 1..=12u64 {
            if m.observe(t1 + Duration::from_secs(s), 61_000 + s * 500)
                .is_some()
            {
                asked.push(s);
            }
        }
        assert_eq!(asked, [5, 10]);
    }
}
