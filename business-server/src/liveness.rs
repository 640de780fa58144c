//! When to ping a member and when to give up on a silent one, fed the current time.
//!
//! The server pings every `ping_every`; anything received from the member (a pong, a
//! message, its own ping) counts as a sign of life. A member silent for `idle_after` is
//! due to be closed; closing wins over pinging when both are due.

use std::time::{Duration, Instant};

/// What a member's connection must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Send a WebSocket ping.
    Ping,
    /// Close: nothing was received for the idle deadline.
    Idle,
}

/// Ping schedule and idle deadline of one member.
#[derive(Debug, Clone)]
pub struct Liveness {
    ping_every: Duration,
    idle_after: Duration,
    last_heard: Instant,
    next_ping: Instant,
}

impl Liveness {
    /// A member just connected at `now`.
    pub fn new(now: Instant, ping_every: Duration, idle_after: Duration) -> Self {
        Self {
            ping_every,
            idle_after,
            last_heard: now,
            next_ping: now + ping_every,
        }
    }

    /// Something arrived from the member at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    /// When the member is closed unless it is heard from before.
    pub fn idle_at(&self) -> Instant {
        self.last_heard + self.idle_after
    }

    /// When [`Liveness::poll`] has something to do next, at the latest.
    pub fn deadline(&self) -> Instant {
        self.next_ping.min(self.idle_at())
    }

    /// What is due at `now`; a ping moves the next one `ping_every` later.
    pub fn poll(&mut self, now: Instant) -> Option<Due> {
        if now >= self.idle_at() {
            Some(Due::Idle)
        } else if now >= self.next_ping {
            self.next_ping = now + self.ping_every;
            Some(Due::Ping)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pings_on_schedule_and_closes_a_silent_member() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, 15 * S, 45 * S);
        assert_eq!(l.deadline(), t0 + 15 * S);
        assert_eq!(l.poll(t0 + 14 * S), None);
        assert_eq!(l.poll(t0 + 15 * S), Some(Due::Ping));
        assert_eq!(l.poll(t0 + 16 * S), None);
        assert_eq!(l.deadline(), t0 + 30 * S);
        assert_eq!(l.poll(t0 + 30 * S), Some(Due::Ping));
        assert_eq!(l.poll(t0 + 45 * S), Some(Due::Idle));
    }

    #[test]
    fn anything_heard_moves_the_idle_deadline() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, 15 * S, 45 * S);
        assert_eq!(l.poll(t0 + 15 * S), Some(Due::Ping));
        l.heard(t0 + 16 * S);
        assert_eq!(l.idle_at(), t0 + 61 * S);
        l.heard(t0 + 10 * S);
        assert_eq!(l.idle_at(), t0 + 61 * S, "time never goes back");
        assert_eq!(l.poll(t0 + 45 * S), Some(Due::Ping));
        assert_eq!(l.poll(t0 + 60 * S), Some(Due::Ping));
        assert_eq!(l.deadline(), t0 + 61 * S);
        assert_eq!(l.poll(t0 + 61 * S), Some(Due::Idle));
    }
}
