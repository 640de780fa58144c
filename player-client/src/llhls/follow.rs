//! LL-HLS following decisions, as hls.js makes them, fed parsed playlists, request outcomes
//! and the session time: where to start (`PART-HOLD-BACK` from the live edge, back to an
//! independent part), which part to download next (listed, or the preload hint the server
//! holds until it exists), which blocking reload to send, and how to react to a missing part,
//! a skipped stretch, a discontinuity, a failed held request or a playlist that went stale.
//!
//! Two request slots run side by side: the playlist slot (one reload in flight, sent as soon as
//! the previous answered, the server holding it until the next part exists) and the media slot
//! (the init segment or one part in flight, parts in order).

use std::time::Duration;

use media_core::hls::ll::parse::Playlist;
use media_core::hls::ll::PartId;

#[cfg(test)]
mod tests;

/// A live playlist without a new part for this many target durations is stale.
const STALE_TARGETS: u32 = 3;
/// Attempts at a listed part answering 404 before skipping it.
const PART_404_TRIES: u32 = 3;
/// Pause between attempts at a listed part answering 404.
const PART_404_PAUSE: Duration = Duration::from_millis(200);
/// Shortest pause between reloads that do not block (at least `PART-TARGET`).
const MIN_POLL: Duration = Duration::from_millis(100);

/// A playlist reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlaylistRequest {
    /// The playlist as it is now.
    Plain,
    /// Answered once `next` exists: `_HLS_msn` and `_HLS_part`, with `_HLS_skip=YES` when
    /// `skip`.
    Blocking {
        /// The part after the last one the previous playlist listed.
        next: PartId,
        /// Ask for a delta update.
        skip: bool,
    },
}

/// One part to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartRequest {
    /// Which part.
    pub(crate) id: PartId,
    /// Its URI as listed.
    pub(crate) uri: String,
    /// Named by `EXT-X-PRELOAD-HINT` only: the server holds the request until it exists.
    pub(crate) hinted: bool,
    /// A new timeline starts with it (`EXT-X-DISCONTINUITY`, or parts skipped to reach it).
    pub(crate) discontinuity: bool,
    /// Parts were skipped to reach it (the stream ran ahead, or a part never came).
    pub(crate) skipped: bool,
    /// Media from its start that playback passes over: the start point lies that far in.
    pub(crate) trim: Duration,
}

/// A media download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MediaRequest {
    /// The init segment (`EXT-X-MAP`) the next part needs.
    Init(String),
    /// The next part.
    Part(PartRequest),
}

/// What a slot does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot<T> {
    /// Send this request now.
    Send(T),
    /// Ask again at this session time.
    Wait(Duration),
    /// Nothing to send until an answer arrives.
    Idle,
}

/// How a part download failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartFailure {
    /// 404: the part does not exist (a hinted part that will never be cut, or one gone).
    NotFound,
    /// 503: a held part did not appear within the server's hold time.
    Unavailable,
    /// Anything else; try again at the given session time.
    Retry(Duration),
}

/// One part of the latest playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    id: PartId,
    uri: String,
    duration: Duration,
    independent: bool,
    /// Part 0 of a segment after `EXT-X-DISCONTINUITY`.
    discontinuity: bool,
    /// The last part of a complete segment: the next one is part 0 of the next segment.
    closes_segment: bool,
    map: Option<String>,
}

/// The next part, as the latest playlist tells it.
enum Next {
    Listed(usize),
    Hinted,
    /// The next part is not known yet.
    Unknown,
    /// The parts after the last downloaded one are gone, or the stream went back.
    Lost,
}

/// Following state of one LL-HLS media playlist.
#[derive(Debug, Clone)]
pub(crate) struct Follower {
    parts: Vec<Listed>,
    hint: Option<(PartId, String)>,
    /// The part after the last listed one (where a blocking reload waits).
    edge: Option<PartId>,
    last_map: Option<String>,
    can_block: bool,
    can_skip: bool,
    ended: bool,
    part_target: Duration,
    target: Duration,
    hold_back: Duration,
    revision: u64,
    last_new: Duration,
    playlist_in_flight: bool,
    plain_next: bool,
    playlist_at: Duration,
    media_in_flight: Option<MediaRequest>,
    media_at: Duration,
    /// After a hinted part failed: wait for a playlist newer than this revision.
    hint_failed_at: Option<u64>,
    done: Option<PartId>,
    /// The first part downloaded since joining or starting over.
    played_from: Option<PartId>,
    started: bool,
    loaded_map: Option<String>,
    tries_404: u32,
    pending_discontinuity: bool,
    pending_skip: bool,
    discontinuity_seen: Option<u64>,
    late_discontinuities: u64,
}

