//! Binding, shared state and shutdown.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::TokenSigner;
use crate::config::{Config, GeneratedSecret};
use crate::limit::UserRates;
use crate::metrics::Metrics;
use crate::pending::PendingLimits;
use crate::room::{RoomHub, Timing};
use crate::store::{self, Store};

/// How long idle per-user rate buckets are kept, and the period of sweeps.
const RATE_IDLE: Duration = Duration::from_secs(60);
/// How long shutdown waits for members and the HTTP server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Unix time in seconds.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// Everything request handlers share.
pub struct AppState {
    /// Settings.
    pub config: Config,
    /// Local rooms.
    pub hub: Arc<RoomHub>,
    /// Shared state backend.
    pub store: Arc<dyn Store>,
    /// Token signer.
    pub signer: TokenSigner,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Chat rate per user.
    pub chat_rates: UserRates,
    /// WebSocket members per client IP (`max_conns_per_ip`).
    pub ips: Arc<net_guard::Admission>,
    /// Room task timing.
    pub timing: Timing,
}

/// Entry point: `Server::bind(config).await` starts a server.
pub struct Server;

/// A started server.
pub struct Running {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: CancellationToken,
    serve: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    generated: Vec<GeneratedSecret>,
}

impl Server {
    /// Binds `config.listen`, opens the store and starts serving HTTP and WebSocket.
    /// Missing secrets are generated (see [`Running::generated_secrets`]); invalid
    /// settings, including the demo secrets outside demo mode, are refused.
    pub async fn bind(mut config: Config) -> anyhow::Result<Running> {
        config.validate()?;
        let generated = config.generate_missing_secrets();
        if config.redis.is_some() && generated.iter().any(|g| g.flag == "--token-secret") {
            tracing::warn!("token secret generated for a shared Redis: instances sharing rooms must be given the same --token-secret");
        }
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let admission = net_guard::Admission::new(config.listener.clone());
        let metrics = Arc::new(Metrics::new(admission.stats().clone()));
        let pending = PendingLimits {
            max_events: config.room_pending_events,
            max_bytes: config.room_pending_bytes,
        };
        let hub = Arc::new(RoomHub::new(config.send_queue, pending, metrics.clone()));
        let store = store::open(&config, hub.clone(), metrics.clone()).await?;
        let state = Arc::new(AppState {
            signer: TokenSigner::new(config.token_secret.as_bytes()),
            chat_rates: UserRates::new(config.chat_per_sec, config.chat_burst),
            ips: net_guard::Admission::new(net_guard::Limits {
                max_connections: usize::MAX,
                max_connections_per_ip: config.max_conns_per_ip as usize,
                ..config.listener.clone()
            }),
            timing: Timing {
                batch: Duration::from_millis(config.batch_ms),
                stats: Duration::from_millis(config.stats_interval_ms),
                max_lag: config.max_lag_batches,
            },
            config,
            hub,
            store,
            metrics,
        });
        let sweeper = tokio::spawn({
            let state = state.clone();
            async move {
                let mut tick = tokio::time::interval(RATE_IDLE);
                loop {
                    tick.tick().await;
                    state.chat_rates.sweep(RATE_IDLE, Instant::now());
                    let store = state.store.clone();
                    let _ = tokio::task::spawn_blocking(move || store.sweep(now_ms())).await;
                }
            }
        });
        let stop = CancellationToken::new();
        let serve = tokio::spawn(net_guard::serve_http(
            listener,
            crate::api::router(state.clone()),
            admission,
            stop.clone(),
        ));
        tracing::info!(%addr, backend = state.store.backend(), "business server listening");
        Ok(Running {
            addr,
            state,
            stop,
            serve,
            sweeper,
            generated,
        })
    }
}

impl Running {
    /// Address serving HTTP and WebSocket.
    pub fn http_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Secrets generated at start because none were configured; print them once.
    pub fn generated_secrets(&self) -> &[GeneratedSecret] {
        &self.generated
    }

    /// Store backend in use (`memory` or `redis`).
    pub fn backend(&self) -> &'static str {
        self.state.store.backend()
    }

    /// Disconnects every member (close 1001), stops accepting, and waits briefly for both.
    pub async fn shutdown(self) {
        self.state.hub.close_all();
        self.stop.cancel();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.state.metrics.connections.load(Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut serve = self.serve;
        if tokio::time::timeout_at(deadline.into(), &mut serve)
            .await
            .is_err()
        {
            serve.abort();
        }
        self.sweeper.abort();
        self.state.store.close();
    }
}
