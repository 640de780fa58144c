//! Edge counters, exposed in Prometheus text format.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Every edge metric.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Client requests for cached paths.
    pub requests: Counter,
    /// Requests served from a fresh cached object.
    pub hits: Counter,
    /// Requests that started a back-origin fetch.
    pub misses: Counter,
    /// Requests that waited on a fetch started by another request.
    pub coalesced: Counter,
    /// Requests sent to origins (failover attempts count separately).
    pub back_origin_requests: Counter,
    /// Body bytes received from origins.
    pub back_origin_bytes: Counter,
    /// Body bytes sent to clients.
    pub egress_bytes: Counter,
    /// Requests refused for a missing, expired or wrong play token.
    pub play_refused: Counter,
    /// LL-HLS blocking playlist requests held at the origin right now.
    pub held_upstream: Gauge,
    /// LL-HLS blocking playlist requests that waited on a held request another viewer started.
    pub held_coalesced: Counter,
    /// LL-HLS blocking playlist requests answered 503 because too many were held already.
    pub held_refused: Counter,
    /// Playlist requests refused (400) for malformed `_HLS_msn`, `_HLS_part` or `_HLS_skip`.
    pub bad_directives: Counter,
    /// Egress bytes per back-origin byte.
    pub fanout_ratio: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("livepulse_edge");
        let m = Self {
            registry: Registry::default(),
            requests: Counter::default(),
            hits: Counter::default(),
            misses: Counter::default(),
            coalesced: Counter::default(),
            back_origin_requests: Counter::default(),
            back_origin_bytes: Counter::default(),
            egress_bytes: Counter::default(),
            fanout_ratio: Gauge::default(),
            play_refused: Counter::default(),
            held_upstream: Gauge::default(),
            held_coalesced: Counter::default(),
            held_refused: Counter::default(),
            bad_directives: Counter::default(),
        };
        let r = &mut registry;
        r.register("requests", "Client requests", m.requests.clone());
        r.register("hits", "Requests served from cache", m.hits.clone());
        r.register(
            "misses",
            "Requests that fetched from origin",
            m.misses.clone(),
        );
        r.register(
            "coalesced",
            "Requests that waited on another request's fetch",
            m.coalesced.clone(),
        );
        r.register(
            "back_origin_requests",
            "Requests sent to origins",
            m.back_origin_requests.clone(),
        );
        r.register(
            "back_origin_bytes",
            "Body bytes received from origins",
            m.back_origin_bytes.clone(),
        );
        r.register(
            "egress_bytes",
            "Body bytes sent to clients",
            m.egress_bytes.clone(),
        );
        r.register(
            "play_refused",
            "Requests refused for a missing, expired or wrong play token",
            m.play_refused.clone(),
        );
        r.register(
            "llhls_held_upstream",
            "LL-HLS requests (blocking playlists and parts) held at the origin",
            m.held_upstream.clone(),
        );
        r.register(
            "llhls_held_coalesced",
            "LL-HLS held requests that waited on another viewer's held request",
            m.held_coalesced.clone(),
        );
        r.register(
            "llhls_held_refused",
            "LL-HLS held requests refused because too many were held",
            m.held_refused.clone(),
        );
        r.register(
            "llhls_bad_directives",
            "Playlist requests refused for malformed LL-HLS delivery directives",
            m.bad_directives.clone(),
        );
        r.register(
            "fanout_ratio",
            "Egress bytes per back-origin byte",
            m.fanout_ratio.clone(),
        );
        Self { registry, ..m }
    }
}

impl Metrics {
    /// Adds the listener's connection counters, labelled `listener="http"`.
    pub fn register_listener(&mut self, stats: &net_guard::Stats) {
        let sub = self
            .registry
            .sub_registry_with_label(("listener".into(), "http".into()));
        stats.register(sub);
    }

    /// Renders every metric in Prometheus text format.
    pub fn render(&self) -> String {
        let back = self.back_origin_bytes.get();
        if back > 0 {
            self.fanout_ratio
                .set(self.egress_bytes.get() as f64 / back as f64);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
