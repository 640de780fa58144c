//! Low-latency HLS playback as hls.js does it: start `PART-HOLD-BACK` behind the live edge on
//! an independent part, load `EXT-X-MAP` once, download parts in order, reload the playlist
//! with blocking requests for the part after the last one listed, and request the part named by
//! `EXT-X-PRELOAD-HINT` at once (the server holds it until it exists). Each part feeds its
//! frames and SEI stamps to the session's QoE and latency measurements as it completes.
//!
//! The decisions are [`follow::Follower`]'s; this module sends its requests (one playlist and
//! one media request in flight), bounds them in size and time, and reports their outcomes.

mod follow;
mod media;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use media_core::fmp4::read::{read_init, InitInfo};
use media_core::hls::ll::parse::parse_lenient;
use reqwest::Url;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::error::{Failure, PlayErrorKind};
use crate::http::{request_failure, status_failure};
use crate::session::Session;
use follow::{Follower, MediaRequest, PartFailure, PartRequest, PlaylistRequest, Slot};

/// Largest playlist accepted; anything bigger is not a live playlist.
const MAX_PLAYLIST: usize = 1 << 20;
/// Largest init segment accepted.
const MAX_INIT: usize = 1 << 20;
/// Largest part accepted (a third of a second at 64 Mbit/s is under 3 MiB).
const MAX_PART: usize = 16 << 20;
/// A request the server answers at once must be complete within this long.
const REQUEST_TIME: Duration = Duration::from_secs(10);
/// A held request may take this many target durations (the server's hold time) before the
/// idle timeout starts counting.
const HOLD_TARGETS: u32 = 3;

/// True when a playlist body is LL-HLS: it has `EXT-X-PART-INF`.
pub(crate) fn is_low_latency(body: &[u8]) -> bool {
    body.split(|&b| b == b'\n')
        .any(|line| line.trim_ascii().starts_with(b"#EXT-X-PART-INF:"))
}

/// A request that did not bring a body.
struct Failed {
    status: Option<u16>,
    failure: Failure,
}

/// A request in flight: what was asked and its answer to come.
struct Job<R> {
    request: R,
    answer: Pin<Box<dyn Future<Output = Result<Bytes, Failed>> + Send>>,
}

/// Playback state outside the follower's decisions.
struct Player {
    client: reqwest::Client,
    /// The media playlist URL without delivery directives.
    base: Url,
    init: Option<InitInfo>,
    /// End of the media downloaded so far on the playback timeline.
    media_end: Duration,
    /// Where playback starts on that timeline (the first part's trim).
    play_from: Option<Duration>,
}

/// Plays the LL-HLS media playlist at `url`, whose first answer `first` was fetched already,
/// until the session ends, the playlist ends, or it fails.
pub(crate) async fn play(
    url: &str,
    first: BytesMut,
    session: &mut Session<'_>,
) -> Result<(), PlayErrorKind> {
    let client = session
        .options
        .client()
        .map_err(|e| PlayErrorKind::Client(e.to_string()))?;
    let base = without_directives(url).map_err(|reason| PlayErrorKind::NotHls {
        url: url.to_string(),
        reason,
    })?;
    let mut player = Player {
        client,
        base,
        init: None,
        media_end: Duration::ZERO,
        play_from: None,
    };
    let mut follower = Follower::new();
    session.stats.llhls().playlists += 1;
    player.playlist(
        &mut follower,
        session,
        PlaylistRequest::Plain,
        Ok(first.freeze()),
    )?;
    let mut playlist_job: Option<Job<PlaylistRequest>> = None;
    let mut media_job: Option<Job<MediaRequest>> = None;
    let ended = session.ended();
    tokio::pin!(ended);
    while !follower.finished() {
        let now = session.stats.now();
        let mut wake = None;
        if playlist_job.is_none() {
            match follower.playlist_request(now) {
                Slot::Send(request) => {
                    playlist_job = Some(player.send_playlist(request, &follower, session))
                }
                Slot::Wait(at) => wake = Some(at),
                Slot::Idle => {}
            }
        }
        if media_job.is_none() {
            match follower.media_request(now) {
                Slot::Send(request) => {
                    media_job = Some(player.send_media(request, &follower, session)?)
                }
                Slot::Wait(at) => wake = Some(wake.map_or(at, |w: Duration| w.min(at))),
                Slot::Idle => {}
            }
        }
        let waiting = wake.is_some();
        let wake_at = Instant::now() + wake.map_or(Duration::ZERO, |at| at.saturating_sub(now));
        let event = tokio::select! {
            _ = &mut ended => return Ok(()),
            _ = sleep_until(session.next_tick()) => Event::Tick,
            _ = sleep_until(wake_at), if waiting => Event::Wake,
            answer = answer_of(&mut playlist_job) => Event::Playlist(answer),
            answer = answer_of(&mut media_job) => Event::Media(answer),
        };
        match event {
            Event::Tick => session.tick(),
            Event::Wake => {}
            Event::Playlist(answer) => {
                if let Some(job) = playlist_job.take() {
                    player.playlist(&mut follower, session, job.request, answer)?;
                }
            }
            Event::Media(answer) => {
                if let Some(job) = media_job.take() {
                    player.media(&mut follower, session, job.request, answer)?;
                }
            }
        }
    }
    Ok(())
}

