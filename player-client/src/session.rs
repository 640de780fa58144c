//! What every protocol's play loop shares: the end condition, progress ticks, and the
//! reconnect policy.

use std::future::Future;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::error::{Failure, PlayError, PlayErrorKind};
use crate::options::PlayOptions;
use crate::reconnect::Backoff;
use crate::stats::Stats;
use crate::summary::{Progress, Protocol, Summary};

const TICK: Duration = Duration::from_secs(1);

/// One playback session in progress.
pub(crate) struct Session<'a> {
    pub(crate) stats: Stats,
    pub(crate) options: &'a PlayOptions,
    backoff: Backoff,
    stop: CancellationToken,
    deadline: Option<Instant>,
    progress: &'a mut (dyn FnMut(&Progress) + Send),
    next_tick: Instant,
    had_media: bool,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        url: &str,
        protocol: Option<Protocol>,
        options: &'a PlayOptions,
        stop: &CancellationToken,
        progress: &'a mut (dyn FnMut(&Progress) + Send),
    ) -> Self {
        let now = Instant::now();
        let mut stats = Stats::new(url, protocol, options.qoe());
        stats.set_stamps(options.latency);
        Self {
            stats,
            options,
            backoff: Backoff::new(options.give_up_after),
            stop: stop.clone(),
            deadline: options.duration.and_then(|d| now.checked_add(d)),
            progress,
            next_tick: now + TICK,
            had_media: false,
        }
    }

    /// True once stopped or past the duration.
    pub(crate) fn over(&self) -> bool {
        self.stop.is_cancelled() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Resolves when the session should end; borrows nothing, so it can sit in a `select!`
    /// next to work on the session.
    pub(crate) fn ended(&self) -> impl Future<Output = ()> + Send + 'static {
        let stop = self.stop.clone();
        let deadline = self.deadline;
        async move {
            match deadline {
                Some(d) => tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = sleep_until(d) => {}
                },
                None => stop.cancelled().await,
            }
        }
    }

    /// When the next progress report is due.
    pub(crate) fn next_tick(&self) -> Instant {
        self.next_tick
    }

    /// Reports progress and schedules the next report.
    pub(crate) fn tick(&mut self) {
        let progress = self.stats.progress();
        (self.progress)(&progress);
        self.next_tick = (self.next_tick + TICK).max(Instant::now());
    }

    /// Media plays on a new connection; counts a reconnect if media had played before.
    pub(crate) fn media_flowing(&mut self) {
        if self.backoff.recovered() && self.had_media {
            self.stats.reconnected();
            tracing::info!(url = self.stats.url(), "playing again");
        }
        self.had_media = true;
    }

    /// Handles a failed connection: counts it and waits out the backoff (still reporting
    /// progress), or ends the session when the failure is fatal or the outage lasted too long.
    pub(crate) async fn retry(&mut self, failure: Failure) -> Result<(), PlayErrorKind> {
        let delay = self.failed(failure)?;
        self.wait(delay).await;
        Ok(())
    }

    /// Counts a failed request and returns how long to back off before the next attempt, or
    /// ends the session when the failure is fatal or the outage lasted too long.
    pub(crate) fn failed(&mut self, failure: Failure) -> Result<Duration, PlayErrorKind> {
        let (kind, message) = match failure {
            Failure::Fatal(kind) => return Err(kind),
            Failure::Retry(kind, message) => (kind, message),
        };
        self.stats.error(kind);
        let now = self.stats.now();
        let Some(delay) = self.backoff.failed(now) else {
            return Err(PlayErrorKind::GaveUp {
                url: self.stats.url().to_string(),
                secs: self.backoff.outage(now).as_secs_f64(),
                last: message,
            });
        };
        tracing::warn!(url = self.stats.url(), "{message}; retrying in {delay:?}");
        Ok(delay)
    }

    /// Sleeps for `delay` (or until the session ends) while reporting progress.
    pub(crate) async fn wait(&mut self, delay: Duration) {
        let until = Instant::now() + delay;
        let ended = self.ended();
        tokio::pin!(ended);
        loop {
            tokio::select! {
                _ = &mut ended => return,
                _ = sleep_until(until) => return,
                _ = sleep_until(self.next_tick) => self.tick(),
            }
        }
    }

    /// The final summary.
    pub(crate) fn finish(self) -> Summary {
        self.stats.summary()
    }

    /// The session failed with `kind`.
    pub(crate) fn fail(self, kind: PlayErrorKind) -> PlayError {
        PlayError {
            kind,
            summary: Box::new(self.stats.summary()),
        }
    }
}
