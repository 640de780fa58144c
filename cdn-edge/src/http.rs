//! The HTTP router: every origin path through the cache, plus `/metrics` and `/api/v1/cache`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use parking_lot::Mutex;

use media_core::hls::ll::{DirectiveError, Directives, Skip};
use media_core::token::Policy;

use crate::body::{FinishOnDrop, Growing};
use crate::cache::{Body, Cache, Object};
use crate::coalesce::{Role, SingleFlight};
use crate::config::Config;
use crate::flv_fanout::FlvFanout;
use crate::metrics::Metrics;
use crate::policy::{self, Freshness, Kind};
use crate::upstream::Upstream;

/// Longest accepted path and query, in bytes.
pub const MAX_URI_BYTES: usize = 2048;

/// Fetches each client request takes part in before it gives up on failing origins.
const FETCH_ATTEMPTS: usize = 2;

/// Fetches a held request (blocking playlist or part) takes part in: one, since a failed one
/// may have been held for the whole hold time; the player asks again.
const HELD_FETCH_ATTEMPTS: usize = 1;

/// Shared state of every handler.
pub struct Edge {
    /// Settings.
    pub config: Config,
    /// Cached objects.
    pub cache: Cache,
    /// Fetches under way, until the origin's headers arrive.
    pub flight: Arc<SingleFlight<Arc<Object>>>,
    /// Objects whose body is still arriving, shared with every request for them.
    pub arriving: Mutex<HashMap<String, Arc<Object>>>,
    /// The origins.
    pub upstream: Arc<Upstream>,
    /// HTTP-FLV streams relayed from the origins.
    pub flv: Arc<FlvFanout>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Which apps need signed play tokens.
    pub auth: Arc<Policy>,
}

/// Builds the router.
pub fn router(edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/cache", get(cache_summary))
        .fallback(serve)
        .layer(axum::middleware::map_response(allow_any_origin))
        .with_state(edge)
}

/// Every answer, errors included, may be read by pages of any origin (players, the web page).
async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// `GET /metrics`, readable by pages of any origin (the web page's host view).
async fn metrics(State(edge): State<Arc<Edge>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        edge.metrics.render(),
    )
        .into_response()
}

async fn cache_summary(State(edge): State<Arc<Edge>>) -> Response {
    let origins: Vec<_> = edge
        .upstream
        .health()
        .into_iter()
        .map(|(url, healthy)| serde_json::json!({ "url": url, "healthy": healthy }))
        .collect();
    (Json(serde_json::json!({
        "cache": edge.cache.summary(),
        "in_flight": edge.flight.in_flight(),
        "flv_upstreams": edge.flv.upstreams(),
        "origins": origins,
    })),)
        .into_response()
}

/// The cache key: the path plus only the configured query parameters, in request order.
pub fn cache_key(uri: &Uri, key_params: &[String]) -> String {
    key_with(uri, |name| key_params.iter().any(|k| k == name))
}

/// The path plus the query pairs whose name `keep` accepts, in request order.
fn key_with(uri: &Uri, keep: impl Fn(&str) -> bool) -> String {
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !name.is_empty() && keep(name)
        })
        .collect();
    if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    }
}

/// The LL-HLS delivery directives, which a playlist's key always keeps.
const DIRECTIVES: [&str; 3] = ["_HLS_msn", "_HLS_part", "_HLS_skip"];

/// A request's cache key, which is also the path and query asked of the origin, and what
/// the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// The cache key.
    pub key: String,
    /// Playlist, blocking playlist, LL-HLS part or other media.
    pub kind: Kind,
}