impl Follower {
    /// A follower before its first playlist.
    pub(crate) fn new() -> Self {
        Self {
            parts: Vec::new(),
            hint: None,
            edge: None,
            last_map: None,
            can_block: false,
            can_skip: false,
            ended: false,
            part_target: Duration::ZERO,
            target: Duration::ZERO,
            hold_back: Duration::ZERO,
            revision: 0,
            last_new: Duration::ZERO,
            playlist_in_flight: false,
            plain_next: true,
            playlist_at: Duration::ZERO,
            media_in_flight: None,
            media_at: Duration::ZERO,
            hint_failed_at: None,
            done: None,
            played_from: None,
            started: false,
            loaded_map: None,
            tries_404: 0,
            pending_discontinuity: false,
            pending_skip: false,
            discontinuity_seen: None,
            late_discontinuities: 0,
        }
    }

    /// `EXT-X-TARGETDURATION` of the latest playlist.
    pub(crate) fn target(&self) -> Duration {
        self.target
    }

    /// The playlist ended and every part after the last downloaded one is done.
    pub(crate) fn finished(&self) -> bool {
        self.ended && self.media_in_flight.is_none() && matches!(self.next(), Next::Unknown)
    }

    /// Discontinuities listed for parts already requested without one (a hinted part that
    /// turned out to start a new timeline), since the last call.
    pub(crate) fn take_late_discontinuities(&mut self) -> u64 {
        std::mem::take(&mut self.late_discontinuities)
    }

    /// The next playlist request at session time `now`.
    pub(crate) fn playlist_request(&mut self, now: Duration) -> Slot<PlaylistRequest> {
        if self.playlist_in_flight || (self.ended && self.revision > 0) {
            return Slot::Idle;
        }
        if now < self.playlist_at {
            return Slot::Wait(self.playlist_at);
        }
        let request = match self.edge {
            Some(next) if self.can_block && !self.plain_next => PlaylistRequest::Blocking {
                next,
                skip: self.can_skip,
            },
            _ => PlaylistRequest::Plain,
        };
        self.playlist_in_flight = true;
        Slot::Send(request)
    }

    /// `request` answered `playlist` at `now`. `Err` carries how long the live playlist has
    /// gone without a new part once that reaches three target durations.
    pub(crate) fn playlist_answered(
        &mut self,
        now: Duration,
        request: PlaylistRequest,
        playlist: &Playlist,
    ) -> Result<(), Duration> {
        self.playlist_in_flight = false;
        self.plain_next = false;
        self.revision = self.revision.saturating_add(1);
        let changed = self.read(playlist);
        let edge = self.edge;
        let advanced = match (request, edge) {
            (PlaylistRequest::Blocking { next, .. }, Some(edge)) => edge > next,
            (PlaylistRequest::Blocking { .. }, None) => false,
            (PlaylistRequest::Plain, _) => true,
        };
        if self.revision == 1 || changed {
            self.last_new = now;
        }
        self.note_late_discontinuities();
        if self.ended {
            return Ok(());
        }
        let quiet = now.saturating_sub(self.last_new);
        if quiet >= self.target.saturating_mul(STALE_TARGETS) {
            return Err(quiet);
        }
        // Reloads that do not block poll once per part; a blocking reload answered without
        // the part it asked for waits as long before asking again.
        self.playlist_at = if self.can_block && advanced {
            now
        } else {
            now.saturating_add(self.part_target.max(MIN_POLL))
        };
        Ok(())
    }

    /// The playlist request failed; the next one, a plain reload, goes at `retry_at`.
    pub(crate) fn playlist_failed(&mut self, retry_at: Duration) {
        self.playlist_in_flight = false;
        self.plain_next = true;
        self.playlist_at = retry_at;
    }

