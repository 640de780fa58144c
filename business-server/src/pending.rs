//! A room's events waiting for the next batch, bounded in count and bytes.
//!
//! Events have one of two priorities. Bullet-screen chat and presence (`chat`, `join`,
//! `leave`) are [`Priority::Low`]: plentiful, and stale a moment later. Everything else
//! (notices, gifts, likes, online counts, leaderboards, sales) is [`Priority::High`]. When
//! a bound bites, the oldest low event goes first; high events are dropped, oldest first,
//! only when no low event is left. A batch carries what is left in arrival order, so the bounds also
//! bound every batch.

use std::collections::VecDeque;
use std::sync::Arc;

/// How much a room may hold for its next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// Most events.
    pub max_events: usize,
    /// Most bytes of encoded events.
    pub max_bytes: usize,
}

/// Which events give way first when a room's pending events are full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Chat and presence: dropped first.
    Low,
    /// Notices, gifts, likes, online counts, leaderboards.
    High,
}

impl Priority {
    /// All priorities (index = `self as usize`).
    pub const ALL: [Priority; 2] = [Self::Low, Self::High];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::High => "high",
        }
    }

    /// The priority of an encoded event; `Event::encode` writes `type` first.
    pub fn of(event: &str) -> Self {
        const LOW: [&str; 3] = [
            r#"{"type":"chat""#,
            r#"{"type":"join""#,
            r#"{"type":"leave""#,
        ];
        if LOW.iter().any(|p| event.starts_with(p)) {
            Self::Low
        } else {
            Self::High
        }
    }
}

/// Events dropped by one [`Pending::push`], by priority (index = `Priority as usize`).
pub type Dropped = [u64; Priority::ALL.len()];

/// Pending events of one room, in two queues tagged with their arrival number.
#[derive(Debug)]
pub struct Pending {
    limits: PendingLimits,
    queues: [VecDeque<(u64, Arc<str>)>; Priority::ALL.len()],
    next: u64,
    bytes: usize,
}

impl Pending {
    /// Nothing pending.
    pub fn new(limits: PendingLimits) -> Self {
        Self {
            limits,
            queues: Default::default(),
            next: 0,
            bytes: 0,
        }
    }

    /// Events pending.
    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(VecDeque::is_empty)
    }

    /// Queues `event`, then drops events until both bounds hold again; an event larger
    /// than the byte bound is dropped at once.
    pub fn push(&mut self, event: Arc<str>) -> Dropped {
        let mut dropped = Dropped::default();
        let priority = Priority::of(&event);
        if event.len() > self.limits.max_bytes {
            dropped[priority as usize] += 1;
            return dropped;
        }
        self.bytes += event.len();
        self.queues[priority as usize].push_back((self.next, event));
        self.next += 1;
        while self.len() > self.limits.max_events || self.bytes > self.limits.max_bytes {
            let Some(q) = Priority::ALL
                .into_iter()
                .find(|p| !self.queues[*p as usize].is_empty())
            else {
                break;
            };
            if let Some((_, gone)) = self.queues[q as usize].pop_front() {
                self.bytes -= gone.len();
                dropped[q as usize] += 1;
            }
        }
        dropped
    }

    /// Everything pending, in arrival order; leaves nothing.
    pub fn take(&mut self) -> Vec<Arc<str>> {
        let [low, high] = &mut self.queues;
        let mut out = Vec::with_capacity(low.len() + high.len());
        loop {
            let from_low = match (low.front(), high.front()) {
                (Some((a, _)), Some((b, _))) => a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if from_low {
                low.pop_front()
            } else {
                high.pop_front()
            };
            out.extend(next.map(|(_, e)| e));
        }
        self.bytes = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gift::Rank;
    use crate::protocol::{Event, Position};

    fn chat(text: &str) -> Arc<str> {
        Event::Chat {
            user: "u",
            text,
            color: "#ffffff",
            position: Position::Scroll,
            ts: 1,
        }
        .encode()
    }

    fn notice(text: &str) -> Arc<str> {
        Event::Notice {
            text,
            level: "info",
        }
        .encode()
    }

    fn pending(max_events: usize, max_bytes: usize) -> Pending {
        Pending::new(PendingLimits {
            max_events,
            max_bytes,
        })
    }

    #[test]
    fn every_event_type_has_its_priority() {
        let rank = [Rank {
            user: "u".into(),
            value: 1,
        }];
        for (event, want) in [
            (chat("hi"), Priority::Low),
            (Event::Join { user: "u" }.encode(), Priority::Low),
            (Event::Leave { user: "u" }.encode(), Priority::Low),
            (notice("n"), Priority::High),
            (
                Event::Gift {
                    user: "u",
                    gift: "rose",
                    count: 1,
                    value: 1,
                }
                .encode(),
                Priority::High,
            ),
            (Event::Likes { delta: 1, total: 1 }.encode(), Priority::High),
            (Event::Online { count: 1 }.encode(), Priority::High),
            (Event::Leaderboard { top: &rank }.encode(), Priority::High),
        ] {
            assert_eq!(Priority::of(&event), want, "{event}");
        }
    }

    #[test]
    fn a_full_room_drops_the_oldest_chat_before_any_notice() {
        let mut p = pending(3, 1 << 20);
        assert_eq!(p.push(chat("c1")), [0, 0]);
        assert_eq!(p.push(notice("n1")), [0, 0]);
        assert_eq!(p.push(chat("c2")), [0, 0]);
        assert_eq!(p.push(chat("c3")), [1, 0]);
        assert_eq!(p.push(notice("n2")), [1, 0]);
        assert_eq!(p.take(), vec![notice("n1"), chat("c3"), notice("n2")]);
        assert!(p.is_empty());
    }

    #[test]
    fn chat_gives_way_even_when_it_is_the_newest() {
        let mut p = pending(2, 1 << 20);
        p.push(notice("n1"));
        p.push(notice("n2"));
        assert_eq!(p.push(chat("c1")), [1, 0]);
        assert_eq!(p.push(notice("n3")), [0, 1]);
        assert_eq!(p.take(), vec![notice("n2"), notice("n3")]);
    }

    #[test]
    fn the_byte_bound_holds_and_oversized_events_are_dropped() {
        let size = chat("aaaa").len();
        let mut p = pending(100, 2 * size + 1);
        p.push(chat("aaaa"));
        p.push(chat("bbbb"));
        assert_eq!(p.push(chat("cccc")), [1, 0]);
        assert_eq!(p.len(), 2);
        assert_eq!(p.push(notice(&"x".repeat(3 * size))), [0, 1]);
        assert_eq!(p.take(), vec![chat("bbbb"), chat("cccc")]);
        p.push(chat("dddd"));
        p.push(chat("eeee"));
        assert_eq!(p.len(), 2, "take resets the byte count");
    }
}