/// The key of a request: [`cache_key`], plus for a playlist (`.m3u8`) its LL-HLS delivery
/// directives, parsed and written back in one order (`_HLS_msn`, `_HLS_part`, `_HLS_skip`,
/// numbers without leading zeros) so that every spelling of one request shares one entry and
/// one origin request. Directives that do not parse are an error (answer 400); other paths
/// ignore them. A `.m4s` path is an LL-HLS part or segment.
pub fn request_key(uri: &Uri, key_params: &[String]) -> Result<RequestKey, DirectiveError> {
    if !uri.path().ends_with(".m3u8") {
        let kind = match uri.path().ends_with(".m4s") {
            true => Kind::Part,
            false => Kind::Media,
        };
        return Ok(RequestKey {
            key: cache_key(uri, key_params),
            kind,
        });
    }
    let directives = Directives::parse(uri.query().unwrap_or_default())?;
    let mut key = key_with(uri, |name| {
        !DIRECTIVES.contains(&name) && key_params.iter().any(|k| k == name)
    });
    let mut sep = if key.contains('?') { '&' } else { '?' };
    let mut push = |name: &str, value: &dyn std::fmt::Display| {
        // Writing into a String cannot fail.
        let _ = write!(key, "{sep}{name}={value}");
        sep = '&';
    };
    if let Some(msn) = directives.msn {
        push("_HLS_msn", &msn);
    }
    if let Some(part) = directives.part {
        push("_HLS_part", &part);
    }
    match directives.skip {
        Skip::No => {}
        Skip::Yes => push("_HLS_skip", &"YES"),
        Skip::V2 => push("_HLS_skip", &"v2"),
    }
    let kind = match directives.msn {
        Some(_) => Kind::BlockingPlaylist,
        None => Kind::Playlist,
    };
    Ok(RequestKey { key, kind })
}

/// True if a path segment is `.` or `..`, also when percent-encoded.
pub fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| {
        let s = s.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    })
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

