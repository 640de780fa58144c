//! Stats API and Prometheus metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use crate::http::AppState;
use crate::hub::StreamStats;
use crate::llhls::LlHlsStats;

/// Body of `GET /api/v1/streams`.
#[derive(Debug, Serialize)]
pub struct StreamsBody {
    /// Every known stream.
    pub streams: Vec<StreamBody>,
}

/// One stream in `GET /api/v1/streams`: the hub's stats and the outputs' figures.
#[derive(Debug, Serialize)]
pub struct StreamBody {
    /// The hub's stats, with the HLS viewer estimate and warnings merged in.
    #[serde(flatten)]
    pub stats: StreamStats,
    /// Low-latency HLS figures; absent when LL-HLS is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llhls: Option<LlHlsStats>,
}

/// Stats of every stream, with HLS viewer estimates merged in.
pub fn streams_snapshot(state: &AppState) -> Vec<StreamStats> {
    let mut streams = state.hub.stats();
    for s in &mut streams {
        let ll_viewers = state.llhls.as_ref().map_or(0, |ll| {
            ll.store
                .get(&s.key)
                .map_or(0, |l| l.estimated_viewers(std::time::Instant::now()))
        });
        s.viewers.hls = state.hls.viewers(&s.key).saturating_add(ll_viewers);
        let forced_cuts = state.hls.get(&s.key).map_or(0, |h| h.read().forced_cuts());
        if forced_cuts > 0 {
            s.warnings.push(format!(
                "keyframe interval too long: {forced_cuts} HLS segments cut without a keyframe \
                 (set the encoder's GOP to at most {} s)",
                state.hls_config.max_segment_duration().as_secs_f64()
            ));
        }
    }
    streams
}

/// `GET /api/v1/streams`, readable by pages of any origin (the web page's host view).
pub async fn streams(State(state): State<AppState>) -> impl IntoResponse {
    (Json(StreamsBody {
        streams: streams_snapshot(&state)
            .into_iter()
            .map(|stats| StreamBody {
                llhls: state
                    .llhls
                    .as_ref()
                    .and_then(|ll| ll.store.get(&stats.key))
                    .map(|ll| ll.stats()),
                stats,
            })
            .collect(),
    }),)
}

/// `GET /metrics`, readable by pages of any origin.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let streams = streams_snapshot(&state);
    let m = &state.metrics;
    m.streams.set(streams.len() as i64);
    let sum = |f: fn(&StreamStats) -> usize| streams.iter().map(f).sum::<usize>();
    m.set_viewers("http_flv", sum(|s| s.viewers.http_flv));
    m.set_viewers("rtmp", sum(|s| s.viewers.rtmp));
    m.set_viewers("hls", sum(|s| s.viewers.hls));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}
