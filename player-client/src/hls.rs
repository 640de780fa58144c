//! HLS playback: playlist polling, sequential segment downloads demuxed as they stream in,
//! and the buffer fed one whole segment at a time (as hls.js appends them). A media playlist
//! with `EXT-X-PART-INF` is handed to LL-HLS playback.

pub mod playlist;
mod poll;

use std::time::Duration;

use bytes::BytesMut;
use media_core::aac::parse_adts;
use media_core::avc::{annexb_nalus, nal_type, NAL_IDR};
use media_core::ts::{Demuxer, Packet, StreamKind};
use tokio::time::{sleep_until, timeout, Instant};

use crate::error::{Failure, PlayErrorKind};
use crate::http::{request_failure, status_failure};
use crate::latency::stamp_in_annexb;
use crate::llhls;
use crate::session::Session;
use crate::stats::Track;
use crate::summary::Protocol;
use playlist::{Entry, Parsed, Rejected};
use poll::Poller;

/// Largest playlist accepted; anything bigger is not a live playlist.
const MAX_PLAYLIST: usize = 1 << 20;
/// Attempts at a segment answering 404 before skipping it.
const SEGMENT_404_TRIES: u32 = 3;
/// Pause between attempts at a segment answering 404.
const SEGMENT_404_PAUSE: Duration = Duration::from_millis(200);
/// Consecutive 4xx answers that end the session.
const MAX_CONSECUTIVE_4XX: u32 = 10;
/// Master playlists followed before giving up (a master pointing at a master).
const MAX_MASTER_HOPS: u32 = 2;
/// A playlist body still arriving this long after its headers is abandoned and fetched again.
const PLAYLIST_TIME: Duration = Duration::from_secs(10);
/// Bytes a segment may carry per second of its duration (64 Mbit/s)...
const SEGMENT_BYTES_PER_SEC: u64 = 8 << 20;
/// ...and at least this many, however short it is; a larger one fails the session.
const MIN_SEGMENT_BYTES: u64 = 16 << 20;
/// A segment body may take this many times the segment's duration to arrive...
const SEGMENT_TIME_FACTOR: u32 = 4;
/// ...and at least this long; a slower one is abandoned and fetched again.
const MIN_SEGMENT_TIME: Duration = Duration::from_secs(10);

/// One frame of a downloaded segment, kept until the segment is complete.
struct FrameInfo {
    track: Track,
    dts_ms: i64,
    keyframe: bool,
    stamp: Option<u64>,
}

/// Playback position and error streaks across reloads.
struct Player {
    client: reqwest::Client,
    media_url: String,
    media_end: Duration,
    consecutive_4xx: u32,
}

/// Plays an HLS URL until the session ends, the playlist ends, or it fails.
pub(crate) async fn play(url: &str, session: &mut Session<'_>) -> Result<(), PlayErrorKind> {
    let client = session
        .options
        .client()
        .map_err(|e| PlayErrorKind::Client(e.to_string()))?;
    let mut player = Player {
        client,
        media_url: url.to_string(),
        media_end: Duration::ZERO,
        consecutive_4xx: 0,
    };
    let mut poller = Poller::new(session.options.live_edge_segments);
    let mut hops = 0;
    while !session.over() {
        let reload_started = Instant::now();
        let body = match player.fetch_playlist(session).await {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(failure) => {
                session.retry(failure).await?;
                continue;
            }
        };
        if llhls::is_low_latency(&body) {
            session.stats.set_protocol(Protocol::LlHls);
            return llhls::play(&player.media_url, body, session).await;
        }
        let list = match playlist::parse(&player.media_url, &body) {
            Ok(Parsed::Media(list)) => {
                session.stats.set_protocol(Protocol::Hls);
                list
            }
            Ok(Parsed::Master(variant)) if hops < MAX_MASTER_HOPS => {
                hops += 1;
                player.media_url = variant;
                continue;
            }
            Ok(Parsed::Master(_)) => {
                return Err(not_hls(&player.media_url, "master playlists nest too deep"));
            }
            Err(Rejected::NotHls(reason)) => return Err(not_hls(&player.media_url, &reason)),
            Err(Rejected::Invalid(reason)) => {
                return Err(PlayErrorKind::BadPlaylist {
                    url: player.media_url.clone(),
                    reason,
                });
            }
        };
        let plan = poller
            .reloaded(session.stats.now(), &list)
            .map_err(|quiet| PlayErrorKind::StalePlaylist {
                url: player.media_url.clone(),
                secs: quiet.as_secs_f64(),
            })?;
        if plan.skipped > 0 {
            tracing::warn!(
                url = player.media_url,
                "fell behind: {} segments skipped",
                plan.skipped
            );
            session.stats.discontinuity();
            session.stats.new_timeline();
        }
        for entry in &plan.fetch {
            if session.over() {
                return Ok(());
            }
            player.segment(entry, session).await?;
        }
        let Some(reload_after) = plan.reload_after else {
            break;
        };
        let wait = (reload_started + reload_after).saturating_duration_since(Instant::now());
        session.wait(wait).await;
    }
    Ok(())
}

