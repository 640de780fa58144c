//! `player-client URL [--duration 30s] [--json]`: plays a stream and reports QoE.

use clap::Parser;
use player_client::cli::{run, PlayArgs};
use tracing_subscriber::EnvFilter;

/// Plays HLS, LL-HLS, HTTP-FLV or RTMP like a real player and reports startup, stalls and latency.
#[derive(Parser)]
#[command(name = "player-client", version)]
struct Cli {
    #[command(flatten)]
    play: PlayArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    run(Cli::parse().play).await
}
