//! Drivers: what one arrival or virtual user does, one module per protocol.

mod flash_sale;
mod http;
mod play;
mod pool;
mod publish;
mod token;
mod ws;
mod ws_chat;

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use flash_sale::{FlashSaleSpec, SaleVia};
pub use http::HttpSpec;
pub use play::PlaySpec;
pub use publish::PublishSpec;
pub use token::Signer;
pub use ws_chat::WsChatSpec;

use crate::metrics::Metrics;

/// A `timeout_secs` setting as a duration: finite and above zero.
fn timeout(secs: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("timeout_secs must be a positive number, got {secs}"))
}

/// A driver as written in a scenario (`driver = { kind = "hls-play", url = "…" }`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DriverSpec {
    /// Publishes the built-in sample (or an FLV file) over RTMP in real time.
    RtmpPublish(PublishSpec),
    /// Plays HLS like a player, and low-latency HLS (a playlist with parts) as hls.js does:
    /// parts, blocking reloads, preload hints. `llhls-play` is another name for it.
    #[serde(alias = "llhls-play")]
    HlsPlay(PlaySpec),
    /// Plays HTTP-FLV like a player.
    FlvPlay(PlaySpec),
    /// Plays RTMP like a player.
    RtmpPlay(PlaySpec),
    /// Room members chatting over WebSocket.
    WsChat(WsChatSpec),
    /// Flash-sale buyers, one purchase each.
    FlashSale(FlashSaleSpec),
    /// HTTP requests, like wrk.
    Http(HttpSpec),
}

impl DriverSpec {
    /// The kind as written.
    pub fn kind(&self) -> &'static str {
        match self {
            DriverSpec::RtmpPublish(_) => "rtmp-publish",
            DriverSpec::HlsPlay(_) => "hls-play",
            DriverSpec::FlvPlay(_) => "flv-play",
            DriverSpec::RtmpPlay(_) => "rtmp-play",
            DriverSpec::WsChat(_) => "ws-chat",
            DriverSpec::FlashSale(_) => "flash-sale",
            DriverSpec::Http(_) => "http",
        }
    }

    /// The target URL (template).
    pub fn target(&self) -> &str {
        match self {
            DriverSpec::RtmpPublish(s) => &s.url,
            DriverSpec::HlsPlay(s) | DriverSpec::FlvPlay(s) | DriverSpec::RtmpPlay(s) => &s.url,
            DriverSpec::WsChat(s) => &s.url,
            DriverSpec::FlashSale(s) => &s.url,
            DriverSpec::Http(s) => &s.url,
        }
    }

    /// Checks the settings without connecting anywhere.
    pub fn check(&self) -> anyhow::Result<()> {
        match self {
            DriverSpec::RtmpPublish(s) => s.check(),
            DriverSpec::HlsPlay(s) => s.check(player_client::Protocol::Hls),
            DriverSpec::FlvPlay(s) => s.check(player_client::Protocol::HttpFlv),
            DriverSpec::RtmpPlay(s) => s.check(player_client::Protocol::Rtmp),
            DriverSpec::WsChat(s) => s.check(),
            DriverSpec::FlashSale(s) => s.check(),
            DriverSpec::Http(s) => s.check(),
        }
    }

    /// The operation thresholds like `p99` refer to.
    pub fn primary(&self) -> &'static str {
        match self {
            DriverSpec::RtmpPublish(_) => "connect",
            DriverSpec::HlsPlay(_) | DriverSpec::FlvPlay(_) | DriverSpec::RtmpPlay(_) => "startup",
            DriverSpec::WsChat(_) => "deliver",
            DriverSpec::FlashSale(_) => "purchase",
            DriverSpec::Http(_) => "request",
        }
    }

    /// Whether one iteration is a session lasting until the workload ends.
    pub fn is_session(&self) -> bool {
        !matches!(self, DriverSpec::FlashSale(_) | DriverSpec::Http(_))
    }
}

/// What one iteration knows.
pub struct Ctx<'a> {
    /// Name of the workload, for logs.
    pub workload: &'a str,
    /// Global arrival or user index.
    pub index: u64,
    /// When the iteration was meant to start; latency is measured from here.
    pub intended: Instant,
    /// The pulse the arrival belongs to.
    pub pulse: Option<u32>,
    /// When the workload ends; sessions run until then.
    pub end: Instant,
    /// Fires when in-flight work must stop (end plus grace).
    pub stop: &'a CancellationToken,
    /// Where to record.
    pub metrics: &'a Metrics,
    /// Whether [`Ctx::go`] ran.
    pub started: AtomicBool,
}