fn not_hls(url: &str, reason: &str) -> PlayErrorKind {
    PlayErrorKind::NotHls {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// The most bytes a segment lasting `duration` may carry, and how long its download may take.
fn segment_limits(duration: Duration) -> (u64, Duration) {
    let bytes = duration.as_millis() * u128::from(SEGMENT_BYTES_PER_SEC) / 1000;
    let bytes = u64::try_from(bytes)
        .unwrap_or(u64::MAX)
        .max(MIN_SEGMENT_BYTES);
    let time = duration
        .saturating_mul(SEGMENT_TIME_FACTOR)
        .max(MIN_SEGMENT_TIME);
    (bytes, time)
}

impl Player {
    /// GETs `url`; `Ok(None)` when the session ended first.
    async fn get(
        &mut self,
        url: &str,
        session: &mut Session<'_>,
    ) -> Result<Option<reqwest::Response>, Failure> {
        let ended = session.ended();
        let request = timeout(session.options.connect_timeout, self.client.get(url).send());
        let response = tokio::select! {
            _ = ended => return Ok(None),
            r = request => match r {
                Err(_) => return Err(Failure::retry("timeout", format!("{url}: no answer"))),
                Ok(Err(e)) => return Err(request_failure(url, &e)),
                Ok(Ok(r)) => r,
            },
        };
        let status = response.status();
        if status.is_client_error() {
            self.consecutive_4xx += 1;
            if self.consecutive_4xx >= MAX_CONSECUTIVE_4XX {
                return Err(Failure::Fatal(PlayErrorKind::ClientErrorStorm {
                    url: url.to_string(),
                    count: self.consecutive_4xx,
                    status: status.as_u16(),
                }));
            }
        } else {
            self.consecutive_4xx = 0;
        }
        match status_failure(url, status) {
            Some(failure) => Err(failure),
            None => Ok(Some(response)),
        }
    }

    /// Streams a response body to `each` chunk by chunk until it ends, which must be within
    /// `within`; `Ok(false)` when the session ended.
    async fn read_body(
        url: &str,
        mut response: reqwest::Response,
        session: &mut Session<'_>,
        within: Duration,
        mut each: impl FnMut(&[u8]) -> Result<(), Failure>,
    ) -> Result<bool, Failure> {
        let ended = session.ended();
        tokio::pin!(ended);
        let idle = session.options.idle_timeout;
        let mut last_data = Instant::now();
        let deadline = last_data + within;
        loop {
            tokio::select! {
                _ = &mut ended => return Ok(false),
                _ = sleep_until(session.next_tick()) => session.tick(),
                _ = sleep_until(last_data + idle) => {
                    return Err(Failure::retry("idle", format!("{url}: no data for {idle:?}")));
                }
                _ = sleep_until(deadline) => {
                    return Err(Failure::retry("too_slow", format!("{url}: not complete within {within:?}")));
                }
                chunk = response.chunk() => match chunk {
                    Err(e) => return Err(request_failure(url, &e)),
                    Ok(None) => return Ok(true),
                    Ok(Some(chunk)) => {
                        last_data = Instant::now();
                        session.stats.add_bytes(chunk.len());
                        each(&chunk)?;
                    }
                },
            }
        }
    }

    /// The media playlist body; `Ok(None)` when the session ended first.
    async fn fetch_playlist(
        &mut self,
        session: &mut Session<'_>,
    ) -> Result<Option<BytesMut>, Failure> {
        let url = self.media_url.clone();
        let Some(response) = self.get(&url, session).await? else {
            return Ok(None);
        };
        let mut body = BytesMut::new();
        let complete = Self::read_body(&url, response, session, PLAYLIST_TIME, |chunk| {
            body.extend_from_slice(chunk);
            if body.len() > MAX_PLAYLIST {
                return Err(Failure::Fatal(not_hls(&url, "larger than 1 MiB")));
            }
            Ok(())
        })
        .await?;
        Ok(complete.then_some(body))
    }

    /// Downloads and plays one segment, retrying a 404 briefly and backing off on outages.
    async fn segment(
        &mut self,
        entry: &Entry,
        session: &mut Session<'_>,
    ) -> Result<(), PlayErrorKind> {
        let mut tries_404 = 0;
        loop {
            let failure = match self.download(entry, session).await {
                Ok(Some(frames)) => {
                    self.played(entry, frames, session);
                    return Ok(());
                }
                Ok(None) => return Ok(()),
                Err(failure) => failure,
            };
            match failure {
                Failure::Retry("http_404", message) => {
                    session.stats.error("http_404");
                    tries_404 += 1;
                    if tries_404 >= SEGMENT_404_TRIES {
                        tracing::warn!(url = entry.url, "{message}; skipping the segment");
                        session.stats.discontinuity();
                        session.stats.new_timeline();
                        return Ok(());
                    }
                    session.wait(SEGMENT_404_PAUSE).await;
                }
                other => session.retry(other).await?,
            }
            if session.over() {
                return Ok(());
            }
        }
    }

    /// The frames of a segment; `Ok(None)` when the session ended first. A segment larger than
    /// its duration can hold fails the session; one slower than its duration allows is retried.
    async fn download(
        &mut self,
        entry: &Entry,
        session: &mut Session<'_>,
    ) -> Result<Option<Vec<FrameInfo>>, Failure> {
        let Some(response) = self.get(&entry.url, session).await? else {
            return Ok(None);
        };
        let (max_bytes, within) = segment_limits(entry.duration);
        let mut bytes = 0u64;
        let mut demuxer = Demuxer::new();
        let mut frames = Vec::new();
        let complete = Self::read_body(&entry.url, response, session, within, |chunk| {
            bytes = bytes.saturating_add(chunk.len() as u64);
            if bytes > max_bytes {
                return Err(Failure::Fatal(PlayErrorKind::BadSegment {
                    url: entry.url.clone(),
                    reason: format!(
                        "more than {max_bytes} bytes, the most a segment of {:?} may carry",
                        entry.duration
                    ),
                }));
            }
            let packets = demuxer
                .push(chunk)
                .map_err(|e| Failure::retry("demux", format!("{}: {e}", entry.url)))?;
            packets.iter().for_each(|p| frames_of(p, &mut frames));
            Ok(())
        })
        .await?;
        if !complete {
            return Ok(None);
        }
        demuxer
            .flush()
            .iter()
            .for_each(|p| frames_of(p, &mut frames));
        Ok(Some(frames))
    }

    /// A segment finished downloading: its frames and media become available now.
    fn played(&mut self, entry: &Entry, frames: Vec<FrameInfo>, session: &mut Session<'_>) {
        if entry.discontinuity {
            session.stats.discontinuity();
            session.stats.new_timeline();
        }
        for f in frames {
            session.stats.frame(f.track, f.dts_ms, f.keyframe, f.stamp);
        }
        let start = self.media_end;
        self.media_end = self.media_end.saturating_add(entry.duration);
        session.stats.media(start, self.media_end);
        session.media_flowing();
    }
}

/// The frames of one PES packet: one video access unit, or every ADTS frame of an audio PES.
fn frames_of(packet: &Packet, out: &mut Vec<FrameInfo>) {
    let dts_ms = (packet.dts / 90) as i64;
    match packet.kind {
        StreamKind::Video => out.push(FrameInfo {
            track: Track::Video,
            dts_ms,
            keyframe: annexb_nalus(&packet.data)
                .iter()
                .any(|n| nal_type(n) == NAL_IDR),
            stamp: stamp_in_annexb(&packet.data),
        }),
        StreamKind::Audio => {
            let count = parse_adts(&packet.data).map_or(1, |frames| frames.len().max(1));
            out.extend((0..count).map(|_| FrameInfo {
                track: Track::Audio,
                dts_ms,
                keyframe: false,
                stamp: None,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_core::aac::AudioSpecificConfig;
    use media_core::avc::avcc_to_annexb;
    use media_core::sei::insert_stamp;
    use media_core::ts::Muxer;

    fn avcc(nalu: &[u8]) -> Vec<u8> {
        let mut out = (nalu.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(nalu);
        out
    }

    /// A segment with a stamped IDR, an unstamped P frame and one PES of two ADTS frames.
    fn segment(stamp: u64) -> Vec<u8> {
        let mut mux = Muxer::new(true, true);
        let mut ts = Vec::new();
        mux.write_tables(&mut ts);
        let idr = insert_stamp(&avcc(&[0x65, 0x88, 0x84, 0x21]), 4, stamp).expect("valid");
        let mut annexb = Vec::new();
        avcc_to_annexb(&idr, 4, &mut annexb).expect("valid");
        mux.write_video(&mut ts, 90_000, 90_000, true, &annexb);
        let mut p = Vec::new();
        avcc_to_annexb(&avcc(&[0x41, 0x9A, 0x02]), 4, &mut p).expect("valid");
        mux.write_video(&mut ts, 93_000, 93_000, false, &p);
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).expect("valid config");
        let mut adts = Vec::new();
        for _ in 0..2 {
            adts.extend_from_slice(&asc.adts_header(3));
            adts.extend_from_slice(&[1, 2, 3]);
        }
        mux.write_audio(&mut ts, 90_000, &adts);
        ts
    }

    #[test]
    fn segment_limits_grow_with_the_duration_from_a_floor() {
        assert_eq!(
            segment_limits(Duration::from_secs(1)),
            (MIN_SEGMENT_BYTES, MIN_SEGMENT_TIME)
        );
        assert_eq!(
            segment_limits(Duration::from_secs(6)),
            (48 << 20, Duration::from_secs(24))
        );
        let (bytes, time) = segment_limits(Duration::MAX);
        assert_eq!((bytes, time), (u64::MAX, Duration::MAX));
    }

    #[test]
    fn ts_frames_carry_keyframes_stamps_and_every_adts_frame() {
        let mut demuxer = Demuxer::new();
        let mut frames = Vec::new();
        for p in demuxer
            .push(&segment(1_700_000_000_000_000))
            .expect("demuxes")
        {
            frames_of(&p, &mut frames);
        }
        demuxer
            .flush()
            .iter()
            .for_each(|p| frames_of(p, &mut frames));
        let video: Vec<_> = frames.iter().filter(|f| f.track == Track::Video).collect();
        assert_eq!(video.len(), 2);
        assert!(video[0].keyframe && !video[1].keyframe);
        assert_eq!(video[0].stamp, Some(1_700_000_000_000_000));
        assert_eq!(video[1].stamp, None);
        assert_eq!((video[0].dts_ms, video[1].dts_ms), (1000, 1033));
        assert_eq!(frames.iter().filter(|f| f.track == Track::Audio).count(), 2);
    }
}
