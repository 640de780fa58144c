//! Real-time pacing: a message is sent when the wall clock reaches its timestamp.

use std::time::Duration;

use tokio::time::Instant;

/// Maps media time to wall time from the first message on.
#[derive(Debug)]
pub struct Pacer {
    start: Option<(Instant, u64)>,
}

impl Pacer {
    /// A pacer that starts with the first message.
    pub fn new() -> Self {
        Self { start: None }
    }

    /// When a message with `dts` (ms) is due.
    pub fn due(&mut self, dts: u64) -> Instant {
        let (start, first) = *self.start.get_or_insert((Instant::now(), dts));
        start + Duration::from_millis(dts.saturating_sub(first))
    }

    /// Sleeps until `dts` is due.
    pub async fn wait(&mut self, dts: u64) {
        tokio::time::sleep_until(self.due(dts)).await;
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_by_timestamp_difference() {
        let mut p = Pacer::new();
        let t0 = Instant::now();
        p.wait(1000).await;
        p.wait(1500).await;
        assert_eq!(Instant::now() - t0, Duration::from_millis(500));
    }
}
