//! The playback buffer model behind startup time and stalls.
//!
//! A pure function of its inputs: callers pass the wall time (since the player started) with
//! every call, so timelines can be scripted in tests. Media arrives as `[start, end)` ranges on
//! a continuous media timeline; playback starts once `startup_buffer` of media is buffered, then
//! the playhead advances with wall time. When it reaches the buffered end a stall starts, and it
//! ends once `rebuffer` of media is buffered ahead of the playhead again.

use std::time::Duration;

use serde::Serialize;

/// Buffer thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QoeConfig {
    /// Media that must be buffered before playback starts (0: start on the first media).
    pub startup_buffer: Duration,
    /// Media that must be buffered ahead of the playhead to leave a stall.
    pub rebuffer: Duration,
}

/// Where playback is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayState {
    /// Waiting for the startup buffer.
    Starting,
    /// The playhead advances.
    Playing,
    /// The playhead caught up with the buffered end; waiting for the rebuffer threshold.
    Stalled,
}

/// Totals of the buffer model at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QoeReport {
    /// Wall time from the player's start to the start of playback.
    pub startup: Option<Duration>,
    /// Stalls after startup.
    pub stalls: u64,
    /// Wall time spent stalled, including a stall still in progress.
    pub stall_time: Duration,
    /// Media played (wall time in the playing state).
    pub played: Duration,
}

/// The modelled playback buffer.
#[derive(Debug, Clone)]
pub struct Buffer {
    config: QoeConfig,
    state: PlayState,
    first_media: Option<Duration>,
    buffered_end: Duration,
    playhead: Duration,
    anchor: Duration,
    startup: Option<Duration>,
    stalls: u64,
    stall_time: Duration,
    stall_started: Duration,
    played: Duration,
}

impl Buffer {
    /// A buffer waiting for its first media.
    pub fn new(config: QoeConfig) -> Self {
        Self {
            config,
            state: PlayState::Starting,
            first_media: None,
            buffered_end: Duration::ZERO,
            playhead: Duration::ZERO,
            anchor: Duration::ZERO,
            startup: None,
            stalls: 0,
            stall_time: Duration::ZERO,
            stall_started: Duration::ZERO,
            played: Duration::ZERO,
        }
    }

    /// Media `[start, end)` became available at wall time `now`.
    pub fn on_media(&mut self, now: Duration, start: Duration, end: Duration) {
        self.advance(now);
        let first = *self.first_media.get_or_insert(start);
        self.buffered_end = self.buffered_end.max(end);
        match self.state {
            PlayState::Starting => {
                if self.buffered_end.saturating_sub(first) >= self.config.startup_buffer {
                    self.state = PlayState::Playing;
                    self.startup = Some(now);
                    self.playhead = first;
                    self.anchor = now;
                }
            }
            PlayState::Stalled => {
                if self.buffered_end.saturating_sub(self.playhead) >= self.config.rebuffer {
                    self.state = PlayState::Playing;
                    self.stall_time += now.saturating_sub(self.stall_started);
                    self.anchor = now;
                }
            }
            PlayState::Playing => {}
        }
    }

    /// Moves the playhead to wall time `now`, entering a stall at the exact moment it caught up
    /// with the buffered end.
    pub fn advance(&mut self, now: Duration) {
        if self.state != PlayState::Playing || now <= self.anchor {
            return;
        }
        let ahead = self.buffered_end.saturating_sub(self.playhead);
        let elapsed = now - self.anchor;
        if elapsed > ahead {
            let stall_at = self.anchor + ahead;
            self.played += ahead;
            self.playhead = self.buffered_end;
            self.anchor = stall_at;
            self.state = PlayState::Stalled;
            self.stall_started = stall_at;
            self.stalls += 1;
        } else {
            self.played += elapsed;
            self.playhead += elapsed;
            self.anchor = now;
        }
    }

    /// The current state (call [`Buffer::advance`] first to bring it up to date).
    pub fn state(&self) -> PlayState {
        self.state
    }

    /// Media buffered ahead of the playhead at wall time `now`.
    pub fn buffered(&self, now: Duration) -> Duration {
        match self.state {
            PlayState::Starting => self
                .buffered_end
                .saturating_sub(self.first_media.unwrap_or(self.buffered_end)),
            PlayState::Stalled => self.buffered_end.saturating_sub(self.playhead),
            PlayState::Playing => self
                .buffered_end
                .saturating_sub(self.playhead + now.saturating_sub(self.anchor)),
        }
    }

