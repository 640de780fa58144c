//! RTMP listener: one task per connection, ingest and play.

mod session;
mod writev;

use std::sync::Arc;

use net_guard::{Admission, DeadlineIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::RtmpLimits;
use crate::hook::PublishHook;
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Chunk size of everything the origin sends over RTMP (nginx-rtmp's default), so every play
/// session can take each frame's shared wire form.
pub const CHUNK_SIZE: u32 = 4096;

/// What every RTMP connection shares.
#[derive(Clone)]
pub struct Context {
    /// The stream hub.
    pub hub: Hub,
    /// Protocol limits.
    pub limits: RtmpLimits,
    /// Optional publish authorization hook.
    pub hook: Option<PublishHook>,
    /// Which apps need signed URLs.
    pub auth: Arc<media_core::token::Policy>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Time without media after which a publisher is dropped.
    pub publisher_timeout: std::time::Duration,
}

/// Accepts RTMP connections until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    ctx: Context,
    admission: Arc<Admission>,
    shutdown: CancellationToken,
) {
    let idle = admission.limits().idle_timeout();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("rtmp accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match admission.admit(peer.ip()) {
            Ok(p) => p,
            Err(refusal) => {
                tracing::debug!(%peer, "rtmp connection refused: {refusal}");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let socket = DeadlineIo::new(socket, idle, Some(permit.stats().clone()));
        ctx.metrics.rtmp_connections.inc();
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let permit = permit;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                r = session::run(socket, peer, ctx.clone()) => {
                    if let Err(e) = r {
                        if matches!(e, session::SessionError::HandshakeTimeout) {
                            permit.stats().count_timeout();
                        }
                        ctx.metrics.rtmp_errors.inc();
                        tracing::info!(%peer, "rtmp connection closed: {e}");
                    }
                }
            }
        });
    }
}
