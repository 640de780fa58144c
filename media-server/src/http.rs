//! The HTTP router: HLS, HTTP-FLV, stats API and metrics on one listener.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use media_core::token::Policy;
use net_guard::PeerAddr;

use crate::auth::PlayAllowed;
use crate::config::{HlsConfig, TranscodeConfig};
use crate::hls::{self, HlsStore};
use crate::hub::Hub;
use crate::llhls::{self, LlHls};
use crate::metrics::Metrics;
use crate::{api, flv};

/// Shared state of every HTTP handler.
#[derive(Clone)]
pub struct AppState {
    /// The stream hub.
    pub hub: Hub,
    /// HLS segments and playlists.
    pub hls: HlsStore,
    /// HLS settings.
    pub hls_config: HlsConfig,
    /// Low-latency HLS; `None` when it is off.
    pub llhls: Option<LlHls>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Rendition ladders, for master playlists.
    pub transcode: Arc<TranscodeConfig>,
    /// Which apps need signed URLs.
    pub auth: Arc<Policy>,
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/streams", get(api::streams))
        .route("/metrics", get(api::metrics))
        .route("/{app}/{file}", get(stream_file))
        .route("/{app}/{stream}/{file}", get(segment_file))
        .layer(axum::middleware::map_response(allow_any_origin))
        .with_state(state)
}

/// Every answer, errors included, may be read by pages of any origin (players, the web page).
async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// 400 unless every part is a valid app or stream name.
fn bad_names(parts: &[&str]) -> Option<Response> {
    parts.iter().find_map(|part| {
        media_core::name::check(part)
            .err()
            .map(|e| (StatusCode::BAD_REQUEST, format!("bad name {part:?}: {e}\n")).into_response())
    })
}

async fn stream_file(
    _: PlayAllowed,
    State(state): State<AppState>,
    Path((app, file)): Path<(String, String)>,
) -> Response {
    let name = file
        .strip_suffix(".m3u8")
        .or_else(|| file.strip_suffix(".flv"))
        .unwrap_or(&file);
    if let Some(bad) = bad_names(&[&app, name]) {
        return bad;
    }
    if let Some(name) = file.strip_suffix(".m3u8") {
        return hls::playlist(&state, &format!("{app}/{name}")).await;
    }
    if let Some(name) = file.strip_suffix(".flv") {
        return flv::play(&state, &format!("{app}/{name}"));
    }
    (StatusCode::NOT_FOUND, "unknown resource\n").into_response()
}

async fn segment_file(
    _: PlayAllowed,
    State(state): State<AppState>,
    ConnectInfo(peer): PeerAddr,
    RawQuery(query): RawQuery,
    Path((app, stream, file)): Path<(String, String, String)>,
) -> Response {
    if let Some(bad) = bad_names(&[&app, &stream]) {
        return bad;
    }
    match file.as_str() {
        "master.m3u8" => return hls::master_playlist(&state, &app, &stream).await,
        "ll.m3u8" => {
            return llhls::playlist(&state, &app, &stream, query.as_deref(), peer.ip()).await
        }
        "ll-master.m3u8" => return llhls::master_playlist(&state, &app, &stream).await,
        _ => {}
    }
    if file.starts_with("ll-") {
        return llhls::media(&state, &format!("{app}/{stream}"), &file, peer.ip()).await;
    }
    hls::segment(&state, &format!("{app}/{stream}"), &file).await
}
