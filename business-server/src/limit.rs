//! Rate limits: token buckets per user and per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// A token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, rate: f64, burst: u32, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }

    fn idle_since(&self) -> Instant {
        self.last
    }
}

/// Per-user buckets shared by all connections of a user on this instance.
pub struct UserRates {
    rate: f64,
    burst: u32,
    buckets: DashMap<Arc<str>, TokenBucket>,
}

impl UserRates {
    /// Buckets of `rate` per second and `burst`.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst,
            buckets: DashMap::new(),
        }
    }

    /// Takes one token from `user`'s bucket.
    pub fn check(&self, user: &Arc<str>, now: Instant) -> Result<(), Duration> {
        self.buckets
            .entry(user.clone())
            .or_insert_with(|| TokenBucket::new(self.burst, now))
            .take(self.rate, self.burst, now)
    }

    /// Forgets buckets unused for `idle` (they would be full again anyway).
    pub fn sweep(&self, idle: Duration, now: Instant) {
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.idle_since()) < idle);
    }

    /// Whether no user is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2, t0);
        assert!(b.take(1.0, 2, t0).is_ok());
        assert!(b.take(1.0, 2, t0).is_ok());
        let wait = b.take(1.0, 2, t0).unwrap_err();
        assert!(wait > Duration::from_millis(900));
        assert!(b.take(1.0, 2, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn user_rates_are_per_user_and_swept() {
        let r = UserRates::new(1.0, 1);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let t0 = Instant::now();
        assert!(r.check(&a, t0).is_ok());
        assert!(r.check(&a, t0).is_err());
        assert!(r.check(&b, t0).is_ok());
        r.sweep(Duration::from_secs(1), t0 + Duration::from_secs(2));
        assert!(r.is_empty());
    }
}
