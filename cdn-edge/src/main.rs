//! `cdn-edge` binary: runs one edge until Ctrl-C.

use cdn_edge::{Config, Server};
use clap::Parser;

/// Caching HTTP edge for live HLS and HTTP-FLV in front of one or more origins.
#[derive(Parser)]
#[command(name = "cdn-edge", version)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let running = Server::bind(Cli::parse().config).await?;
    println!("cdn-edge listening on http://{}", running.http_addr());
    net_guard::stop_signal().await?;
    running.shutdown().await;
    Ok(())
}
