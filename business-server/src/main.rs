//! `business-server` binary: runs one instance until Ctrl-C.

use business_server::{Config, Server};
use clap::Parser;

/// Rooms, bullet screens, gifts and flash sales over WebSocket.
#[derive(Parser)]
#[command(name = "business-server", version)]
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
    for secret in running.generated_secrets() {
        println!("{secret}");
    }
    println!(
        "business-server listening on http://{} ({} store)",
        running.http_addr(),
        running.backend()
    );
    net_guard::stop_signal().await?;
    running.shutdown().await;
    Ok(())
}
