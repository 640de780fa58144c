//! HTTP-FLV: FLV header, metadata, sequence headers, the GOP, then live tags.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use media_core::flv;

use crate::http::AppState;
use crate::hub::{Frame, Protocol, Subscription};

/// The byte stream of one HTTP-FLV viewer: the file header, then each frame's FLV tag as
/// built once for every viewer. Everything queued since the last write goes out together.
struct FlvOut {
    sub: Subscription,
    header_sent: bool,
    batch: Vec<Frame>,
    ready: VecDeque<Bytes>,
}

impl FlvOut {
    async fn next(&mut self) -> Option<Bytes> {
        if !self.header_sent {
            self.header_sent = true;
            let (audio, video) = self.sub.tracks();
            return Some(Bytes::copy_from_slice(&flv::file_header(audio, video)));
        }
        if self.ready.is_empty() {
            if !self.sub.recv_batch(&mut self.batch).await {
                return None;
            }
            self.ready.extend(self.batch.drain(..).map(|f| f.flv_tag()));
        }
        self.ready.pop_front()
    }
}

/// `GET /{app}/{stream}.flv`.
pub fn play(state: &AppState, key: &str) -> Response {
    let Some(sub) = state.hub.subscribe(key, Protocol::HttpFlv) else {
        return (StatusCode::NOT_FOUND, "no such stream\n").into_response();
    };
    let bytes_out = state.metrics.http_bytes("http_flv");
    let out = FlvOut {
        sub,
        header_sent: false,
        batch: Vec::new(),
        ready: VecDeque::new(),
    };
    let stream = futures::stream::unfold(out, move |mut out| {
        let bytes_out = bytes_out.clone();
        async move {
            let chunk = out.next().await?;
            bytes_out.inc_by(chunk.len() as u64);
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
    r
}
