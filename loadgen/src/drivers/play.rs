//! `hls-play` (also named `llhls-play`), `flv-play`, `rtmp-play`: one viewer per user with the player
//! library's QoE metrics (startup, stalls, end-to-end latency from SEI stamps, live latency and
//! the join burst before catching up with the live edge, bytes; for LL-HLS, playlist and part
//! requests).

use std::time::{Duration, Instant};

use player_client::{PlayOptions, Progress, Protocol, Summary};
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::histogram;
use crate::template::expand;

/// Settings of the player drivers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlaySpec {
    /// Stream URL; `{n}` and `{n%K}` expand per viewer.
    pub url: String,
    /// Media buffered before playback starts, ms.
    #[serde(default = "half_second")]
    pub startup_buffer_ms: u64,
    /// Media buffered before playback resumes after a stall, ms.
    #[serde(default = "half_second")]
    pub rebuffer_ms: u64,
    /// Share of viewers (0 to 1, spread evenly over viewer indexes) that read the SEI stamps
    /// for latency; the others count bytes, frames, startup and stalls only, which is cheaper.
    #[serde(default = "all")]
    pub qoe_sample: f64,
}

fn half_second() -> u64 {
    500
}

fn all() -> f64 {
    1.0
}

/// True when viewer `index` is in a sample of `share` of all viewers, spread evenly: the
/// viewers where the running count `index * share` passes a whole number.
fn sampled(index: u64, share: f64) -> bool {
    let share = share.clamp(0.0, 1.0);
    (index as f64 * share).floor() != ((index + 1) as f64 * share).floor() || share >= 1.0
}

impl PlaySpec {
    /// Checks that the URL matches the driver's protocol and the sample is a share. Either HLS
    /// driver takes any `.m3u8` URL: the player plays LL-HLS wherever the playlist has parts.
    pub fn check(&self, want: Protocol) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.qoe_sample),
            "qoe_sample must be between 0 and 1, got {}",
            self.qoe_sample
        );
        let url = expand(&self.url, 0);
        let got = player_client::protocol_of(&url);
        let same = matches!(
            (want, got),
            (
                Protocol::Hls | Protocol::LlHls,
                Some(Protocol::Hls | Protocol::LlHls)
            )
        ) || got == Some(want);
        anyhow::ensure!(
            same,
            "{url:?} is not a {} URL",
            match want {
                Protocol::Hls | Protocol::LlHls => "HLS (http://….m3u8)",
                Protocol::HttpFlv => "HTTP-FLV (http://….flv)",
                Protocol::Rtmp => "RTMP (rtmp://…)",
            }
        );
        Ok(())
    }
}

/// A ready player driver.
pub struct Player {
    spec: PlaySpec,
    http: reqwest::Client,
}

impl Player {
    /// Prepares one HTTP client shared by all viewers.
    pub fn new(spec: &PlaySpec) -> Self {
        Self {
            spec: spec.clone(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(usize::MAX)
                .build()
                .unwrap_or_default(),
        }
    }

    /// One viewing session until the workload ends.
    pub async fn iterate(&self, ctx: &Ctx<'_>) {
        ctx.go().await;
        let now = Instant::now();
        if now >= ctx.end {
            return;
        }
        let options = PlayOptions {
            duration: Some(ctx.end - now),
            startup_buffer: Duration::from_millis(self.spec.startup_buffer_ms),
            rebuffer: Duration::from_millis(self.spec.rebuffer_ms),
            http_client: Some(self.http.clone()),
            latency: sampled(ctx.index, self.spec.qoe_sample),
            ..PlayOptions::default()
        };
        let url = expand(&self.spec.url, ctx.index);
        let mut last = Instant::now();
        let mut progress = |p: &Progress| {
            let now = Instant::now();
            let secs = now.duration_since(last).as_secs_f64();
            last = now;
            ctx.metrics.bytes((p.bitrate_kbps * 125.0 * secs) as u64);
            if let Some(ms) = p.latency_ms {
                ctx.metrics.sample_second("latency", millis(ms), now);
            }
            if let Some(ms) = p.live_latency_ms {
                ctx.metrics.sample_second("live_latency", millis(ms), now);
            }
        };
        let summary = match player_client::play(&url, &options, ctx.stop, &mut progress).await {
            Ok(s) => s,
            Err(e) => {
                ctx.metrics.error(e.kind.code());
                *e.summary
            }
        };
        self.record(ctx, now, &summary);
    }

    fn record(&self, ctx: &Ctx<'_>, started: Instant, s: &Summary) {
        let m = ctx.metrics;
        match s.startup_ms {
            Some(ms) => {
                let startup = millis(ms);
                m.record_at("startup", startup, started + startup);
            }
            None => m.error("no_startup"),
        }
        for (kind, n) in &s.errors {
            m.errors(kind, *n);
        }
        m.merge_op("latency", &histogram::from_u32(&s.latency_histogram));
        if !s.live_latency_histogram.is_empty() {
            m.merge_op(
                "live_latency",
                &histogram::from_u32(&s.live_latency_histogram),
            );
        }
        for join in &s.joins {
            let caught_up = started + millis(join.caught_up_secs * 1000.0);
            m.record_at("catch_up", millis(join.catch_up_ms), caught_up);
        }
        let viewing_ms = s.played_secs * 1000.0 + s.stall_ms;
        m.media(|t| {
            t.sessions += 1;
            t.startup_failures += u64::from(s.startup_ms.is_none());
            t.stalls += s.stalls;
            t.stall_ms += s.stall_ms;
            t.viewing_ms += viewing_ms;
            t.reconnects += s.reconnects;
            t.dts_backwards += s.dts_backwards.total();
            t.latency_samples += s.latency.samples;
            t.live_latency_samples += s.live_latency.samples;
            t.joins_caught_up += s.joins.len() as u64;
            t.join_burst_frames += s.joins.iter().map(|j| j.burst_frames).sum::<u64>();
            t.never_caught_up += u64::from(s.latency.samples > 0 && s.joins.is_empty());
            if let Some(r) = &s.llhls {
                t.llhls_sessions += 1;
                t.playlist_requests += r.playlists;
                t.blocking_playlist_requests += r.blocking_playlists;
                t.part_requests += r.parts;
                t.hinted_part_requests += r.hinted_parts;
            }
        });
    }
}

/// A duration from milliseconds; zero for a value that is not one (negative, not finite).
fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_spread_evenly() {
        let picked: Vec<u64> = (0..100).filter(|&i| sampled(i, 0.05)).collect();
        assert_eq!(picked, [19, 39, 59, 79, 99]);
        assert!((0..10).all(|i| sampled(i, 1.0)));
        assert!((0..10).all(|i| !sampled(i, 0.0)));
        assert_eq!((0..1000).filter(|&i| sampled(i, 0.25)).count(), 250);
    }

    #[test]
    fn milliseconds_that_are_not_a_duration_are_zero() {
        assert_eq!(millis(1500.0), Duration::from_millis(1500));
        for ms in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert_eq!(millis(ms), Duration::ZERO, "{ms}");
        }
    }
}
