//! Origin counters and gauges, exposed in Prometheus text format.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label for per-protocol series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    /// `http_flv`, `rtmp` or `hls`.
    pub protocol: &'static str,
}

/// Label for per-rendition series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RenditionLabel {
    /// Rendition name from the ladder, e.g. `720p`.
    pub rendition: String,
}

/// Label for the outcomes of held LL-HLS requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `answered`, `timed_out`, `refused` or `bad_request`.
    pub outcome: &'static str,
}

/// Every origin metric.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// RTMP connections accepted.
    pub rtmp_connections: Counter,
    /// RTMP connections closed on a protocol or I/O error.
    pub rtmp_errors: Counter,
    /// Bytes read from RTMP peers.
    pub rtmp_bytes_in: Counter,
    /// Bytes written to RTMP players.
    pub rtmp_bytes_out: Counter,
    /// Frames a play session encoded for itself because it could not take the shared form.
    pub rtmp_wire_fallbacks: Counter,
    /// Publishes accepted.
    pub publish_accepted: Counter,
    /// Publishes refused (busy key, hook, bad name, token).
    pub publish_refused: Counter,
    /// Plays refused for a missing, expired or wrong token.
    pub play_refused: Counter,
    /// Media frames received.
    pub frames_in: Counter,
    /// Media payload bytes received.
    pub media_bytes_in: Counter,
    /// Frames skipped for viewers that fell behind.
    pub viewer_frames_dropped: Counter,
    /// HLS segments produced.
    pub hls_segments: Counter,
    /// HLS segments cut without a keyframe: the stream's keyframes are too far apart.
    pub hls_forced_cuts: Counter,
    /// LL-HLS parts produced.
    pub llhls_parts: Counter,
    /// LL-HLS segments started without a keyframe: the stream's keyframes are too far apart.
    pub llhls_forced_cuts: Counter,
    /// LL-HLS requests held now, waiting for a part.
    pub llhls_held_requests: Gauge,
    /// LL-HLS part requests answered while the part was being filled, chunk by chunk.
    pub llhls_part_streams: Counter,
    /// LL-HLS blocking requests by outcome: `answered` after a hold, `timed_out` (503),
    /// `refused` by the per-address cap (429), `bad_request` (400).
    pub llhls_held_outcomes: Family<OutcomeLabel, Counter>,
    /// Bytes served over HTTP, by protocol.
    pub http_bytes_out: Family<ProtocolLabel, Counter>,
    /// Streams known to the hub.
    pub streams: Gauge,
    /// Current viewers, by protocol.
    pub viewers: Family<ProtocolLabel, Gauge>,
    /// Renditions being encoded now.
    pub transcode_renditions: Gauge,
    /// Video frames encoded into renditions.
    pub transcode_frames_encoded: Counter,
    /// Renditions stopped because their stream's transcoder fell behind real time.
    pub transcode_renditions_dropped: Family<RenditionLabel, Counter>,
    /// Sources the transcoder could not decode, served without renditions.
    pub transcode_passthrough: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("livepulse_origin");
        let m = Self {
            registry: Registry::default(),
            rtmp_connections: Counter::default(),
            rtmp_errors: Counter::default(),
            rtmp_bytes_in: Counter::default(),
            rtmp_bytes_out: Counter::default(),
            rtmp_wire_fallbacks: Counter::default(),
            publish_accepted: Counter::default(),
            publish_refused: Counter::default(),
            play_refused: Counter::default(),
            frames_in: Counter::default(),
            media_bytes_in: Counter::default(),
            viewer_frames_dropped: Counter::default(),
            hls_segments: Counter::default(),
            hls_forced_cuts: Counter::default(),
            llhls_parts: Counter::default(),
            llhls_forced_cuts: Counter::default(),
            llhls_held_requests: Gauge::default(),
            llhls_part_streams: Counter::default(),
            llhls_held_outcomes: Family::default(),
            http_bytes_out: Family::default(),
            streams: Gauge::default(),
            viewers: Family::default(),
            transcode_renditions: Gauge::default(),
            transcode_frames_encoded: Counter::default(),
            transcode_renditions_dropped: Family::default(),
            transcode_passthrough: Counter::default(),
        };
        let r = &mut registry;
        r.register(
            "rtmp_connections",
            "RTMP connections accepted",
            m.rtmp_connections.clone(),
        );
        r.register(
            "rtmp_errors",
            "RTMP connections closed on error",
            m.rtmp_errors.clone(),
        );
        r.register(
            "rtmp_bytes_in",
            "Bytes read from RTMP peers",
            m.rtmp_bytes_in.clone(),
        );
        r.register(
            "rtmp_bytes_out",
            "Bytes written to RTMP players",
            m.rtmp_bytes_out.clone(),
        );
        r.register(
            "rtmp_wire_fallbacks",
            "Frames a play session encoded for itself instead of sharing the prepared form",
            m.rtmp_wire_fallbacks.clone(),
        );
        r.register(
            "publish_accepted",
            "Publishes accepted",
            m.publish_accepted.clone(),
        );
        r.register(
            "publish_refused",
            "Publishes refused",
            m.publish_refused.clone(),
        );
        r.register(
            "play_refused",
            "Plays refused for a missing, expired or wrong token",
            m.play_refused.clone(),
        );
        r.register("frames_in", "Media frames received", m.frames_in.clone());
        r.register(
            "media_bytes_in",
            "Media payload bytes received",
            m.media_bytes_in.clone(),
        );
        r.register(
            "viewer_frames_dropped",
            "Frames skipped for viewers that fell behind",
            m.viewer_frames_dropped.clone(),
        );
        r.register(
            "hls_segments",
            "HLS segments produced",
            m.hls_segments.clone(),
        );
        r.register(
            "hls_forced_cuts",
            "HLS segments cut without a keyframe because the keyframe interval is too long",
            m.hls_forced_cuts.clone(),
        );
        r.register(
            "llhls_parts",
            "LL-HLS parts produced",
            m.llhls_parts.clone(),
        );
        r.register(
            "llhls_forced_cuts",
            "LL-HLS segments started without a keyframe because the keyframe interval is too long",
            m.llhls_forced_cuts.clone(),
        );
        r.register(
            "llhls_held_requests",
            "LL-HLS requests held now, waiting for a part",
            m.llhls_held_requests.clone(),
        );
        r.register(
            "llhls_part_streams",
            "LL-HLS part requests answered while the part was being filled, chunk by chunk",
            m.llhls_part_streams.clone(),
        );
        r.register(
            "llhls_held_outcomes",
            "LL-HLS blocking requests by outcome",
            m.llhls_held_outcomes.clone(),
        );
        r.register(
            "http_bytes_out",
            "Bytes served over HTTP",
            m.http_bytes_out.clone(),
        );
        r.register("streams", "Streams known to the hub", m.streams.clone());
        r.register("viewers", "Current viewers", m.viewers.clone());
        r.register(
            "transcode_renditions",
            "Renditions being encoded",
            m.transcode_renditions.clone(),
        );
        r.register(
            "transcode_frames_encoded",
            "Video frames encoded into renditions",
            m.transcode_frames_encoded.clone(),
        );
        r.register(
            "transcode_renditions_dropped",
            "Renditions stopped because the transcoder fell behind real time",
            m.transcode_renditions_dropped.clone(),
        );
        r.register(
            "transcode_passthrough",
            "Sources the transcoder could not decode, served without renditions",
            m.transcode_passthrough.clone(),
        );
        Self { registry, ..m }
    }
}