/// What woke the play loop.
enum Event {
    /// A progress report is due.
    Tick,
    /// A slot's wait is over.
    Wake,
    Playlist(Result<Bytes, Failed>),
    Media(Result<Bytes, Failed>),
}

/// The answer of a job in flight; never resolves without one.
async fn answer_of<R>(job: &mut Option<Job<R>>) -> Result<Bytes, Failed> {
    match job {
        Some(job) => job.answer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// `url` without `_HLS_msn`, `_HLS_part` and `_HLS_skip`, which each reload sets anew.
fn without_directives(url: &str) -> Result<Url, String> {
    let mut parsed = Url::parse(url).map_err(|e| format!("bad playlist URL: {e}"))?;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, _)| !key.starts_with("_HLS_"))
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(parsed)
}

/// The URL of a playlist request.
fn playlist_url(base: &Url, request: PlaylistRequest) -> Url {
    let mut url = base.clone();
    if let PlaylistRequest::Blocking { next, skip } = request {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("_HLS_msn", &next.msn.to_string())
            .append_pair("_HLS_part", &next.part.to_string());
        if skip {
            query.append_pair("_HLS_skip", "YES");
        }
    }
    url
}

/// GETs `url`: the whole body, at most `max` bytes, by `deadline`.
async fn fetch(
    client: reqwest::Client,
    url: Url,
    max: usize,
    deadline: Instant,
) -> Result<Bytes, Failed> {
    let url_text = url.to_string();
    let retry = |failure| Failed {
        status: None,
        failure,
    };
    let late = || {
        retry(Failure::retry(
            "timeout",
            format!("{url_text}: no answer in time"),
        ))
    };
    let mut response = timeout_at(deadline, client.get(url).send())
        .await
        .map_err(|_| late())?
        .map_err(|e| retry(request_failure(&url_text, &e)))?;
    let status = response.status();
    if let Some(failure) = status_failure(&url_text, status) {
        return Err(Failed {
            status: Some(status.as_u16()),
            failure,
        });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = timeout_at(deadline, response.chunk())
        .await
        .map_err(|_| late())?
        .map_err(|e| retry(request_failure(&url_text, &e)))?
    {
        if body.len().saturating_add(chunk.len()) > max {
            return Err(retry(Failure::Fatal(PlayErrorKind::BadSegment {
                url: url_text.clone(),
                reason: format!("larger than {max} bytes"),
            })));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

impl Player {
    /// How long a request may take: the server's hold time first when it may hold it.
    fn deadline(&self, held: bool, follower: &Follower, session: &Session<'_>) -> Instant {
        let hold = if held {
            follower
                .target()
                .saturating_mul(HOLD_TARGETS)
                .saturating_add(session.options.idle_timeout)
        } else {
            Duration::ZERO
        };
        Instant::now() + REQUEST_TIME.max(hold)
    }

    fn send_playlist(
        &self,
        request: PlaylistRequest,
        follower: &Follower,
        session: &mut Session<'_>,
    ) -> Job<PlaylistRequest> {
        let blocking = matches!(request, PlaylistRequest::Blocking { .. });
        let counts = session.stats.llhls();
        counts.playlists += 1;
        counts.blocking_playlists += u64::from(blocking);
        let deadline = self.deadline(blocking, follower, session);
        let url = playlist_url(&self.base, request);
        Job {
            request,
            answer: Box::pin(fetch(self.client.clone(), url, MAX_PLAYLIST, deadline)),
        }
    }

    fn send_media(
        &self,
        request: MediaRequest,
        follower: &Follower,
        session: &mut Session<'_>,
    ) -> Result<Job<MediaRequest>, PlayErrorKind> {
        let (uri, max, held) = match &request {
            MediaRequest::Init(uri) => {
                session.stats.llhls().inits += 1;
                (uri, MAX_INIT, false)
            }
            MediaRequest::Part(part) => {
                let counts = session.stats.llhls();
                counts.parts += 1;
                counts.hinted_parts += u64::from(part.hinted);
                (&part.uri, MAX_PART, part.hinted)
            }
        };
        let url = self
            .base
            .join(uri)
            .map_err(|e| PlayErrorKind::BadPlaylist {
                url: self.base.to_string(),
                reason: format!("bad URI {uri:?}: {e}"),
            })?;
        let deadline = self.deadline(held, follower, session);
        Ok(Job {
            request,
            answer: Box::pin(fetch(self.client.clone(), url, max, deadline)),
        })
    }

    /// A playlist request answered.
    fn playlist(
        &mut self,
        follower: &mut Follower,
        session: &mut Session<'_>,
        request: PlaylistRequest,
        answer: Result<Bytes, Failed>,
    ) -> Result<(), PlayErrorKind> {
        let now = session.stats.now();
        let body = match answer {
            Ok(body) => body,
            Err(Failed { status, failure }) => {
                let failure = match (request, status) {
                    // A directive the server refuses (its sequence started over): reload plainly.
                    (PlaylistRequest::Blocking { .. }, Some(400)) => Failure::retry(
                        "http_4xx",
                        format!("{}: blocking reload refused with 400", self.base),
                    ),
                    _ => failure,
                };
                let delay = session.failed(failure)?;
                follower.playlist_failed(now.saturating_add(delay));
                return Ok(());
            }
        };
        session.stats.add_bytes(body.len());
        let bad = |reason: String| PlayErrorKind::BadPlaylist {
            url: self.base.to_string(),
            reason,
        };
        let text = std::str::from_utf8(&body).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        let playlist = parse_lenient(text).map_err(bad)?;
        if playlist.part_target_us.is_none() {
            return Err(PlayErrorKind::NotHls {
                url: self.base.to_string(),
                reason: "no EXT-X-PART-INF: no longer a low-latency playlist".into(),
            });
        }
        follower
            .playlist_answered(now, request, &playlist)
            .map_err(|quiet| PlayErrorKind::StalePlaylist {
                url: self.base.to_string(),
                secs: quiet.as_secs_f64(),
            })?;
        for _ in 0..follower.take_late_discontinuities() {
            session.stats.discontinuity();
        }
        Ok(())
    }

    /// A media request answered.
    fn media(
        &mut self,
        follower: &mut Follower,
        session: &mut Session<'_>,
        request: MediaRequest,
        answer: Result<Bytes, Failed>,
    ) -> Result<(), PlayErrorKind> {
        let now = session.stats.now();
        match (request, answer) {
            (MediaRequest::Init(uri), Ok(body)) => {
                session.stats.add_bytes(body.len());
                let init = read_init(&body).map_err(|e| PlayErrorKind::BadSegment {
                    url: uri.clone(),
                    reason: e.to_string(),
                })?;
                self.init = Some(init);
                follower.init_loaded(&uri);
            }
            (MediaRequest::Init(_), Err(failed)) => {
                let delay = session.failed(failed.failure)?;
                follower.init_failed(now.saturating_add(delay));
            }
            (MediaRequest::Part(part), Ok(body)) => {
                session.stats.add_bytes(body.len());
                self.played(&part, &body, follower.target(), session);
                follower.part_loaded(part.id);
            }
            (MediaRequest::Part(part), Err(failed)) => {
                // A missing part is the follower's to handle (retried, skipped, or replaced by
                // what the next playlist lists); other failures back off like an outage.
                let failure = match (failed.status, failed.failure) {
                    (Some(404), Failure::Retry(kind, message)) => {
                        session.stats.error(kind);
                        tracing::debug!(url = part.uri, hinted = part.hinted, "{message}");
                        PartFailure::NotFound
                    }
                    (Some(503), Failure::Retry(kind, message)) if part.hinted => {
                        session.stats.error(kind);
                        tracing::debug!(url = part.uri, "{message}");
                        PartFailure::Unavailable
                    }
                    (_, failure) => {
                        let delay = session.failed(failure)?;
                        PartFailure::Retry(now.saturating_add(delay))
                    }
                };
                follower.part_failed(now, failure);
            }
        }
        Ok(())
    }

    /// A part finished downloading: its frames and media become available now.
    fn played(
        &mut self,
        part: &PartRequest,
        body: &[u8],
        max_duration: Duration,
        session: &mut Session<'_>,
    ) {
        let Some(init) = &self.init else {
            session.stats.error("no_init");
            return;
        };
        let stamps = session.stats.stamps();
        let media = match media::read_part(init, body, stamps, max_duration) {
            Ok(media) => media,
            Err(e) => {
                tracing::warn!(url = part.uri, "unreadable part: {e}");
                session.stats.error("bad_part");
                return;
            }
        };
        if part.skipped {
            tracing::warn!(url = part.uri, "parts skipped to reach this one");
        }
        if part.discontinuity {
            session.stats.discontinuity();
            session.stats.new_timeline();
        }
        let start = self.media_end;
        self.media_end = start.saturating_add(media.duration);
        let play_from = *self
            .play_from
            .get_or_insert_with(|| start.saturating_add(part.trim));
        // Frames before the start point are decoded only to reach it, never shown (as hls.js
        // seeks past them): counted, but their stamps measure no latency a viewer sees.
        let skip = play_from.saturating_sub(start);
        for f in media.frames {
            let stamp = f.stamp.filter(|_| f.offset >= skip);
            session.stats.frame(f.track, f.dts_ms, f.keyframe, stamp);
        }
        if self.media_end > play_from {
            session.stats.media(start.max(play_from), self.media_end);
        }
        session.media_flowing();
    }
}
