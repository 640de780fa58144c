//! A timer for a deadline that moves on every read (an idle timeout): it stays registered at
//! the deadline it was armed for and, when it fires early, re-arms at the current one. The
//! runtime's timer is touched once per period instead of once per read.

use std::pin::Pin;

use tokio::time::{sleep_until, Instant, Sleep};

/// One re-armable timer.
pub(crate) struct Deadline {
    sleep: Pin<Box<Sleep>>,
}

impl Deadline {
    /// A timer armed at `at`.
    pub(crate) fn new(at: Instant) -> Self {
        Self {
            sleep: Box::pin(sleep_until(at)),
        }
    }

    /// Resolves once `deadline` has passed.
    pub(crate) async fn until(&mut self, deadline: Instant) {
        loop {
            if self.sleep.deadline() > deadline {
                self.sleep.as_mut().reset(deadline);
            }
            self.sleep.as_mut().await;
            if Instant::now() >= deadline {
                return;
            }
            self.sleep.as_mut().reset(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_latest_deadline_it_is_given() {
        let start = Instant::now();
        let mut d = Deadline::new(start + Duration::from_secs(1));
        let later = start + Duration::from_secs(3);
        d.until(later).await;
        assert!(Instant::now() >= later);
        let sooner = Instant::now() + Duration::from_millis(10);
        d.until(sooner).await;
        assert!(Instant::now() >= sooner && Instant::now() < later + Duration::from_secs(1));
    }
}
