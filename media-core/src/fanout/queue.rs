//! One viewer's bounded queue: the source never waits, a viewer that falls behind skips to the
//! next keyframe and gets the sequence headers again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Class, Unit};

/// When a viewer counts as behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most live frames queued.
    pub max_frames: usize,
    /// Longest a frame may wait in the queue.
    pub max_delay: Duration,
}

/// Frames waiting to be written to one viewer, each with the time it was queued.
#[derive(Debug)]
pub struct ViewerQueue<F> {
    frames: VecDeque<(Instant, F)>,
    limits: QueueLimits,
    /// Startup frames still counted on top of `max_frames` until the first drain.
    allowance: usize,
    skipping: bool,
}

impl<F: Unit> ViewerQueue<F> {
    /// A queue seeded with a new viewer's startup frames (they do not count against the limit
    /// until the viewer first drains).
    pub fn new(limits: QueueLimits, startup: Vec<F>, now: Instant) -> Self {
        let allowance = startup.len();
        Self {
            frames: startup.into_iter().map(|f| (now, f)).collect(),
            limits,
            allowance,
            skipping: false,
        }
    }

    /// Queues a live frame at `now` unless the viewer is behind; returns how many frames were
    /// dropped. Behind means the queue is full or its oldest frame waited past `max_delay`:
    /// then the queue is emptied and nothing is queued until a keyframe, which goes in after
    /// `headers` (the current sequence headers).
    pub fn offer(&mut self, now: Instant, frame: &F, headers: [Option<&F>; 2]) -> u64 {
        let mut dropped = 0;
        let full = self.frames.len() >= self.limits.max_frames + self.allowance;
        let stale = self
            .frames
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > self.limits.max_delay);
        if !self.skipping && (full || stale) {
            dropped += self.frames.len() as u64;
            self.frames.clear();
            self.allowance = 0;
            self.skipping = true;
        }
        if self.skipping {
            if frame.class() != Class::Keyframe {
                return dropped + 1;
            }
            self.skipping = false;
            for h in headers.into_iter().flatten() {
                self.frames.push_back((now, h.clone()));
            }
        }
        self.frames.push_back((now, frame.clone()));
        dropped
    }

    /// Moves every queued frame to `out`, oldest first.
    pub fn drain_into(&mut self, out: &mut impl Extend<F>) {
        self.allowance = 0;
        out.extend(self.frames.drain(..).map(|(_, f)| f));
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// True while waiting for a keyframe after falling behind.
    pub fn is_skipping(&self) -> bool {
        self.skipping
    }
}

#[cfg(test)]
mod tests {
    use super::super::gop::tests::U;
    use super::*;

    const LIMITS: QueueLimits = QueueLimits {
        max_frames: 4,
        max_delay: Duration::from_millis(500),
    };

    fn drained(q: &mut ViewerQueue<U>) -> Vec<U> {
        let mut out = Vec::new();
        q.drain_into(&mut out);
        out
    }

    #[test]
    fn full_queue_skips_to_next_keyframe_with_headers() {
        let now = Instant::now();
        let header = U(Class::VideoHeader, 0);
        let headers = [Some(&header), None];
        let mut q = ViewerQueue::new(LIMITS, Vec::new(), now);
        assert_eq!(q.offer(now, &U(Class::Keyframe, 1), headers), 0);
        for i in 2..5 {
            assert_eq!(q.offer(now, &U(Class::Frame, i), headers), 0);
        }
        // The fifth frame finds the queue full: the four queued and itself are dropped.
        assert_eq!(q.offer(now, &U(Class::Frame, 5), headers), 5);
        assert!(q.is_skipping() && q.is_empty());
        assert_eq!(q.offer(now, &U(Class::Frame, 6), headers), 1);
        assert_eq!(q.offer(now, &U(Class::Keyframe, 7), headers), 0);
        assert_eq!(drained(&mut q), [header.clone(), U(Class::Keyframe, 7)]);
        assert!(!q.is_skipping());
    }

    #[test]
    fn stale_queue_skips_by_the_clock_it_is_given() {
        let t0 = Instant::now();
        let mut q = ViewerQueue::new(LIMITS, Vec::new(), t0);
        q.offer(t0, &U(Class::Keyframe, 1), [None, None]);
        assert_eq!(
            q.offer(
                t0 + Duration::from_millis(500),
                &U(Class::Frame, 2),
                [None, None]
            ),
            0
        );
        assert_eq!(
            q.offer(
                t0 + Duration::from_millis(501),
                &U(Class::Frame, 3),
                [None, None]
            ),
            3
        );
        // A viewer that keeps draining is never behind.
        let t1 = t0 + Duration::from_secs(10);
        q.offer(t1, &U(Class::Keyframe, 4), [None, None]);
        for i in 0..100u64 {
            let t = t1 + Duration::from_millis(400 * i);
            assert_eq!(q.offer(t, &U(Class::Frame, 5), [None, None]), 0);
            drained(&mut q);
        }
    }

    #[test]
    fn startup_frames_do_not_count_until_drained() {
        let now = Instant::now();
        let startup = vec![U(Class::Keyframe, 1); 10];
        let mut q = ViewerQueue::new(LIMITS, startup, now);
        assert_eq!(q.offer(now, &U(Class::Frame, 2), [None, None]), 0);
        assert_eq!(drained(&mut q).len(), 11);
        for _ in 0..4 {
            assert_eq!(q.offer(now, &U(Class::Frame, 2), [None, None]), 0);
        }
        assert_eq!(q.offer(now, &U(Class::Frame, 2), [None, None]), 5);
    }
}
