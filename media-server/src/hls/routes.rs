//! HTTP handlers for playlists and segments, with cache headers that tell the truth.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::AppState;

pub(crate) const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const SEGMENT_TYPE: &str = "video/mp2t";

pub(super) fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such stream or segment\n").into_response()
}

pub(crate) fn media(body: impl IntoResponse, content_type: &'static str, cache: &str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    r
}

/// Waits up to three target durations for a stream's first segment; false if none came.
pub(super) async fn first_segment(
    state: &AppState,
    watch: &mut tokio::sync::watch::Receiver<u64>,
) -> bool {
    let wait = Duration::from_secs_f64(state.hls_config.target_duration_secs * 3.0);
    tokio::time::timeout(wait, watch.changed()).await.is_ok()
}

/// `GET /{app}/{stream}.m3u8`. Waits briefly for the first segment of a live stream.
pub async fn playlist(state: &AppState, key: &str) -> Response {
    let Some(hls) = state.hls.get(key) else {
        return not_found();
    };
    let (text, mut watch, fresh_for) = {
        let s = hls.read();
        s.record_poll(std::time::Instant::now());
        (s.playlist_text(), s.watch(), s.playlist().target_duration())
    };
    let text = if text.is_empty() {
        if !first_segment(state, &mut watch).await {
            return not_found();
        }
        hls.read().playlist_text()
    } else {
        text
    };
    state.metrics.add_http_bytes("hls", text.len());
    let max_age = (fresh_for / 2).max(1);
    media(text, PLAYLIST_TYPE, &format!("public, max-age={max_age}"))
}

/// `GET /{app}/{stream}/{seq}.ts`.
pub async fn segment(state: &AppState, key: &str, file: &str) -> Response {
    let Some(seq) = file.strip_suffix(".ts").and_then(|s| s.parse::<u64>().ok()) else {
        return not_found();
    };
    let Some(data) = state.hls.get(key).and_then(|h| h.read().segment(seq)) else {
        return not_found();
    };
    state.metrics.add_http_bytes("hls", data.len());
    media(data, SEGMENT_TYPE, "public, max-age=31536000, immutable")
}