    /// The next media request at session time `now`.
    pub(crate) fn media_request(&mut self, now: Duration) -> Slot<MediaRequest> {
        if self.media_in_flight.is_some() || self.revision == 0 {
            return Slot::Idle;
        }
        if self.hint_failed_at.is_some_and(|r| self.revision <= r) {
            return Slot::Idle;
        }
        if now < self.media_at {
            return Slot::Wait(self.media_at);
        }
        let mut next = self.next();
        if matches!(next, Next::Lost) {
            // Start over from the live edge, as on joining.
            self.done = None;
            self.pending_discontinuity = true;
            self.pending_skip = true;
            self.tries_404 = 0;
            next = self.next();
        }
        let (part, map) = match next {
            Next::Listed(i) => {
                let p = &self.parts[i];
                let part = PartRequest {
                    id: p.id,
                    uri: p.uri.clone(),
                    hinted: false,
                    discontinuity: p.discontinuity,
                    skipped: false,
                    trim: Duration::ZERO,
                };
                (part, p.map.clone())
            }
            Next::Hinted => match &self.hint {
                Some((id, uri)) => {
                    let part = PartRequest {
                        id: *id,
                        uri: uri.clone(),
                        hinted: true,
                        discontinuity: false,
                        skipped: false,
                        trim: Duration::ZERO,
                    };
                    (part, self.last_map.clone())
                }
                None => return Slot::Idle,
            },
            Next::Unknown | Next::Lost => return Slot::Idle,
        };
        if let Some(map) = map.filter(|m| self.loaded_map.as_ref() != Some(m)) {
            let request = MediaRequest::Init(map);
            self.media_in_flight = Some(request.clone());
            return Slot::Send(request);
        }
        let trim = if self.started {
            Duration::ZERO
        } else {
            self.start_trim(part.id)
        };
        let part = PartRequest {
            discontinuity: part.discontinuity || self.pending_discontinuity,
            skipped: self.pending_skip,
            trim,
            ..part
        };
        if part.discontinuity {
            self.discontinuity_seen = Some(part.id.msn);
        }
        let request = MediaRequest::Part(part);
        self.media_in_flight = Some(request.clone());
        Slot::Send(request)
    }

    /// The init segment `uri` was loaded.
    pub(crate) fn init_loaded(&mut self, uri: &str) {
        self.media_in_flight = None;
        self.loaded_map = Some(uri.to_string());
    }

    /// The init segment request failed; it is asked for again at `retry_at`.
    pub(crate) fn init_failed(&mut self, retry_at: Duration) {
        self.media_in_flight = None;
        self.media_at = retry_at;
    }

    /// Part `id` was downloaded.
    pub(crate) fn part_loaded(&mut self, id: PartId) {
        self.media_in_flight = None;
        if self.done.is_none() {
            self.played_from = Some(id);
        }
        self.done = Some(id);
        self.started = true;
        self.tries_404 = 0;
        self.hint_failed_at = None;
        self.pending_discontinuity = false;
        self.pending_skip = false;
    }

    /// The part request failed at `now`.
    pub(crate) fn part_failed(&mut self, now: Duration, failure: PartFailure) {
        let Some(MediaRequest::Part(part)) = self.media_in_flight.take() else {
            return;
        };
        match failure {
            // A held part that did not come: the next playlist tells what comes instead.
            PartFailure::NotFound | PartFailure::Unavailable if part.hinted => {
                self.hint_failed_at = Some(self.revision);
            }
            PartFailure::NotFound => {
                self.tries_404 += 1;
                if self.tries_404 >= PART_404_TRIES {
                    self.tries_404 = 0;
                    self.done = Some(part.id);
                    self.pending_discontinuity = true;
                    self.pending_skip = true;
                } else {
                    self.media_at = now.saturating_add(PART_404_PAUSE);
                }
            }
            PartFailure::Unavailable => self.media_at = now.saturating_add(PART_404_PAUSE),
            PartFailure::Retry(at) => self.media_at = at,
        }
    }

