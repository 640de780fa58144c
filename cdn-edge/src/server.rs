//! Starting and stopping the edge as a library.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::config::Config;
use crate::flv_fanout::FlvFanout;
use crate::http::{self, Edge};
use crate::metrics::Metrics;
use crate::upstream::Upstream;

/// How long shutdown waits for connections to finish before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The edge server.
pub struct Server;

/// A started edge: its bound address and a way to stop it.
pub struct Running {
    http_addr: SocketAddr,
    flv: Arc<FlvFanout>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds the listener and starts serving and health-checking the origins.
    pub async fn bind(config: Config) -> anyhow::Result<Running> {
        config.validate()?;
        let admission = net_guard::Admission::new(config.listener.clone());
        let mut metrics = Metrics::default();
        metrics.register_listener(admission.stats());
        let metrics = Arc::new(metrics);
        let auth = Arc::new(config.token_policy());
        let upstream = Arc::new(Upstream::new(
            &config.origins,
            metrics.clone(),
            auth.clone(),
        )?);
        let flv = FlvFanout::new(
            upstream.clone(),
            metrics.clone(),
            Duration::from_millis(config.flv_linger_ms),
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("binding HTTP on {}: {e}", config.listen))?;
        let http_addr = listener.local_addr()?;
        let health_every = Duration::from_millis(config.health_interval_ms);
        let edge = Arc::new(Edge {
            cache: Cache::new(config.cache_bytes),
            flight: Arc::default(),
            arriving: Default::default(),
            upstream,
            flv: flv.clone(),
            metrics,
            auth,
            config,
        });
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();

        let app = http::router(edge.clone());
        tasks.push(tokio::spawn(net_guard::serve_http(
            listener,
            app,
            admission,
            shutdown.clone(),
        )));

        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(health_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => edge.upstream.check_health().await,
                }
            }
        }));

        tracing::info!(%http_addr, "edge listening");
        Ok(Running {
            http_addr,
            flv,
            shutdown,
            tasks,
        })
    }
}

impl Running {
    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops accepting, ends every HTTP-FLV viewer and waits for the server tasks.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.flv.close_all();
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
