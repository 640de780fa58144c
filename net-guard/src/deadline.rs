//! A socket that fails once it makes no progress for the idle deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::Stats;

/// Wraps a socket: a read or write that waits while no byte has moved in either direction
/// for the idle deadline fails with [`io::ErrorKind::TimedOut`]. The timers are re-armed only
/// when they fire, so a busy socket costs a clock read per operation and nothing more.
#[derive(Debug)]
pub struct DeadlineIo<T> {
    inner: T,
    idle: Duration,
    last_progress: Instant,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    stats: Option<Stats>,
    expired: bool,
}

impl<T> DeadlineIo<T> {
    /// Wraps `inner` with an idle deadline; a timeout is counted in `stats`.
    pub fn new(inner: T, idle: Duration, stats: Option<Stats>) -> Self {
        let due = Instant::now() + idle;
        Self {
            inner,
            idle,
            last_progress: Instant::now(),
            read_timer: Box::pin(tokio::time::sleep_until(due)),
            write_timer: Box::pin(tokio::time::sleep_until(due)),
            stats,
            expired: false,
        }
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn progress(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Called when an operation would wait: an error once the deadline has passed since the
    /// last progress, otherwise the timer is armed to wake this operation's task then.
    fn check(&mut self, write: bool, cx: &mut Context<'_>) -> Option<io::Error> {
        let due = self.last_progress + self.idle;
        let timer = if write {
            &mut self.write_timer
        } else {
            &mut self.read_timer
        };
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            if due > Instant::now() {
                timer.as_mut().reset(due);
                continue;
            }
            if !self.expired {
                self.expired = true;
                if let Some(stats) = &self.stats {
                    stats.count_timeout();
                }
            }
            return Some(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no progress for {:?}", self.idle),
            ));
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DeadlineIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.progress();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.check(false, cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> DeadlineIo<T> {
    fn after_write(
        &mut self,
        result: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progress();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.check(true, cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => match self.check(true, cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_and_a_chatty_one_does_not() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let stats = Stats::default();
        let mut io = DeadlineIo::new(ours, Duration::from_secs(10), Some(stats.clone()));
        let mut buf = [0u8; 8];
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            theirs.write_all(b"x").await.unwrap();
            assert_eq!(io.read(&mut buf).await.unwrap(), 1, "progress every 6 s");
        }
        let started = Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(stats.timed_out(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_times_out_the_writer() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut io = DeadlineIo::new(ours, Duration::from_secs(5), None);
        let started = Instant::now();
        let chunk = [0u8; 256];
        let err = loop {
            if let Err(e) = io.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
