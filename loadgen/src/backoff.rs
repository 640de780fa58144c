//! Restarting a closed-model user's session after it ends early: exponential backoff with
//! jitter, as real clients reconnect, so a refused connection does not come straight back.

use std::time::Duration;

/// Pause after a session that ended early, before any backoff.
pub const BASE: Duration = Duration::from_secs(1);
/// Longest pause.
pub const MAX: Duration = Duration::from_secs(30);
/// A session that lasted this long worked; the next early end starts from [`BASE`] again.
pub const HEALTHY: Duration = Duration::from_secs(10);

/// One user's restart state.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    failures: u32,
    restarts: u64,
}

impl Backoff {
    /// The pause before user `user`'s next session, after one that lasted `lasted`. The pause is
    /// drawn in [cap/2, cap], where cap doubles from [`BASE`] with every session in a row that
    /// lasted less than [`HEALTHY`], up to [`MAX`]; the draw is a hash of the user and the
    /// restart count, so users spread out and a run is reproducible.
    pub fn pause(&mut self, user: u64, lasted: Duration) -> Duration {
        if lasted >= HEALTHY {
            self.failures = 0;
        }
        let cap = BASE.saturating_mul(1 << self.failures.min(5)).min(MAX);
        self.failures = self.failures.saturating_add(1);
        self.restarts = self.restarts.wrapping_add(1);
        let unit = (mix(user ^ self.restarts.rotate_left(32)) >> 11) as f64 / (1u64 << 53) as f64;
        cap / 2 + cap.mul_f64(unit / 2.0)
    }
}

/// splitmix64's output function: a well-spread 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_ends_back_off_exponentially_with_jitter_up_to_the_cap() {
        let mut b = Backoff::default();
        let caps = [1, 2, 4, 8, 16, 30, 30, 30];
        for cap in caps {
            let pause = b.pause(7, Duration::ZERO);
            let cap = Duration::from_secs(cap);
            assert!(
                pause >= cap / 2 && pause <= cap,
                "{pause:?} for cap {cap:?}"
            );
        }
    }

    #[test]
    fn a_healthy_session_starts_again_from_the_base() {
        let mut b = Backoff::default();
        for _ in 0..4 {
            b.pause(1, Duration::from_millis(5));
        }
        let pause = b.pause(1, HEALTHY);
        assert!(pause >= BASE / 2 && pause <= BASE, "{pause:?}");
    }

    #[test]
    fn users_refused_together_spread_out() {
        let pauses: Vec<Duration> = (0..1000)
            .map(|user| Backoff::default().pause(user, Duration::ZERO))
            .collect();
        let early = pauses.iter().filter(|p| **p < BASE * 3 / 4).count();
        assert!(
            (350..650).contains(&early),
            "{early} of 1000 in the first half"
        );
    }
}