impl Ctx<'_> {
    /// Waits for the intended start and records the actual one. Drivers call it once, after
    /// whatever preparation a real client would have done before the moment of truth.
    pub async fn go(&self) {
        if self.intended > Instant::now() {
            tokio::time::sleep_until(self.intended.into()).await;
        }
        if !self.started.swap(true, Relaxed) {
            self.metrics
                .started(self.intended, Instant::now(), self.pulse);
        }
    }

    /// Runs a real client's preparation (connecting, say) and starts the iteration. An arrival
    /// that is not yet due prepares first and then waits for its instant; one already due
    /// starts first, so a slow connect (a server's full accept queue, a SYN retransmitted)
    /// counts in its latency and never as the generator's start lag.
    pub async fn prepared<T>(&self, prepare: impl Future<Output = T>) -> T {
        if self.intended > Instant::now() {
            let out = prepare.await;
            self.go().await;
            out
        } else {
            self.go().await;
            prepare.await
        }
    }
}

/// A driver ready to run iterations.
pub enum Driver {
    /// See [`DriverSpec::RtmpPublish`].
    Publish(publish::Publisher),
    /// See [`DriverSpec::HlsPlay`] and friends.
    Play(play::Player),
    /// See [`DriverSpec::WsChat`].
    WsChat(ws_chat::Chat),
    /// See [`DriverSpec::FlashSale`].
    FlashSale(flash_sale::Buyer),
    /// See [`DriverSpec::Http`].
    Http(http::Requester),
}

impl Driver {
    /// Prepares a driver; `first_shard` runs one-time setup such as creating a sale.
    pub async fn new(spec: &DriverSpec, first_shard: bool) -> anyhow::Result<Self> {
        Ok(match spec {
            DriverSpec::RtmpPublish(s) => Driver::Publish(publish::Publisher::new(s)?),
            DriverSpec::HlsPlay(s) | DriverSpec::FlvPlay(s) | DriverSpec::RtmpPlay(s) => {
                Driver::Play(play::Player::new(s))
            }
            DriverSpec::WsChat(s) => Driver::WsChat(ws_chat::Chat::new(s)?),
            DriverSpec::FlashSale(s) => {
                Driver::FlashSale(flash_sale::Buyer::new(s, first_shard).await?)
            }
            DriverSpec::Http(s) => Driver::Http(http::Requester::new(s)?),
        })
    }

    /// Runs one iteration; its start is recorded even if the driver ended before [`Ctx::go`],
    /// and a panic in it ends only this iteration (see [`contain`]).
    pub async fn iterate(&self, ctx: &Ctx<'_>) {
        contain(ctx, self.dispatch(ctx)).await;
        if !ctx.started.load(Relaxed) {
            ctx.go().await;
        }
    }

    /// Each driver's future is boxed: an unboxed match would make every user's task as large
    /// as the largest driver's state (a player session), multiplying idle memory.
    async fn dispatch(&self, ctx: &Ctx<'_>) {
        match self {
            Driver::Publish(d) => Box::pin(d.iterate(ctx)).await,
            Driver::Play(d) => Box::pin(d.iterate(ctx)).await,
            Driver::WsChat(d) => Box::pin(d.iterate(ctx)).await,
            Driver::FlashSale(d) => Box::pin(d.iterate(ctx)).await,
            Driver::Http(d) => Box::pin(d.iterate(ctx)).await,
        }
    }
}

/// Runs `iteration` so that a panic in it ends only it, not the user's task: the panic counts as
/// a `panic` error of the workload, and the workload's first one is logged with its message
/// (what makes one user panic usually makes every user panic).
pub(crate) async fn contain(ctx: &Ctx<'_>, iteration: impl Future<Output = ()>) {
    let Err(payload) = AssertUnwindSafe(iteration).catch_unwind().await else {
        return;
    };
    if ctx.metrics.panicked() {
        tracing::error!(
            workload = ctx.workload,
            index = ctx.index,
            "an iteration panicked: {}; later panics of this workload are counted, not logged",
            panic_message(&*payload)
        );
    }
}

/// The message a panic was raised with.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_iteration_is_counted_and_the_next_one_runs() {
        let metrics = Metrics::new(Instant::now());
        let stop = CancellationToken::new();
        let ctx = Ctx {
            workload: "viewers",
            index: 7,
            intended: Instant::now(),
            pulse: None,
            end: Instant::now(),
            stop: &stop,
            metrics: &metrics,
            started: Default::default(),
        };
        // Unwinding as a panic does, without the panic hook's report on stderr.
        let panic = |payload: Box<dyn Any + Send>| async { std::panic::resume_unwind(payload) };
        contain(&ctx, panic(Box::new("a bug"))).await;
        contain(&ctx, panic(Box::new(format!("a bug in viewer {}", 7)))).await;
        contain(&ctx, async { ctx.metrics.outcome("played") }).await;
        let recorded = metrics.finish();
        assert_eq!(recorded.errors.get("panic"), Some(&2));
        assert_eq!(recorded.outcomes.get("played"), Some(&1));
        assert_eq!(recorded.seconds[0].errors, 2);
    }

    #[test]
    fn panic_messages_are_kept() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("formatted")), "formatted");
        assert_eq!(panic_message(&42u8), "(no message)");
    }
}
