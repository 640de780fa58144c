//! HTTP-FLV: FLV header, metadata, sequence headers, the GOP, then live tags.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use media_core::flv;

use crate::http::AppState;
use crate::hub::{Frame, FrameKind, Protocol, Subscription};

/// The byte stream of one HTTP-FLV viewer.
///
/// Each tag goes out as two buffers: the framer's small prefix and the frame payload itself,
/// shared with every other viewer.
struct FlvOut {
    sub: Subscription,
    header_sent: bool,
    pending: Option<Bytes>,
    framer: flv::StreamFramer,
}

fn tag_type(kind: FrameKind) -> u8 {
    match kind {
        FrameKind::Video => flv::TAG_VIDEO,
        FrameKind::Audio => flv::TAG_AUDIO,
        FrameKind::Script => flv::TAG_SCRIPT,
    }
}

impl FlvOut {
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        if !self.header_sent {
            self.header_sent = true;
            let (audio, video) = self.sub.tracks();
            return Some(Bytes::copy_from_slice(&flv::file_header(audio, video)));
        }
        let frame: Frame = self.sub.recv().await?;
        let prefix = self.framer.prefix(
            tag_type(frame.kind),
            frame.timestamp32(),
            frame.payload.len(),
        );
        self.pending = Some(frame.payload);
        Some(prefix)
    }
}

/// `GET /{app}/{stream}.flv`.
pub fn play(state: &AppState, key: &str) -> Response {
    let Some(sub) = state.hub.subscribe(key, Protocol::HttpFlv) else {
        return (StatusCode::NOT_FOUND, "no such stream\n").into_response();
    };
    let metrics = state.metrics.clone();
    let out = FlvOut {
        sub,
        header_sent: false,
        pending: None,
        framer: flv::StreamFramer::new(),
    };
    let stream = futures::stream::unfold(out, move |mut out| {
        let metrics = metrics.clone();
        async move {
            let chunk = out.next().await?;
            metrics.add_http_bytes("http_flv", chunk.len());
            Some((Ok::<_, Infallible>(chunk), out))
        }
    });
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("video/x-flv"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}
