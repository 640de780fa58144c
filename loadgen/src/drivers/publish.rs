//! `rtmp-publish`: N streams published in real time, each stamped with wall-clock SEI so
//! players downstream can measure end-to-end latency.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use push_client::{FlvLoop, PublishOptions, PublishState, PublishStats, RtmpUrl};
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::template::expand;

/// Settings of the `rtmp-publish` driver.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublishSpec {
    /// `rtmp://host/app/stream`; `{n}` expands per publisher (`live/load{n}`).
    pub url: String,
    /// FLV file to loop instead of the built-in sample.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Stamp wall-clock time into every video frame.
    #[serde(default = "yes")]
    pub stamp: bool,
}

fn yes() -> bool {
    true
}

impl PublishSpec {
    /// Checks the URL.
    pub fn check(&self) -> anyhow::Result<()> {
        RtmpUrl::parse(&expand(&self.url, 0))?;
        Ok(())
    }
}

/// A ready publisher driver: the media is parsed once and shared by every stream.
pub struct Publisher {
    url: String,
    source: FlvLoop,
    options: PublishOptions,
}

impl Publisher {
    /// Loads the media.
    pub fn new(spec: &PublishSpec) -> anyhow::Result<Self> {
        let source = match &spec.file {
            Some(path) => FlvLoop::from_bytes(
                &std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
            )?,
            None => FlvLoop::sample()?,
        };
        Ok(Self {
            url: spec.url.clone(),
            source,
            options: PublishOptions { stamp: spec.stamp },
        })
    }

    /// One publishing session until the workload ends.
    pub async fn iterate(&self, ctx: &Ctx<'_>) {
        ctx.go().await;
        let url = match RtmpUrl::parse(&expand(&self.url, ctx.index)) {
            Ok(u) => u,
            Err(_) => return ctx.metrics.error("bad_url"),
        };
        let mut source = self.source.clone();
        let stats = PublishStats::default();
        let stop = ctx.stop.child_token();
        let publish = push_client::publish(&url, &mut source, &self.options, &stop, &stats);
        tokio::pin!(publish);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut connected = false;
        let mut sent = 0u64;
        let result = loop {
            tokio::select! {
                r = &mut publish => break r,
                _ = tokio::time::sleep_until(ctx.end.into()), if !stop.is_cancelled() => stop.cancel(),
                _ = tick.tick() => {
                    let snap = stats.snapshot();
                    if !connected && snap.state == PublishState::Publishing {
                        connected = true;
                        ctx.metrics.record("connect", Instant::now().saturating_duration_since(ctx.intended));
                    }
                    ctx.metrics.bytes(snap.bytes - sent);
                    sent = snap.bytes;
                }
            }
        };
        ctx.metrics.bytes(stats.snapshot().bytes - sent);
        if let Err(e) = result {
            if !stop.is_cancelled() {
                ctx.metrics.error(classify(&e.to_string()));
            }
        } else if !stop.is_cancelled() {
            ctx.metrics.error("ended");
        }
    }
}

/// An error kind for a publish failure message.
fn classify(message: &str) -> &'static str {
    if message.contains("connecting") || message.contains("refused (os error") {
        "connect"
    } else if message.contains("handshake") {
        "handshake"
    } else if message.contains("refused") || message.contains("answered") {
        "rejected"
    } else if message.contains("timed out") {
        "timeout"
    } else if message.contains("closed") {
        "closed"
    } else {
        "publish"
    }
}
