//! HTTP handlers for LL-HLS: the media playlist with blocking reload and delta updates, parts,
//! segments, init segments and the LL master playlist. Requests for what does not exist yet
//! are held until a packager event brings it (never polled), refused past the advance limits,
//! and answered 503 after three target durations. A part being filled (the preload-hinted
//! one) is answered at once and sent chunk by chunk as the packager writes it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use media_core::hls::ll::{
    Directives, FetchDecision, PartId, PlaylistDecision, RenditionReport, TooFar,
};
use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

use super::store::{LlHls, LlState, LlStream};
use crate::hls::{self, render_master, variant, PLAYLIST_TYPE};
use crate::http::AppState;

/// Parts, segments and init segments; hls.js and ffmpeg take fMP4 as `video/mp4`.
const MEDIA_TYPE: &str = "video/mp4";
/// Parts, segments and init segments never change once they exist (Appendix B).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Header on parts served whole: when the packager completed the part, in unix milliseconds.
/// A part sent while it fills has none: its body ends when the part is complete.
pub const PART_COMPLETED_HEADER: &str = "x-ll-part-completed-ms";
/// Most digits of a number in a part or segment name (`u64::MAX` has 20).
const MAX_DIGITS: usize = 20;

fn refuse(status: StatusCode, reason: &str) -> Response {
    (status, format!("{reason}\n")).into_response()
}

fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "no such stream, part or segment")
}

/// What a look at the stream decided.
enum Step<T> {
    /// Answer with this now.
    Ready(T),
    /// Hold until the next packager event.
    Wait,
    /// Answer with this response (400, 404).
    Refuse(Response),
}

/// Decides on the stream's state, holding the request across packager events until `decide`
/// is ready, the hold timeout passes (503), the client's cap on held requests is reached
/// (429) or the stream ends (404). Woken by the stream's events only.
async fn hold<T>(
    state: &AppState,
    ll: &LlHls,
    stream: &LlStream,
    peer: IpAddr,
    mut decide: impl FnMut(&LlState) -> Step<T>,
) -> Result<T, Response> {
    let deadline = Instant::now() + ll.config.hold_timeout();
    let mut permit = None;
    loop {
        let mut events = stream.subscribe();
        let step = {
            let st = stream.read();
            decide(&st)
        };
        match step {
            Step::Ready(value) => {
                if permit.is_some() {
                    state.metrics.held_outcome("answered");
                }
                return Ok(value);
            }
            Step::Refuse(response) => return Err(response),
            Step::Wait if stream.is_closed() => return Err(not_found()),
            Step::Wait => {}
        }
        if permit.is_none() {
            permit = ll.held.try_hold(peer);
            if permit.is_none() {
                state.metrics.held_outcome("refused");
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many held requests from this address",
                ));
            }
        }
        if tokio::time::timeout_at(deadline, events.changed())
            .await
            .is_err()
        {
            state.metrics.held_outcome("timed_out");
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the requested part did not arrive within three target durations",
            ));
        }
    }
}