impl Metrics {
    /// Sets the current viewer count for a protocol.
    pub fn set_viewers(&self, protocol: &'static str, n: usize) {
        self.viewers
            .get_or_create(&ProtocolLabel { protocol })
            .set(n as i64);
    }

    /// Adds HTTP egress bytes for a protocol.
    pub fn add_http_bytes(&self, protocol: &'static str, n: usize) {
        self.http_bytes(protocol).inc_by(n as u64);
    }

    /// The HTTP egress counter of a protocol, to count on without a lookup each time.
    pub fn http_bytes(&self, protocol: &'static str) -> Counter {
        self.http_bytes_out
            .get_or_create(&ProtocolLabel { protocol })
            .clone()
    }

    /// Counts one outcome of an LL-HLS blocking request.
    pub fn held_outcome(&self, outcome: &'static str) {
        self.llhls_held_outcomes
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Counts a rendition dropped for falling behind real time.
    pub fn rendition_dropped(&self, rendition: &str) {
        self.transcode_renditions_dropped
            .get_or_create(&RenditionLabel {
                rendition: rendition.to_string(),
            })
            .inc();
    }

    /// Adds a listener's connection counters, labelled `listener="{name}"`.
    pub fn register_listener(&mut self, name: &str, stats: &net_guard::Stats) {
        let sub = self
            .registry
            .sub_registry_with_label(("listener".into(), name.to_string().into()));
        stats.register(sub);
    }

    /// Renders every metric in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