async fn serve(
    State(edge): State<Arc<Edge>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    let raw_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if raw_len > MAX_URI_BYTES {
        return plain(StatusCode::URI_TOO_LONG, "URI too long\n");
    }
    if has_dot_segment(uri.path()) {
        return plain(StatusCode::BAD_REQUEST, "dot segments are not allowed\n");
    }
    edge.metrics.requests.inc();
    let query = uri.query().unwrap_or_default();
    if let Err(e) = edge
        .auth
        .check_play_path(uri.path(), query, net_guard::unix_secs())
    {
        edge.metrics.play_refused.inc();
        return (StatusCode::FORBIDDEN, format!("{e}\n")).into_response();
    }
    let RequestKey { key, kind } = match request_key(&uri, &edge.config.key_params) {
        Ok(k) => k,
        Err(e) => {
            edge.metrics.bad_directives.inc();
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
    if uri.path().ends_with(".flv") {
        return edge.flv.play(&key).await;
    }
    // An object still arriving is looked up before the cache: it is stored in the cache
    // before it leaves the arriving map, so one of the two lookups always finds it.
    let settled = || {
        let arriving = edge.arriving.lock().get(&key).cloned();
        arriving.or_else(|| edge.cache.get(&key).filter(|o| o.is_fresh(Instant::now())))
    };
    let (object, x_cache) = match edge.cache.get(&key).filter(|o| o.is_fresh(Instant::now())) {
        Some(o) => {
            edge.metrics.hits.inc();
            (o, "HIT")
        }
        None => {
            let fetcher = edge.clone();
            let attempts = match kind.is_held() {
                true => HELD_FETCH_ATTEMPTS,
                false => FETCH_ATTEMPTS,
            };
            let (result, role) = edge
                .flight
                .run(&key, attempts, settled, || {
                    let edge = fetcher.clone();
                    let key = key.clone();
                    async move { fill(&edge, &key, kind).await }
                })
                .await;
            let x_cache = match role {
                Role::Leader => {
                    edge.metrics.misses.inc();
                    "MISS"
                }
                Role::Follower | Role::Settled => {
                    edge.metrics.coalesced.inc();
                    if kind.is_held() {
                        edge.metrics.held_coalesced.inc();
                    }
                    "COALESCED"
                }
            };
            match result {
                Ok(o) => (o, x_cache),
                Err(e) => {
                    tracing::warn!(%key, "no origin answered: {e}");
                    return plain(StatusCode::BAD_GATEWAY, "no origin answered\n");
                }
            }
        }
    };
    respond(
        &object,
        x_cache,
        headers.get(header::RANGE),
        (method == Method::GET).then_some(&edge.metrics),
    )
    .await
}

/// One held origin request counted in [`Metrics::held_upstream`] until dropped.
struct HeldSlot(Arc<Metrics>);

impl HeldSlot {
    /// A slot if fewer than `max` held requests are under way.
    fn take(metrics: &Arc<Metrics>, max: usize) -> Option<Self> {
        let before = metrics.held_upstream.inc();
        let slot = Self(metrics.clone());
        (usize::try_from(before).is_ok_and(|n| n < max)).then_some(slot)
    }
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        self.0.held_upstream.dec();
    }
}

/// The answer every waiter of a blocking request gets when too many are held already.
fn too_many_held() -> Arc<Object> {
    Arc::new(Object {
        status: 503,
        content_type: Some("text/plain".into()),
        cache_control: Some("no-store".into()),
        body: Body::Complete(bytes::Bytes::from_static(b"too many held requests\n")),
        fetched_at: Instant::now(),
        origin_age: Duration::ZERO,
        expires: None,
    })
}

/// Fetches `key` from the origins. Playlists and non-200 answers are read whole and
/// stored if the policy allows; other bodies (a part the origin streams while it fills
/// included) are handed out as they arrive and stored once complete. A blocking playlist or
/// LL-HLS part request waits up to the held timeout for its answer and takes the origin's
/// `503` (held too long) as that answer; at most `max_held_fetches` held requests are under
/// way at once.
async fn fill(edge: &Arc<Edge>, key: &str, kind: Kind) -> Result<Arc<Object>, String> {
    let held = kind.is_held().then(|| edge.config.held_timeout());
    let _slot = match kind.is_held() {
        true => match HeldSlot::take(&edge.metrics, edge.config.max_held_fetches) {
            Some(slot) => Some(slot),
            None => {
                edge.metrics.held_refused.inc();
                return Ok(too_many_held());
            }
        },
        false => None,
    };
    let fetched = edge.upstream.fetch(key, held).await?;
    let now = Instant::now();
    let meta = Meta {
        status: fetched.status,
        content_type: fetched.content_type,
        cache_control: fetched.cache_control,
        fetched_at: now,
        origin_age: fetched.age,
    };
    if fetched.status != 200 || matches!(kind, Kind::Playlist | Kind::BlockingPlaylist) {
        let body = fetched.response.bytes().await.map_err(|e| e.to_string())?;
        edge.metrics.back_origin_bytes.inc_by(body.len() as u64);
        return Ok(store(edge, key, kind, meta, body));
    }
    let growing = Growing::new();
    let object = Arc::new(Object {
        status: meta.status,
        content_type: meta.content_type.clone(),
        cache_control: meta.cache_control.clone(),
        body: Body::Arriving {
            length: fetched.content_length,
            growing: growing.clone(),
        },
        fetched_at: now,
        origin_age: meta.origin_age,
        expires: None,
    });
    edge.arriving.lock().insert(key.to_string(), object.clone());
    let (edge, key, shared) = (edge.clone(), key.to_string(), object.clone());
    let mut response = fetched.response;
    tokio::spawn(async move {
        let finish = FinishOnDrop(growing.clone());
        loop {
            match response.chunk().await {
                Ok(Some(c)) => {
                    edge.metrics.back_origin_bytes.inc_by(c.len() as u64);
                    growing.push(c);
                }
                Ok(None) => {
                    growing.finish(true);
                    break;
                }
                Err(e) => {
                    tracing::warn!(%key, "origin body broke: {e}");
                    break;
                }
            }
        }
        drop(finish);
        if let Some(body) = growing.complete().await {
            store(&edge, &key, kind, meta, body);
        }
        let mut arriving = edge.arriving.lock();
        if arriving.get(&key).is_some_and(|o| Arc::ptr_eq(o, &shared)) {
            arriving.remove(&key);
        }
    });
    Ok(object)
}

/// An origin answer's status and headers.
struct Meta {
    status: u16,
    content_type: Option<String>,
    cache_control: Option<String>,
    fetched_at: Instant,
    origin_age: Duration,
}

/// A complete object, stored in the cache if the policy allows. Its freshness counts from
/// when the origin made it: the `Age` the origin sent is taken off.
fn store(edge: &Edge, key: &str, kind: Kind, meta: Meta, body: bytes::Bytes) -> Arc<Object> {
    let freshness = policy::freshness(
        &edge.config,
        kind,
        meta.status,
        meta.cache_control.as_deref(),
        &body,
    );
    let expires = match freshness {
        Freshness::For(d) => meta
            .fetched_at
            .checked_add(d.saturating_sub(meta.origin_age)),
        Freshness::Immutable | Freshness::Uncacheable => None,
    };
    let object = Arc::new(Object {
        status: meta.status,
        content_type: meta.content_type,
        cache_control: meta.cache_control,
        body: Body::Complete(body),
        fetched_at: meta.fetched_at,
        origin_age: meta.origin_age,
        expires,
    });
    if freshness != Freshness::Uncacheable {
        edge.cache.insert(key, object.clone());
    }
    object
}

/// A single byte range resolved against a body length, or `Err` if unsatisfiable.
/// `None` when the header is absent, malformed or asks for several ranges.
pub fn byte_range(range: Option<&HeaderValue>, len: usize) -> Option<Result<(usize, usize), ()>> {
    let spec = range?.to_str().ok()?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    let resolved = if start.is_empty() {
        let n: usize = end.parse().ok()?;
        if n == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len.checked_sub(1)?)
    } else {
        let s: usize = start.parse().ok()?;
        let e = if end.is_empty() {
            len.saturating_sub(1)
        } else {
            end.parse::<usize>().ok()?.min(len.saturating_sub(1))
        };
        if s >= len || e < s {
            return Some(Err(()));
        }
        (s, e)
    };
    Some(Ok(resolved))
}

