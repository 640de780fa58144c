//! A viewer's queue shared between the source, which offers and never waits, and the viewer's
//! task, which takes everything queued at once. Waking uses the standard `Waker`, so any async
//! runtime can drive it.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::{Unit, ViewerQueue};

#[derive(Debug)]
struct State<F> {
    queue: ViewerQueue<F>,
    waker: Option<Waker>,
    closed: bool,
    gone: bool,
}

/// One viewer's queue and wake-up.
#[derive(Debug)]
pub struct Mailbox<F> {
    state: Mutex<State<F>>,
}

impl<F: Unit> Mailbox<F> {
    /// A mailbox around a (seeded) queue.
    pub fn new(queue: ViewerQueue<F>) -> Self {
        Self {
            state: Mutex::new(State {
                queue,
                waker: None,
                closed: false,
                gone: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<F>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers a frame (see [`ViewerQueue::offer`]) and wakes the viewer when the frame calls for
    /// it. Returns the frames dropped, or `None` once the viewer has left.
    pub fn offer(&self, now: Instant, frame: &F, headers: [Option<&F>; 2]) -> Option<u64> {
        let (offer, waker) = {
            let mut s = self.lock();
            if s.gone {
                return None;
            }
            let offer = s.queue.offer(now, frame, headers);
            (offer, if offer.wake { s.waker.take() } else { None })
        };
        if let Some(w) = waker {
            w.wake();
        }
        Some(offer.dropped)
    }

    /// The source ended: the viewer gets what is queued, then the end.
    pub fn close(&self) {
        let waker = {
            let mut s = self.lock();
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The viewer left: later offers report it gone.
    pub fn leave(&self) {
        self.lock().gone = true;
    }

    /// Moves every queued frame to `out`: `Ready(true)` when some were moved, `Ready(false)`
    /// once the source has ended and nothing is left, `Pending` (and a wake-up later) otherwise.
    pub fn poll_drain(&self, cx: &mut Context<'_>, out: &mut impl Extend<F>) -> Poll<bool> {
        let mut s = self.lock();
        if !s.queue.is_empty() {
            s.queue.drain_into(out);
            return Poll::Ready(true);
        }
        if s.closed {
            return Poll::Ready(false);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    use super::super::gop::tests::U;
    use super::super::{Class, QueueConfig};
    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn wakes_on_video_not_on_audio_and_ends_after_close() {
        let config = QueueConfig {
            max_frames: 8,
            max_delay: Duration::from_secs(1),
            audio_rides_video: true,
        };
        let now = Instant::now();
        let m = Mailbox::new(ViewerQueue::new(config, Vec::new(), now));
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        assert_eq!(m.poll_drain(&mut cx, &mut out), Poll::Pending);
        let header = U(Class::VideoHeader, 0);
        let headers = [Some(&header), None];
        m.offer(now, &U(Class::Keyframe, 1), headers);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(m.poll_drain(&mut cx, &mut out), Poll::Ready(true));
        assert_eq!(m.poll_drain(&mut cx, &mut out), Poll::Pending);
        m.offer(now, &U(Class::Audio, 2), headers);
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "audio waits for video");
        m.offer(now, &U(Class::Video, 3), headers);
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
        m.close();
        assert_eq!(m.poll_drain(&mut cx, &mut out), Poll::Ready(true));
        assert_eq!(m.poll_drain(&mut cx, &mut out), Poll::Ready(false));
        assert_eq!(out.len(), 3);
        m.leave();
        assert_eq!(m.offer(now, &U(Class::Video, 4), headers), None);
    }
}