    /// Takes what the follower needs from a playlist; true when its live edge moved.
    fn read(&mut self, playlist: &Playlist) -> bool {
        let before = self.edge;
        self.can_block = playlist.can_block_reload;
        self.can_skip = playlist.can_skip_until_us.is_some();
        self.ended = playlist.ended;
        self.target = Duration::from_secs(playlist.target_duration.max(1));
        self.part_target = Duration::from_micros(playlist.part_target_us.unwrap_or(0));
        self.hold_back = Duration::from_micros(
            playlist
                .part_hold_back_us
                .unwrap_or_else(|| playlist.part_target_us.unwrap_or(0).saturating_mul(3)),
        );
        self.parts.clear();
        self.last_map = None;
        let complete = playlist.segments.len();
        for (index, segment) in playlist.segments.iter().chain(&playlist.open).enumerate() {
            self.last_map = segment.map.clone().or(self.last_map.take());
            let count = segment.parts.len();
            for (i, part) in segment.parts.iter().enumerate() {
                self.parts.push(Listed {
                    id: PartId {
                        msn: segment.msn,
                        part: i as u64,
                    },
                    uri: part.uri.clone(),
                    duration: Duration::from_micros(part.duration_us),
                    independent: part.independent,
                    discontinuity: i == 0 && segment.discontinuity,
                    closes_segment: index < complete && i + 1 == count,
                    map: segment.map.clone(),
                });
            }
        }
        let edge = PartId {
            msn: playlist.open_msn(),
            part: playlist.open.as_ref().map_or(0, |o| o.parts.len() as u64),
        };
        self.edge = (!playlist.ended).then_some(edge);
        self.hint = playlist
            .preload_hint
            .clone()
            .filter(|_| !playlist.ended)
            .map(|uri| (edge, uri));
        self.edge != before
    }

    /// Where the latest playlist says to go after the last downloaded part.
    fn next(&self) -> Next {
        let Some(done) = self.done else {
            return match self.start_index() {
                Some(i) => Next::Listed(i),
                None if self.hint.is_some() => Next::Hinted,
                None => Next::Unknown,
            };
        };
        if let Some(i) = self.parts.iter().position(|p| p.id > done) {
            return if self.follows(done, self.parts[i].id) {
                Next::Listed(i)
            } else {
                Next::Lost
            };
        }
        match &self.hint {
            Some((id, _)) if *id > done && self.follows(done, *id) => Next::Hinted,
            Some((id, _)) if *id > done || id.msn < done.msn => Next::Lost,
            _ => Next::Unknown,
        }
    }

    /// Whether part `next` comes right after part `done`, as far as the playlist tells.
    fn follows(&self, done: PartId, next: PartId) -> bool {
        let same_segment = next.msn == done.msn && Some(next.part) == done.part.checked_add(1);
        let next_segment = Some(next.msn) == done.msn.checked_add(1) && next.part == 0;
        match self.parts.iter().find(|p| p.id == done) {
            Some(listed) if listed.closes_segment => next_segment,
            Some(_) => same_segment,
            None => same_segment || next_segment,
        }
    }

    /// The part to start at: the last independent part at or before the point `PART-HOLD-BACK`
    /// before the end of the last listed part (the first independent part after it when none
    /// is, the first listed part when no part is independent).
    fn start_index(&self) -> Option<usize> {
        let last = self.parts.len().checked_sub(1)?;
        let mut before_end = Duration::ZERO;
        let mut holding = 0;
        for (i, part) in self.parts.iter().enumerate().rev() {
            before_end = before_end.saturating_add(part.duration);
            holding = i;
            if before_end >= self.hold_back {
                break;
            }
        }
        let independent = |i: &usize| self.parts[*i].independent;
        (0..=holding)
            .rev()
            .find(independent)
            .or_else(|| (holding..=last).find(independent))
            .or(Some(0))
    }

    /// How far into listed part `id` the start point lies (zero for a part not listed).
    fn start_trim(&self, id: PartId) -> Duration {
        let Some(at) = self.parts.iter().position(|p| p.id == id) else {
            return Duration::ZERO;
        };
        let to_end = self.parts[at..]
            .iter()
            .fold(Duration::ZERO, |sum, p| sum.saturating_add(p.duration));
        to_end.saturating_sub(self.hold_back)
    }

    /// Counts the discontinuities a playlist lists at parts already downloaded without one.
    fn note_late_discontinuities(&mut self) {
        let (Some(from), Some(done)) = (self.played_from, self.done) else {
            return;
        };
        for part in &self.parts {
            let new = self
                .discontinuity_seen
                .is_none_or(|seen| part.id.msn > seen);
            if part.discontinuity && new && part.id >= from && part.id <= done {
                self.discontinuity_seen = Some(part.id.msn);
                self.late_discontinuities += 1;
            }
        }
    }
}
