//! One viewer's bounded queue: the source never waits, a viewer that falls behind skips to the
//! next keyframe and gets the sequence headers again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Class, Unit};

/// When a viewer counts as behind, and when it is worth waking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most live frames queued.
    pub max_frames: usize,
    /// Longest a frame may wait in the queue.
    pub max_delay: Duration,
    /// On a stream with video, an audio frame does not wake the viewer: it goes out with the
    /// next video frame (at most one video frame interval later), so a viewer writes once
    /// per video frame instead of once per message. Video is never held.
    pub audio_rides_video: bool,
}

/// The outcome of offering a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// Frames dropped because the viewer is behind (queued ones and possibly this one).
    pub dropped: u64,
    /// The viewer should be woken to write what is queued.
    pub wake: bool,
}

/// Frames waiting to be written to one viewer, each with the time it was queued.
#[derive(Debug)]
pub struct ViewerQueue<F> {
    frames: VecDeque<(Instant, F)>,
    config: QueueConfig,
    /// Startup frames still counted on top of `max_frames` until the first drain.
    allowance: usize,
    skipping: bool,
}

impl<F: Unit> ViewerQueue<F> {
    /// A queue seeded with a new viewer's startup frames (they do not count against the limit
    /// until the viewer first drains).
    pub fn new(config: QueueConfig, startup: Vec<F>, now: Instant) -> Self {
        let allowance = startup.len();
        Self {
            frames: startup.into_iter().map(|f| (now, f)).collect(),
            config,
            allowance,
            skipping: false,
        }
    }

    /// Queues a live frame at `now` unless the viewer is behind. Behind means the queue is full or its oldest frame waited past `max_delay`:
    /// then the queue is emptied and nothing is queued until a keyframe, which goes in after
    /// `headers` (the current sequence headers).
    pub fn offer(&mut self, now: Instant, frame: &F, headers: [Option<&F>; 2]) -> Offer {
        let mut dropped = 0;
        let full = self.frames.len() >= self.config.max_frames + self.allowance;
        let stale = self
            .frames
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > self.config.max_delay);
        if !self.skipping && (full || stale) {
            dropped += self.frames.len() as u64;
            self.frames.clear();
            self.allowance = 0;
            self.skipping = true;
        }
        if self.skipping {
            if frame.class() != Class::Keyframe {
                return Offer {
                    dropped: dropped + 1,
                    wake: false,
                };
            }
            self.skipping = false;
            for h in headers.into_iter().flatten() {
                self.frames.push_back((now, h.clone()));
            }
        }
        self.frames.push_back((now, frame.clone()));
        let held =
            frame.class() == Class::Audio && self.config.audio_rides_video && headers[0].is_some();
        Offer {
            dropped,
            wake: !held,
        }
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

    const LIMITS: QueueConfig = QueueConfig {
        max_frames: 4,
        max_delay: Duration::from_millis(500),
        audio_rides_video: true,
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
        assert_eq!(q.offer(now, &U(Class::Keyframe, 1), headers).dropped, 0);
        for i in 2..5 {
            assert_eq!(q.offer(now, &U(Class::Video, i), headers).dropped, 0);
        }
        // The fifth frame finds the queue full: the four queued and itself are dropped.
        assert_eq!(q.offer(now, &U(Class::Video, 5), headers).dropped, 5);
        assert!(q.is_skipping() && q.is_empty());
        assert_eq!(q.offer(now, &U(Class::Video, 6), headers).dropped, 1);
        assert_eq!(q.offer(now, &U(Class::Keyframe, 7), headers).dropped, 0);
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
                &U(Class::Video, 2),
                [None, None]
            )
            .dropped,
            0
        );
        assert_eq!(
            q.offer(
                t0 + Duration::from_millis(501),
                &U(Class::Video, 3),
                [None, None]
            )
            .dropped,
            3
        );
        // A viewer that keeps draining is never behind.
        let t1 = t0 + Duration::from_secs(10);
        q.offer(t1, &U(Class::Keyframe, 4), [None, None]);
        for i in 0..100u64 {
            let t = t1 + Duration::from_millis(400 * i);
            assert_eq!(q.offer(t, &U(Class::Video, 5), [None, None]).dropped, 0);
            drained(&mut q);
        }
    }

    #[test]
    fn audio_rides_the_next_video_frame_only_when_there_is_video() {
        let now = Instant::now();
        let header = U(Class::VideoHeader, 0);
        let mut q = ViewerQueue::new(LIMITS, Vec::new(), now);
        let with_video = [Some(&header), None];
        assert!(q.offer(now, &U(Class::Keyframe, 1), with_video).wake);
        assert!(!q.offer(now, &U(Class::Audio, 2), with_video).wake);
        assert!(q.offer(now, &U(Class::Video, 3), with_video).wake);
        assert_eq!(drained(&mut q).len(), 3);
        assert!(
            q.offer(now, &U(Class::Audio, 4), [None, None]).wake,
            "audio-only stream"
        );
        let mut always = ViewerQueue::new(
            QueueConfig {
                audio_rides_video: false,
                ..LIMITS
            },
            Vec::new(),
            now,
        );
        assert!(always.offer(now, &U(Class::Audio, 5), with_video).wake);
    }

    #[test]
    fn startup_frames_do_not_count_until_drained() {
        let now = Instant::now();
        let startup = vec![U(Class::Keyframe, 1); 10];
        let mut q = ViewerQueue::new(LIMITS, startup, now);
        assert_eq!(q.offer(now, &U(Class::Video, 2), [None, None]).dropped, 0);
        assert_eq!(drained(&mut q).len(), 11);
        for _ in 0..4 {
            assert_eq!(q.offer(now, &U(Class::Video, 2), [None, None]).dropped, 0);
        }
        assert_eq!(q.offer(now, &U(Class::Video, 2), [None, None]).dropped, 5);
    }
}