/// `GET /{app}/{stream}/ll.m3u8[?_HLS_msn=M[&_HLS_part=N]][&_HLS_skip=YES|v2]`.
pub async fn playlist(
    state: &AppState,
    app: &str,
    name: &str,
    query: Option<&str>,
    peer: IpAddr,
) -> Response {
    let Some(ll) = &state.llhls else {
        return not_found();
    };
    let directives = match Directives::parse(query.unwrap_or_default()) {
        Ok(d) => d,
        Err(e) => {
            state.metrics.held_outcome("bad_request");
            return refuse(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    let key = format!("{app}/{name}");
    let Some(stream) = ll.store.get(&key) else {
        return not_found();
    };
    stream.record_poll(std::time::Instant::now());
    let decided = hold(state, ll, &stream, peer, |st| {
        match st.packager.decide_playlist(&directives) {
            PlaylistDecision::Ready => Step::Ready(()),
            PlaylistDecision::Wait(_) => Step::Wait,
            PlaylistDecision::BadRequest(why) => {
                state.metrics.held_outcome("bad_request");
                let reason = match why {
                    TooFar::Msn => "_HLS_msn is more than two segments beyond the last one",
                    TooFar::Part => "_HLS_part is beyond the advance part limit",
                };
                Step::Refuse(refuse(StatusCode::BAD_REQUEST, reason))
            }
        }
    })
    .await;
    if let Err(response) = decided {
        return response;
    }
    let reports = sibling_reports(state, ll, app, name);
    let text = stream.playlist(directives.skip, &reports);
    state.metrics.add_http_bytes("llhls", text.len());
    // A blocking response holds the part it names, so it stays right for that URL: caches may
    // keep it for as long as the hold timeout. The newest playlist changes every part target
    // (below max-age's one-second resolution), so a plain request is revalidated each time.
    let cache = match directives.msn {
        Some(_) => format!("public, max-age={}", ll.config.hold_timeout().as_secs()),
        None => "no-cache".to_string(),
    };
    hls::media(text, PLAYLIST_TYPE, &cache)
}

/// `EXT-X-RENDITION-REPORT` of the other renditions of `name`'s ladder that have parts.
fn sibling_reports(state: &AppState, ll: &LlHls, app: &str, name: &str) -> Vec<RenditionReport> {
    let ladder = state.transcode.ladder(app);
    if ladder.is_empty() {
        return Vec::new();
    }
    let source = ladder
        .iter()
        .find_map(|r| name.strip_suffix(&format!("_{}", r.name)))
        .unwrap_or(name);
    std::iter::once(source.to_string())
        .chain(ladder.iter().map(|r| format!("{source}_{}", r.name)))
        .filter(|sibling| sibling != name)
        .filter_map(|sibling| {
            let stream = ll.store.get(&format!("{app}/{sibling}"))?;
            let report = stream
                .read()
                .packager
                .rendition_report(&format!("../{sibling}/ll.m3u8"));
            report
        })
        .collect()
}

/// A decimal number of at most [`MAX_DIGITS`] digits.
fn number(text: &str) -> Option<u64> {
    let ok =
        !text.is_empty() && text.len() <= MAX_DIGITS && text.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.parse().ok()).flatten()
}

/// What an `ll-` file name asks for.
enum File {
    Part(PartId),
    Segment(u64),
    Init(u64),
}

fn parse_file(file: &str) -> Option<File> {
    let rest = file.strip_prefix("ll-")?;
    if let Some(id) = rest
        .strip_prefix("init")
        .and_then(|r| r.strip_suffix(".mp4"))
    {
        return number(id).map(File::Init);
    }
    let stem = rest.strip_suffix(".m4s")?;
    match stem.split_once('.') {
        Some((msn, part)) => Some(File::Part(PartId {
            msn: number(msn)?,
            part: number(part)?,
        })),
        None => number(stem).map(File::Segment),
    }
}

/// What a media request is answered with.
enum Answer {
    /// Complete bytes (an init segment, a part, a segment, as buffers to send back to back),
    /// with the part's completion time.
    Whole(Vec<Bytes>, Option<u64>),
    /// A part being filled, sent chunk by chunk.
    Filling(PartId),
}

/// `GET /{app}/{stream}/ll-{msn}.{part}.m4s`, `ll-{msn}.m4s` and `ll-init{n}.mp4`.
///
/// A complete part, segment or init segment is sent whole with `Content-Length`. The part
/// being filled (the preload-hinted one, once it has its first frame) is answered at once and
/// streamed ([`filling_part`]). A part or segment that should come soon (the hinted part before
/// its first frame, a part within the advance limit, the segment being written) is held until
/// it is being filled or complete.
pub async fn media(state: &AppState, key: &str, file: &str, peer: IpAddr) -> Response {
    let (Some(ll), Some(file)) = (&state.llhls, parse_file(file)) else {
        return not_found();
    };
    let Some(stream) = ll.store.get(key) else {
        return not_found();
    };
    let answer = match file {
        File::Init(id) => {
            let init = stream.read().packager.init(id).map(|i| i.data.clone());
            init.map(|data| Answer::Whole(vec![data], None))
                .ok_or_else(not_found)
        }
        File::Part(id) => {
            hold(state, ll, &stream, peer, |st| {
                if let Some(part) = st.packager.part(id) {
                    return Step::Ready(Answer::Whole(part.chunks.clone(), st.completed_ms(id)));
                }
                if st.packager.open_chunks(id).is_some() {
                    return Step::Ready(Answer::Filling(id));
                }
                match st.packager.decide_part(id) {
                    FetchDecision::Wait => Step::Wait,
                    _ => Step::Refuse(not_found()),
                }
            })
            .await
        }
        File::Segment(msn) => {
            hold(state, ll, &stream, peer, |st| {
                match (st.packager.segment(msn), st.packager.decide_segment(msn)) {
                    (Some(segment), _) => {
                        // A segment goes out as its parts' buffers, never copied into one.
                        let chunks = segment.parts.iter().flat_map(|p| p.chunks.iter().cloned());
                        Step::Ready(Answer::Whole(chunks.collect(), None))
                    }
                    (None, FetchDecision::Wait) => Step::Wait,
                    (None, _) => Step::Refuse(not_found()),
                }
            })
            .await
        }
    };
    match answer {
        Ok(Answer::Whole(chunks, completed_ms)) => {
            let len: usize = chunks.iter().map(Bytes::len).sum();
            state.metrics.add_http_bytes("llhls", len);
            let body = Body::from_stream(futures::stream::iter(
                chunks.into_iter().map(Ok::<_, Infallible>),
            ));
            let mut response = hls::media(body, MEDIA_TYPE, IMMUTABLE);
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            if let Some(ms) = completed_ms {
                response
                    .headers_mut()
                    .insert(PART_COMPLETED_HEADER, HeaderValue::from(ms));
            }
            response
        }
        Ok(Answer::Filling(id)) => {
            state.metrics.llhls_part_streams.inc();
            let body = filling_part(stream, id, state.metrics.http_bytes("llhls"));
            hls::media(Body::from_stream(body), MEDIA_TYPE, IMMUTABLE)
        }
        Err(response) => response,
    }
}

/// Where a part being sent while it fills stands.
struct Filling {
    stream: Arc<LlStream>,
    id: PartId,
    events: tokio::sync::watch::Receiver<u64>,
    /// Chunks taken from the packager so far.
    taken: usize,
    /// Chunks taken and not yet sent.
    ready: VecDeque<Bytes>,
    /// No chunk will follow the ready ones.
    done: bool,
    bytes: Counter,
}

/// The body of part `id`, which is being filled: the chunks written so far, then each chunk as
/// the packager reports it (woken by the stream's events), ending with the part's last chunk,
/// so the body is the finished part. Only a part's own buffers are held, and a chunk is taken
/// when the connection is ready for it, so a slow reader costs at most the part. Should the
/// part never finish (the stream's task ends without finishing it), the body ends after the
/// last whole chunk: a shorter, well-formed part.
fn filling_part(
    stream: Arc<LlStream>,
    id: PartId,
    bytes: Counter,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let events = stream.subscribe_chunks();
    let filling = Filling {
        stream,
        id,
        events,
        taken: 0,
        ready: VecDeque::new(),
        done: false,
        bytes,
    };
    futures::stream::unfold(filling, |mut f| async move {
        loop {
            if let Some(chunk) = f.ready.pop_front() {
                f.bytes.inc_by(chunk.len() as u64);
                return Some((Ok(chunk), f));
            }
            if f.done {
                return None;
            }
            f.events.borrow_and_update();
            {
                let st = f.stream.read();
                let (chunks, done) = match st.packager.part(f.id) {
                    Some(part) => (&part.chunks[..], true),
                    None => match st.packager.open_chunks(f.id) {
                        Some(chunks) => (chunks, false),
                        None => (&[][..], true),
                    },
                };
                f.ready.extend(chunks.iter().skip(f.taken).cloned());
                f.taken = f.taken.max(chunks.len());
                f.done = done;
            }
            if f.ready.is_empty() && !f.done {
                f.done = f.stream.is_closed() || f.events.changed().await.is_err();
            }
        }
    })
}

/// `GET /{app}/{stream}/ll-master.m3u8`: the source's and its live renditions' LL-HLS
/// playlists as variants. The TS master playlist stays at `master.m3u8`.
pub async fn master_playlist(state: &AppState, app: &str, name: &str) -> Response {
    let Some(ll) = &state.llhls else {
        return not_found();
    };
    let key = format!("{app}/{name}");
    let has_parts = |key: &str| {
        ll.store
            .get(key)
            .is_some_and(|s| s.read().packager.live_edge().last_part.is_some())
    };
    if !has_parts(&key) {
        return not_found();
    }
    let Some(source) = variant(state, &key, "ll.m3u8".into(), 0) else {
        return not_found();
    };
    let mut variants = vec![source];
    for r in state.transcode.ladder(app) {
        let rkey = format!("{key}_{}", r.name);
        if !has_parts(&rkey) {
            continue;
        }
        let uri = format!("../{name}_{}/ll.m3u8", r.name);
        variants.extend(variant(state, &rkey, uri, u64::from(r.video_kbps) * 1000));
    }
    let text = render_master(&variants);
    state.metrics.add_http_bytes("llhls", text.len());
    hls::media(text, PLAYLIST_TYPE, "public, max-age=1")
}

#[cfg(test)]
mod tests {
    use super::super::output::{drain, feed, sample_frames};
    use super::*;
    use crate::metrics::Metrics;
    use futures::{FutureExt, StreamExt};
    use media_core::hls::ll::{LlHlsConfig, Packager};

    /// Feeds the sample frame by frame, waking the stream's readers after each as the
    /// packager task does, and reads part 0.1's body from when it is being filled, taking only
    /// what is ready after each frame. With `close_after`, the stream's task ends once the part
    /// has that many chunks. Returns the chunks received, those the packager wrote, and whether
    /// the part was finished.
    fn stream_part(close_after: Option<usize>) -> (Vec<Bytes>, Vec<Bytes>, bool) {
        let id = PartId { msn: 0, part: 1 };
        let stream = Arc::new(LlStream::new(
            Packager::new(LlHlsConfig::default()).unwrap(),
        ));
        let metrics = Metrics::default();
        let mut epoch = None;
        let mut body = None;
        let mut received = Vec::new();
        for frame in sample_frames(1, 0, 2_000) {
            let (closing, wake) = {
                let mut st = stream.write();
                feed(&mut st.packager, &mut epoch, &frame, 1_000).unwrap();
                let wake = drain(&mut st, &metrics, 1_000);
                let written = st.packager.open_chunks(id).map(<[Bytes]>::len);
                if body.is_none() && written.is_some() {
                    body = Some(Box::pin(filling_part(
                        stream.clone(),
                        id,
                        Counter::default(),
                    )));
                }
                (close_after.is_some_and(|n| written >= Some(n)), wake)
            };
            stream.notify(wake);
            if closing {
                stream.close();
            }
            let Some(b) = body.as_mut() else {
                continue;
            };
            loop {
                match b.next().now_or_never() {
                    Some(Some(Ok(chunk))) => received.push(chunk),
                    Some(None) => {
                        let st = stream.read();
                        let (written, complete) = match st.packager.part(id) {
                            Some(part) => (part.chunks.clone(), true),
                            None => (
                                st.packager.open_chunks(id).unwrap_or_default().to_vec(),
                                false,
                            ),
                        };
                        return (received, written, complete);
                    }
                    None => break,
                }
            }
            assert!(!closing, "a closed stream ends the body");
            let st = stream.read();
            let written = st.packager.open_chunks(id).expect("still filling");
            assert_eq!(received.len(), written.len(), "every chunk at once");
        }
        panic!("the body never ended")
    }

    #[test]
    fn a_part_being_filled_streams_each_chunk_as_it_is_written_and_ends_with_the_part() {
        let (received, part, complete) = stream_part(None);
        assert!(complete);
        assert!(part.len() >= 9, "a chunk per frame: {}", part.len());
        assert_eq!(received, part, "the body is the part's chunks");
    }

    #[test]
    fn a_stream_that_ends_while_a_part_fills_ends_the_body_after_whole_chunks() {
        let (received, written, complete) = stream_part(Some(3));
        assert!(!complete, "the task ended without finishing the part");
        assert_eq!(received.len(), 3);
        assert_eq!(received, written, "every chunk written, nothing more");
    }

    #[test]
    fn file_names_parse_strictly() {
        assert!(matches!(
            parse_file("ll-12.3.m4s"),
            Some(File::Part(PartId { msn: 12, part: 3 }))
        ));
        assert!(matches!(parse_file("ll-12.m4s"), Some(File::Segment(12))));
        assert!(matches!(parse_file("ll-init0.mp4"), Some(File::Init(0))));
        for bad in [
            "ll-.m4s",
            "ll--1.m4s",
            "ll-1.-2.m4s",
            "ll-1.2.3.m4s",
            "ll-+1.m4s",
            "ll-99999999999999999999999.m4s",
            "ll-18446744073709551616.m4s",
            "ll-init.mp4",
            "ll-1.ts",
            "12.ts",
        ] {
            assert!(parse_file(bad).is_none(), "{bad}");
        }
    }
}
