//! Playlist requests per second, the origin's estimate of how many HLS and LL-HLS players
//! watch a stream.

use std::time::Instant;

/// Seconds of playlist requests remembered for the viewer estimate.
const POLL_SECONDS: usize = 64;

/// Playlist requests per second over the last [`POLL_SECONDS`]: a fixed ring of counters,
/// so it costs the same however many players poll and for however long.
#[derive(Debug)]
pub(crate) struct PollRate {
    origin: Instant,
    /// (second since `origin`, requests in it), indexed by second modulo the ring size.
    seconds: [(u64, u32); POLL_SECONDS],
}

impl PollRate {
    pub(crate) fn new(origin: Instant) -> Self {
        Self {
            origin,
            seconds: [(u64::MAX, 0); POLL_SECONDS],
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    pub(crate) fn record(&mut self, now: Instant) {
        let second = self.second(now);
        let slot = &mut self.seconds[(second % POLL_SECONDS as u64) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 = slot.1.saturating_add(1);
    }

    /// Requests in the last `window` seconds (the current one included), at most the ring.
    pub(crate) fn recent(&self, now: Instant, window: u64) -> usize {
        let second = self.second(now);
        let first = second.saturating_sub(window.clamp(1, POLL_SECONDS as u64) - 1);
        self.seconds
            .iter()
            .filter(|(s, _)| (first..=second).contains(s))
            .map(|&(_, n)| n as usize)
            .sum()
    }
}