/// The response for `object`; counts egress bytes into `egress` if given (GET, not HEAD).
async fn respond(
    object: &Object,
    x_cache: &'static str,
    range: Option<&HeaderValue>,
    egress: Option<&Arc<Metrics>>,
) -> Response {
    let status = StatusCode::from_u16(object.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = match &object.body {
        Body::Complete(b) => b.clone(),
        Body::Arriving { length, growing } if range.is_none() => {
            let metrics = egress.cloned();
            let stream = growing.stream().inspect(move |c| {
                if let (Some(m), Ok(c)) = (&metrics, c) {
                    m.egress_bytes.inc_by(c.len() as u64);
                }
            });
            let mut r = (status, axum::body::Body::from_stream(stream)).into_response();
            if let Some(n) = length {
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(*n));
            }
            return decorate(r, object, x_cache);
        }
        Body::Arriving { growing, .. } => match growing.complete().await {
            Some(b) => b,
            None => return plain(StatusCode::BAD_GATEWAY, "origin body broke\n"),
        },
    };
    let len = body.len();
    let response = match (status == StatusCode::OK)
        .then(|| byte_range(range, len))
        .flatten()
    {
        Some(Ok((s, e))) => {
            let mut r = (StatusCode::PARTIAL_CONTENT, body.slice(s..=e)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {s}-{e}/{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        Some(Err(())) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        None => (status, body).into_response(),
    };
    if let Some(m) = egress {
        let sent = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        m.egress_bytes.inc_by(sent.unwrap_or_default());
    }
    decorate(response, object, x_cache)
}

/// Adds the object's headers and the edge's own to a response.
fn decorate(mut response: Response, object: &Object, x_cache: &'static str) -> Response {
    let h = response.headers_mut();
    h.remove(header::CONTENT_TYPE);
    let text = |s: &Option<String>| s.as_deref().and_then(|v| HeaderValue::from_str(v).ok());
    if let Some(v) = text(&object.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(v) = text(&object.cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(
        header::AGE,
        HeaderValue::from(object.age(Instant::now()).as_secs()),
    );
    h.insert("x-cache", HeaderValue::from_static(x_cache));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_keeps_only_configured_params() {
        let uri: Uri = "/live/s.m3u8?token=abc&bitrate=720&x=1".parse().unwrap();
        assert_eq!(cache_key(&uri, &[]), "/live/s.m3u8");
        assert_eq!(
            cache_key(&uri, &["bitrate".into()]),
            "/live/s.m3u8?bitrate=720"
        );
    }

    fn key(target: &str, params: &[&str]) -> Result<RequestKey, DirectiveError> {
        let uri: Uri = target.parse().expect("test URI");
        let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
        request_key(&uri, &params)
    }

    #[test]
    fn playlist_keys_keep_the_directives_in_one_order() {
        let a = key("/live/s/ll.m3u8?_HLS_part=2&token=t&_HLS_msn=5", &[]).unwrap();
        let b = key("/live/s/ll.m3u8?_HLS_msn=005&_HLS_part=2", &[]).unwrap();
        assert_eq!(a.key, "/live/s/ll.m3u8?_HLS_msn=5&_HLS_part=2");
        assert_eq!((a.kind, b), (Kind::BlockingPlaylist, a.clone()));
        let delta = key("/live/s/ll.m3u8?_HLS_skip=v2&_HLS_msn=7", &[]).unwrap();
        assert_eq!(delta.key, "/live/s/ll.m3u8?_HLS_msn=7&_HLS_skip=v2");
        let plain = key("/live/s/ll.m3u8?_HLS_skip=YES", &[]).unwrap();
        assert_eq!(
            (plain.key.as_str(), plain.kind),
            ("/live/s/ll.m3u8?_HLS_skip=YES", Kind::Playlist)
        );
        let none = key("/live/s.m3u8?token=t", &[]).unwrap();
        assert_eq!(
            (none.key.as_str(), none.kind),
            ("/live/s.m3u8", Kind::Playlist)
        );
    }

    #[test]
    fn playlist_keys_put_configured_params_before_the_directives_once() {
        let k = key(
            "/live/s/ll.m3u8?_HLS_msn=5&lang=en&x=1",
            &["lang", "_HLS_msn"],
        )
        .unwrap();
        assert_eq!(k.key, "/live/s/ll.m3u8?lang=en&_HLS_msn=5");
    }

    #[test]
    fn bad_directives_are_refused_on_playlists_and_ignored_elsewhere() {
        for bad in [
            "_HLS_msn=-1",
            "_HLS_part=abc&_HLS_msn=1",
            "_HLS_msn=99999999999999999999999",
            "_HLS_msn=1&_HLS_msn=2",
            "_HLS_part=1",
            "_HLS_skip=no",
        ] {
            assert!(
                key(&format!("/live/s/ll.m3u8?{bad}"), &[]).is_err(),
                "{bad}"
            );
            let part = key(&format!("/live/s/ll-5.1.m4s?{bad}"), &[]).unwrap();
            assert_eq!(
                (part.key.as_str(), part.kind),
                ("/live/s/ll-5.1.m4s", Kind::Part)
            );
        }
    }

    #[test]
    fn dot_segments_are_detected() {
        assert!(has_dot_segment("/live/../etc"));
        assert!(has_dot_segment("/live/%2E%2e/etc"));
        assert!(has_dot_segment("/./a"));
        assert!(!has_dot_segment("/live/s..ts"));
    }

    #[test]
    fn byte_ranges() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(byte_range(Some(&h("bytes=0-9")), 100), Some(Ok((0, 9))));
        assert_eq!(byte_range(Some(&h("bytes=90-")), 100), Some(Ok((90, 99))));
        assert_eq!(byte_range(Some(&h("bytes=-10")), 100), Some(Ok((90, 99))));
        assert_eq!(
            byte_range(Some(&h("bytes=95-200")), 100),
            Some(Ok((95, 99)))
        );
        assert_eq!(byte_range(Some(&h("bytes=100-")), 100), Some(Err(())));
        assert_eq!(byte_range(Some(&h("bytes=0-1,5-6")), 100), None);
        assert_eq!(byte_range(None, 100), None);
    }
}
