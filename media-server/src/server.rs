//! Starting and stopping the origin as a library.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use net_guard::Admission;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::hls::{self, HlsStore};
use crate::hook::PublishHook;
use crate::http::{self, AppState};
use crate::hub::Hub;
use crate::llhls::{self, HeldLimiter, LlHls, LlStore};
use crate::metrics::Metrics;
use crate::rtmp;

/// How long shutdown waits for connections to finish before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The origin server.
pub struct Server;

/// A started origin: its bound addresses and a way to stop it.
pub struct Running {
    rtmp_addr: SocketAddr,
    http_addr: SocketAddr,
    hub: Hub,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds both listeners and starts serving.
    pub async fn bind(config: Config) -> anyhow::Result<Running> {
        config.validate()?;
        let rtmp_listener = TcpListener::bind(config.rtmp)
            .await
            .map_err(|e| anyhow::anyhow!("binding RTMP on {}: {e}", config.rtmp))?;
        let http_listener = TcpListener::bind(config.http)
            .await
            .map_err(|e| anyhow::anyhow!("binding HTTP on {}: {e}", config.http))?;
        let rtmp_addr = rtmp_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;

        let auth = Arc::new(crate::auth::policy(&config.auth));
        let rtmp_admission = Admission::new(config.rtmp_listener.clone());
        let http_admission = Admission::new(config.http_listener.clone());
        let mut metrics = Metrics::default();
        metrics.register_listener("rtmp", rtmp_admission.stats());
        metrics.register_listener("http", http_admission.stats());
        let metrics = Arc::new(metrics);
        let hub = Hub::new(config.hub.clone(), config.on_conflict);
        let store = HlsStore::default();
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();

        if config.hls.enabled {
            let output = hls::run(&hub, store.clone(), config.hls.clone(), metrics.clone());
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = output => {}
                }
            }));
        }

        let ll = if config.llhls.enabled {
            let ll = LlHls {
                store: LlStore::default(),
                config: config.llhls.packager_config()?,
                held: HeldLimiter::new(
                    config.llhls.max_held_per_ip,
                    metrics.llhls_held_requests.clone(),
                ),
            };
            let output = llhls::run(&hub, ll.store.clone(), ll.config.clone(), metrics.clone());
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = output => {}
                }
            }));
            Some(ll)
        } else {
            None
        };

        #[cfg(feature = "transcode")]
        if config.transcode.enabled() {
            let transcoder =
                crate::transcode::run(hub.clone(), config.transcode.clone(), metrics.clone());
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = transcoder => {}
                }
            }));
        }
        #[cfg(not(feature = "transcode"))]
        if config.transcode.enabled() {
            tracing::warn!(
                "transcode ladders are configured but this build has no `transcode` feature; \
                 serving sources only"
            );
        }

        let ctx = rtmp::Context {
            hub: hub.clone(),
            limits: config.rtmp_limits.clone(),
            hook: config.on_publish.clone().map(PublishHook::new),
            auth: auth.clone(),
            metrics: metrics.clone(),
            publisher_timeout: config.hub.publisher_timeout(),
        };
        tasks.push(tokio::spawn(rtmp::serve(
            rtmp_listener,
            ctx,
            rtmp_admission,
            shutdown.clone(),
        )));

        let app = http::router(AppState {
            hub: hub.clone(),
            hls: store,
            hls_config: config.hls.clone(),
            llhls: ll,
            metrics,
            transcode: Arc::new(config.transcode.clone()),
            auth,
        });
        tasks.push(tokio::spawn(net_guard::serve_http(
            http_listener,
            app,
            http_admission,
            shutdown.clone(),
        )));

        let sweeper = hub.clone();
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => sweeper.sweep(),
                }
            }
        }));

        tracing::info!(%rtmp_addr, %http_addr, "origin listening");
        Ok(Running {
            rtmp_addr,
            http_addr,
            hub,
            shutdown,
            tasks,
        })
    }
}

impl Running {
    /// The bound RTMP address.
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The stream hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Stops accepting, ends every stream and viewer, and waits for the server tasks.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.hub.close_all();
        for mut task in self.tasks {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}
