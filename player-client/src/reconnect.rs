//! Bounded exponential backoff while a source is unreachable.

use std::time::Duration;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Tracks one outage: when it started and how long to wait before the next attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    give_up_after: Duration,
    outage_since: Option<Duration>,
    next: Duration,
}

impl Backoff {
    /// Backoff that gives up once an outage has lasted `give_up_after`.
    pub fn new(give_up_after: Duration) -> Self {
        Self {
            give_up_after,
            outage_since: None,
            next: FIRST_DELAY,
        }
    }

    /// An attempt failed at `now` (time since the session started). Returns how long to wait
    /// before the next attempt, or `None` when the outage has lasted too long.
    pub fn failed(&mut self, now: Duration) -> Option<Duration> {
        let since = *self.outage_since.get_or_insert(now);
        let lasted = now.saturating_sub(since);
        let left = self
            .give_up_after
            .checked_sub(lasted)
            .filter(|d| !d.is_zero())?;
        let delay = self.next.min(left);
        self.next = (self.next * 2).min(MAX_DELAY);
        Some(delay)
    }

    /// How long the current outage has lasted at `now`; zero outside an outage.
    pub fn outage(&self, now: Duration) -> Duration {
        self.outage_since
            .map_or(Duration::ZERO, |since| now.saturating_sub(since))
    }

    /// Media flows again. Returns true if this ended an outage.
    pub fn recovered(&mut self) -> bool {
        self.next = FIRST_DELAY;
        self.outage_since.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn delays_double_up_to_the_cap_and_stop_at_the_limit() {
        let mut b = Backoff::new(ms(5000));
        let mut now = ms(1000);
        let mut delays = Vec::new();
        while let Some(d) = b.failed(now) {
            delays.push(d.as_millis());
            now += d;
        }
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 1900]);
        assert_eq!(b.outage(now), ms(5000));
    }

    #[test]
    fn recovery_resets_the_outage() {
        let mut b = Backoff::new(ms(1000));
        assert!(!b.recovered());
        assert_eq!(b.failed(ms(0)), Some(ms(100)));
        assert_eq!(b.failed(ms(100)), Some(ms(200)));
        assert!(b.recovered());
        assert_eq!(b.outage(ms(5000)), Duration::ZERO);
        assert_eq!(b.failed(ms(5000)), Some(ms(100)));
        assert_eq!(b.failed(ms(6000)), None);
    }
}
