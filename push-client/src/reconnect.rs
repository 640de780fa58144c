//! Publishing that survives server restarts: reconnect with exponential backoff and jitter.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::publish::{publish, PublishOptions};
use crate::source::MediaSource;
use crate::stats::{PublishState, PublishStats};
use crate::url::RtmpUrl;

/// Backoff between reconnects.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before attempt `n` (0-based): doubling, capped, with ±50% jitter.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self.initial.saturating_mul(1u32 << n.min(16)).min(self.max);
        base.mul_f64(rand::random_range(0.5..1.5))
    }

    /// The delay before the next session, after one that lasted `lasted`; `attempt` counts
    /// the sessions in a row that lasted less than [`STABLE`] (a stable one starts it over).
    pub fn after_session(&self, attempt: &mut u32, lasted: Duration) -> Duration {
        if lasted >= STABLE {
            *attempt = 0;
        }
        let delay = self.delay(*attempt);
        *attempt = attempt.saturating_add(1);
        delay
    }
}

/// A session that lasted this long resets the backoff.
pub const STABLE: Duration = Duration::from_secs(10);

/// Publishes until `stop`, reconnecting after every failure.
pub async fn run(
    url: &RtmpUrl,
    source: &mut dyn MediaSource,
    options: &PublishOptions,
    backoff: &Backoff,
    stop: &CancellationToken,
    stats: &PublishStats,
) {
    let mut attempt = 0u32;
    while !stop.is_cancelled() {
        let started = Instant::now();
        let result = publish(url, source, options, stop, stats).await;
        if stop.is_cancelled() {
            break;
        }
        let delay = backoff.after_session(&mut attempt, started.elapsed());
        let reason = match result {
            Ok(()) => "publish ended".to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(url = %format!("rtmp://{}/{}/{}", url.addr, url.app, url.stream),
            "publisher disconnected ({reason}); reconnecting in {delay:?}");
        stats.set_state(PublishState::Backoff);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        stats.add_reconnect();
    }
    stats.set_state(PublishState::Stopped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_and_cap() {
        let b = Backoff::default();
        for n in 0..20 {
            let d = b.delay(n);
            let base = (Duration::from_millis(250) * 2u32.pow(n.min(16))).min(b.max);
            assert!(d >= base / 2 && d <= base * 3 / 2, "attempt {n}: {d:?}");
        }
    }
}
