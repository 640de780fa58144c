//! Live playlist polling decisions, as real players make them: where to start, what to
//! download after each reload, when to reload, and when a playlist has gone stale.

use std::time::Duration;

use super::playlist::{Entry, MediaList};

/// A live playlist without a new segment for this many target durations is stale.
const STALE_TARGETS: u32 = 3;

/// What to do after a reload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Segments to download, in order.
    pub(crate) fetch: Vec<Entry>,
    /// Segments that slid out of the window before we could download them.
    pub(crate) skipped: u64,
    /// Wait this long after the reload started before reloading (`None`: the playlist ended).
    pub(crate) reload_after: Option<Duration>,
}

/// Polling state of one media playlist.
#[derive(Debug, Clone)]
pub(crate) struct Poller {
    live_edge: usize,
    next_seq: Option<u64>,
    last_new: Duration,
    newest: Option<u64>,
    loaded: bool,
}

impl Poller {
    /// A poller that starts `live_edge` segments from the end of a live playlist.
    pub(crate) fn new(live_edge: usize) -> Self {
        Self {
            live_edge: live_edge.max(1),
            next_seq: None,
            last_new: Duration::ZERO,
            newest: None,
            loaded: false,
        }
    }

    /// A reload at wall time `now` returned `list`. `Err` carries how long the live playlist
    /// has gone without a new segment once that reaches three target durations.
    pub(crate) fn reloaded(&mut self, now: Duration, list: &MediaList) -> Result<Plan, Duration> {
        let newest = list.segments.last().map(|s| s.seq);
        let changed = newest.is_some_and(|n| self.newest.is_none_or(|old| n > old));
        if changed || !self.loaded {
            self.last_new = now;
        }
        self.loaded = true;
        if changed {
            self.newest = newest;
        }
        let start = match self.next_seq {
            Some(seq) => seq,
            None if list.ended => list.segments.first().map_or(0, |s| s.seq),
            None => {
                let at = list.segments.len().saturating_sub(self.live_edge);
                list.segments.get(at).map_or(0, |s| s.seq)
            }
        };
        let fetch: Vec<Entry> = list
            .segments
            .iter()
            .filter(|s| s.seq >= start)
            .cloned()
            .collect();
        let skipped = match (self.next_seq, list.segments.first()) {
            (Some(next), Some(first)) if first.seq > next => first.seq - next,
            _ => 0,
        };
        if let Some(last) = fetch.last() {
            self.next_seq = Some(last.seq.saturating_add(1));
        } else if self.next_seq.is_none() && !list.segments.is_empty() {
            self.next_seq = Some(start);
        }
        if list.ended {
            return Ok(Plan {
                fetch,
                skipped,
                reload_after: None,
            });
        }
        let quiet = now.saturating_sub(self.last_new);
        if quiet >= list.target.saturating_mul(STALE_TARGETS) {
            return Err(quiet);
        }
        let reload_after = if changed {
            list.target
        } else {
            list.target / 2
        };
        Ok(Plan {
            fetch,
            skipped,
            reload_after: Some(reload_after),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(first: u64, count: u64, ended: bool) -> MediaList {
        MediaList {
            target: Duration::from_secs(2),
            segments: (first..first + count)
                .map(|seq| Entry {
                    seq,
                    url: format!("http://h/{seq}.ts"),
                    duration: Duration::from_secs(2),
                    discontinuity: false,
                })
                .collect(),
            ended,
        }
    }

    fn seqs(plan: &Plan) -> Vec<u64> {
        plan.fetch.iter().map(|s| s.seq).collect()
    }

    fn secs(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    #[test]
    fn starts_three_segments_from_the_live_edge_then_follows() {
        let mut p = Poller::new(3);
        let plan = p.reloaded(secs(0), &list(10, 6, false)).expect("fresh");
        assert_eq!(seqs(&plan), vec![13, 14, 15]);
        assert_eq!(plan.reload_after, Some(secs(2)));
        let plan = p.reloaded(secs(2), &list(11, 6, false)).expect("fresh");
        assert_eq!(seqs(&plan), vec![16]);
        assert_eq!((plan.skipped, plan.reload_after), (0, Some(secs(2))));
    }

    #[test]
    fn an_unchanged_reload_polls_again_after_half_a_target() {
        let mut p = Poller::new(3);
        p.reloaded(secs(0), &list(0, 3, false)).expect("fresh");
        let plan = p.reloaded(secs(2), &list(0, 3, false)).expect("fresh");
        assert!(plan.fetch.is_empty());
        assert_eq!(plan.reload_after, Some(secs(1)));
    }

    #[test]
    fn a_playlist_that_never_updates_goes_stale_after_three_targets() {
        let mut p = Poller::new(3);
        p.reloaded(secs(0), &list(0, 3, false)).expect("fresh");
        for t in 1..6 {
            assert!(p.reloaded(secs(t), &list(0, 3, false)).is_ok(), "at {t}s");
        }
        assert_eq!(p.reloaded(secs(6), &list(0, 3, false)), Err(secs(6)));
        // A new segment resets the clock.
        let mut p = Poller::new(3);
        p.reloaded(secs(0), &list(0, 3, false)).expect("fresh");
        p.reloaded(secs(5), &list(0, 4, false)).expect("fresh");
        assert!(p.reloaded(secs(10), &list(0, 4, false)).is_ok());
        assert!(p.reloaded(secs(11), &list(0, 4, false)).is_err());
    }

    #[test]
    fn an_empty_first_playlist_also_goes_stale() {
        let mut p = Poller::new(3);
        assert!(p.reloaded(secs(0), &list(0, 0, false)).is_ok());
        let plan = p.reloaded(secs(2), &list(0, 2, false)).expect("fresh");
        assert_eq!(seqs(&plan), vec![0, 1]);
        let mut p = Poller::new(3);
        p.reloaded(secs(1), &list(0, 0, false)).expect("fresh");
        assert!(p.reloaded(secs(7), &list(0, 0, false)).is_err());
    }

    #[test]
    fn falling_behind_skips_to_the_window() {
        let mut p = Poller::new(3);
        p.reloaded(secs(0), &list(0, 3, false)).expect("fresh");
        let plan = p.reloaded(secs(10), &list(8, 3, false)).expect("fresh");
        assert_eq!(seqs(&plan), vec![8, 9, 10]);
        assert_eq!(plan.skipped, 5);
    }

    #[test]
    fn an_ended_playlist_plays_from_the_start_and_stops_reloading() {
        let mut p = Poller::new(3);
        let plan = p.reloaded(secs(0), &list(0, 5, true)).expect("ended");
        assert_eq!(seqs(&plan), vec![0, 1, 2, 3, 4]);
        assert_eq!(plan.reload_after, None);
        // A live playlist that ends later.
        let mut p = Poller::new(3);
        p.reloaded(secs(0), &list(0, 5, false)).expect("fresh");
        let plan = p.reloaded(secs(2), &list(0, 6, true)).expect("ended");
        assert_eq!(seqs(&plan), vec![5]);
        assert_eq!(plan.reload_after, None);
    }
}
