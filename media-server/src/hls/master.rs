//! `GET /{app}/{stream}/master.m3u8`: the source and its live renditions as HLS variants.

use std::fmt::Write;

use axum::response::Response;

use super::routes::{first_segment, media, not_found, PLAYLIST_TYPE};
use crate::http::AppState;

/// One `EXT-X-STREAM-INF` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Media playlist URI, relative to the master playlist.
    pub uri: String,
    /// Peak segment bitrate in bit/s.
    pub bandwidth: u64,
    /// Average segment bitrate in bit/s.
    pub average_bandwidth: u64,
    /// Coded picture size.
    pub resolution: Option<(u32, u32)>,
    /// Video frames per second.
    pub frame_rate: Option<f64>,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: Option<String>,
}

/// Renders a master playlist listing `variants` in order.
pub fn render_master(variants: &[Variant]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
            v.bandwidth.max(1),
            v.average_bandwidth.max(1)
        );
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(fps) = v.frame_rate.filter(|f| *f > 0.0) {
            let _ = write!(out, ",FRAME-RATE={fps:.3}");
        }
        if let Some(codecs) = &v.codecs {
            let _ = write!(out, ",CODECS=\"{codecs}\"");
        }
        let _ = writeln!(out, "\n{}", v.uri);
    }
    out
}

/// Describes stream `key` as a variant, if it is known to the hub. `fallback_bps` stands in
/// for the bitrate until the stream has segments and a measured rate.
pub(crate) fn variant(
    state: &AppState,
    key: &str,
    uri: String,
    fallback_bps: u64,
) -> Option<Variant> {
    let stream = state.hub.get(key)?;
    let info = stream.info();
    let (measured_fps, measured_bps) = stream.input_rate();
    let frame_rate = stream
        .metadata()
        .and_then(|m| m.video_frame_rate)
        .map(f64::from)
        .filter(|f| *f > 0.0)
        .or((measured_fps > 0.0).then_some(measured_fps));
    let (bandwidth, average_bandwidth) = state
        .hls
        .get(key)
        .and_then(|h| h.read().bandwidth())
        .unwrap_or_else(|| {
            let bps = if measured_bps > 0.0 {
                measured_bps as u64
            } else {
                fallback_bps
            };
            (bps, bps)
        });
    let codecs: Vec<String> = [info.video_codec.clone(), info.audio_codec.clone()]
        .into_iter()
        .flatten()
        .collect();
    Some(Variant {
        uri,
        bandwidth,
        average_bandwidth,
        resolution: info.width.zip(info.height),
        frame_rate,
        codecs: (!codecs.is_empty()).then(|| codecs.join(",")),
    })
}

/// `GET /{app}/{stream}/master.m3u8`: the source first, then every live rendition of the
/// app's ladder. Waits briefly for the source's first segment, like the media playlist.
pub async fn master_playlist(state: &AppState, app: &str, stream: &str) -> Response {
    let key = format!("{app}/{stream}");
    let Some(hls) = state.hls.get(&key) else {
        return not_found();
    };
    let (empty, mut watch) = {
        let s = hls.read();
        (s.playlist_text().is_empty(), s.watch())
    };
    if empty && !first_segment(state, &mut watch).await {
        return not_found();
    }
    let Some(source) = variant(state, &key, format!("../{stream}.m3u8"), 0) else {
        return not_found();
    };
    let mut variants = vec![source];
    for r in state.transcode.ladder(app) {
        let rkey = format!("{key}_{}", r.name);
        let live = state
            .hub
            .get(&rkey)
            .is_some_and(|s| s.is_live() && s.info().video_codec.is_some());
        if !live || state.hls.get(&rkey).is_none() {
            continue;
        }
        let uri = format!("../{stream}_{}.m3u8", r.name);
        variants.extend(variant(state, &rkey, uri, u64::from(r.video_kbps) * 1000));
    }
    let text = render_master(&variants);
    state.metrics.add_http_bytes("hls", text.len());
    media(text, PLAYLIST_TYPE, "public, max-age=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_attribute() {
        let text = render_master(&[
            Variant {
                uri: "../s.m3u8".into(),
                bandwidth: 3_100_000,
                average_bandwidth: 2_900_000,
                resolution: Some((1280, 720)),
                frame_rate: Some(30.0),
                codecs: Some("avc1.64001f,mp4a.40.2".into()),
            },
            Variant {
                uri: "../s_360p.m3u8".into(),
                bandwidth: 700_000,
                average_bandwidth: 650_000,
                resolution: None,
                frame_rate: None,
                codecs: None,
            },
        ]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3100000,AVERAGE-BANDWIDTH=2900000,RESOLUTION=1280x720,\
             FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"\n../s.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=700000,AVERAGE-BANDWIDTH=650000\n../s_360p.m3u8\n"
        );
    }
}