    /// Totals at wall time `now`, counting a stall in progress up to `now`.
    pub fn report(&self, now: Duration) -> QoeReport {
        let mut model = self.clone();
        model.advance(now);
        let ongoing = if model.state == PlayState::Stalled {
            now.saturating_sub(model.stall_started)
        } else {
            Duration::ZERO
        };
        QoeReport {
            startup: model.startup,
            stalls: model.stalls,
            stall_time: model.stall_time + ongoing,
            played: model.played,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn buffer(startup: u64, rebuffer: u64) -> Buffer {
        Buffer::new(QoeConfig {
            startup_buffer: ms(startup),
            rebuffer: ms(rebuffer),
        })
    }

    /// Frames of `frame` ms arriving exactly in real time from `from` (wall) for `count` frames.
    fn real_time(b: &mut Buffer, from_wall: u64, from_media: u64, frame: u64, count: u64) {
        for i in 0..count {
            let media = from_media + i * frame;
            b.on_media(ms(from_wall + i * frame), ms(media), ms(media + frame));
        }
    }

    #[test]
    fn zero_startup_buffer_starts_on_first_media() {
        let mut b = buffer(0, 500);
        assert_eq!(b.state(), PlayState::Starting);
        b.on_media(ms(250), ms(0), ms(40));
        assert_eq!(b.state(), PlayState::Playing);
        assert_eq!(b.report(ms(250)).startup, Some(ms(250)));
    }

    #[test]
    fn startup_waits_for_the_startup_buffer() {
        let mut b = buffer(1000, 500);
        real_time(&mut b, 100, 0, 100, 9);
        assert_eq!(b.state(), PlayState::Starting);
        assert_eq!(b.buffered(ms(900)), ms(900));
        b.on_media(ms(1000), ms(900), ms(1000));
        assert_eq!(b.state(), PlayState::Playing);
        assert_eq!(b.report(ms(1000)).startup, Some(ms(1000)));
    }

    #[test]
    fn real_time_arrivals_never_stall() {
        let mut b = buffer(0, 500);
        real_time(&mut b, 0, 0, 40, 250);
        let r = b.report(ms(250 * 40 - 1));
        assert_eq!((r.stalls, r.stall_time), (0, Duration::ZERO));
        assert_eq!(r.played, ms(250 * 40 - 1));
    }

    #[test]
    fn a_gap_stalls_at_the_exact_moment_and_rebuffer_ends_it() {
        let mut b = buffer(0, 500);
        // 1 s of media at once at t=0, then nothing until t=3000.
        b.on_media(ms(0), ms(0), ms(1000));
        b.advance(ms(2000));
        assert_eq!(b.state(), PlayState::Stalled);
        assert_eq!(b.report(ms(2000)).stall_time, ms(1000));
        // 300 ms buffered is not enough to resume.
        b.on_media(ms(3000), ms(1000), ms(1300));
        assert_eq!(b.state(), PlayState::Stalled);
        b.on_media(ms(3200), ms(1300), ms(1500));
        assert_eq!(b.state(), PlayState::Playing);
        let r = b.report(ms(3200));
        assert_eq!(r.stalls, 1);
        assert_eq!(r.stall_time, ms(2200));
        assert_eq!(r.played, ms(1000));
        assert_eq!(b.buffered(ms(3300)), ms(400));
    }

    #[test]
    fn two_gaps_make_two_stalls_and_report_counts_an_ongoing_one() {
        let mut b = buffer(0, 200);
        b.on_media(ms(0), ms(0), ms(500));
        b.on_media(ms(700), ms(500), ms(1000));
        assert_eq!(b.state(), PlayState::Playing);
        b.on_media(ms(2000), ms(1000), ms(1100));
        assert_eq!(b.state(), PlayState::Stalled);
        let r = b.report(ms(2500));
        assert_eq!(r.stalls, 2);
        // First stall 500..700, second from 1200 and still going at 2500.
        assert_eq!(r.stall_time, ms(200 + 1300));
        assert_eq!(r.played, ms(1000));
    }

    #[test]
    fn stalls_before_startup_do_not_count() {
        let mut b = buffer(2000, 500);
        b.on_media(ms(0), ms(0), ms(100));
        b.advance(ms(5000));
        let r = b.report(ms(5000));
        assert_eq!(
            (r.startup, r.stalls, r.stall_time),
            (None, 0, Duration::ZERO)
        );
    }

    #[test]
    fn hls_start_three_segments_back_keeps_a_cushion() {
        // 2 s segments; 0..3 are already complete when the player starts and are fetched at
        // 100, 200 and 300 ms, then segment i completes at (i - 2) * 2 s and arrives 100 ms later.
        let mut b = buffer(0, 500);
        for i in 0..3u64 {
            b.on_media(ms(100 * (i + 1)), ms(i * 2000), ms((i + 1) * 2000));
        }
        for i in 3..12u64 {
            b.on_media(ms((i - 2) * 2000 + 100), ms(i * 2000), ms((i + 1) * 2000));
        }
        let r = b.report(ms(19_000));
        assert_eq!(r.startup, Some(ms(100)));
        assert_eq!(r.stalls, 0);
        assert_eq!(b.buffered(ms(19_000)), ms(24_000 - 18_900));
    }

    #[test]
    fn one_segment_cushion_stalls_when_the_next_is_late() {
        let mut b = buffer(0, 500);
        b.on_media(ms(100), ms(0), ms(2000));
        b.on_media(ms(2400), ms(2000), ms(4000));
        let r = b.report(ms(2400));
        assert_eq!((r.stalls, r.stall_time), (1, ms(300)));
    }
}
