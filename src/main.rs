//! The `livepulse` command: the whole live stack and its load harness in one binary.

mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "livepulse",
    version,
    about = "Live-streaming backend and load harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the whole stack in one process and publish the built-in sample.
    Demo(demo::DemoArgs),
    /// Run the origin media server (RTMP ingest, HLS, HTTP-FLV, RTMP play).
    Origin(OriginArgs),
    /// Run the caching CDN edge in front of one or more origins.
    Edge(cdn_edge::Config),
    /// Run the business server (rooms, chat, gifts, likes, flash sales over WebSocket).
    Business(Box<business_server::Config>),
    /// Publish the built-in sample or an FLV file over RTMP in real time, stamped with wall-clock time.
    Push(push_client::cli::PushArgs),
    /// Play an HLS, HTTP-FLV or RTMP URL like a real player and report startup, stalls and latency.
    Play(player_client::cli::PlayArgs),
    /// Drive load against any stack: a scenario file, or a one-line driver form; `merge` joins shard reports.
    Load(Box<loadgen::cli::LoadArgs>),
    /// Print a signed URL token (`?token=`) for publishing or playing one stream of an app
    /// that needs tokens.
    Token(TokenArgs),
}

#[derive(Args)]
struct TokenArgs {
    /// The app's secret, as in the origin's `[auth.APP]` and the edge's `--auth APP=SECRET`.
    #[arg(long, env = "LIVEPULSE_APP_SECRET", hide_env_values = true)]
    secret: String,
    /// App name.
    #[arg(long, default_value = "live")]
    app: String,
    /// Stream name.
    #[arg(long)]
    stream: String,
    /// Sign for publishing instead of playing.
    #[arg(long)]
    publish: bool,
    /// Seconds the token stays valid.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
}

fn token(args: &TokenArgs) {
    let action = if args.publish {
        media_core::token::Action::Publish
    } else {
        media_core::token::Action::Play
    };
    let expires = net_guard::unix_secs().saturating_add(args.ttl);
    let token = media_core::token::sign(
        args.secret.as_bytes(),
        action,
        &args.app,
        &args.stream,
        expires,
    );
    println!("{token}");
}

#[derive(Args)]
struct OriginArgs {
    /// RTMP listen address [default: 127.0.0.1:1935]
    #[arg(long)]
    rtmp: Option<SocketAddr>,
    /// HTTP listen address for HLS, HTTP-FLV, API and metrics [default: 127.0.0.1:8080]
    #[arg(long)]
    http: Option<SocketAddr>,
    /// TOML config file; command-line addresses override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

async fn origin(args: OriginArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => media_server::Config::from_file(path)?,
        None => media_server::Config::default(),
    };
    if let Some(a) = args.rtmp {
        config.rtmp = a;
    }
    if let Some(a) = args.http {
        config.http = a;
    }
    let running = media_server::Server::bind(config).await?;
    println!("RTMP ingest:  rtmp://{}/live/<stream>", running.rtmp_addr());
    println!(
        "HLS:          http://{}/live/<stream>.m3u8",
        running.http_addr()
    );
    println!(
        "HTTP-FLV:     http://{}/live/<stream>.flv",
        running.http_addr()
    );
    println!(
        "Stats:        http://{}/api/v1/streams",
        running.http_addr()
    );
    net_guard::stop_signal().await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn edge(config: cdn_edge::Config) -> anyhow::Result<()> {
    let origins = config.origins.join(", ");
    let running = cdn_edge::Server::bind(config).await?;
    println!(
        "Edge: http://{} in front of {origins} (cache summary at /api/v1/cache)",
        running.http_addr()
    );
    net_guard::stop_signal().await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn business(config: business_server::Config) -> anyhow::Result<()> {
    let running = business_server::Server::bind(config).await?;
    for secret in running.generated_secrets() {
        println!("{secret}");
    }
    println!(
        "Business server: http://{} (WebSocket at /ws?room=R&token=T, {} store)",
        running.http_addr(),
        running.backend()
    );
    net_guard::stop_signal().await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo prints its own addresses first; its servers' start-up lines would only repeat them.
    let default_level = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .init();
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Origin(args) => origin(args).await,
        Command::Edge(config) => edge(config).await,
        Command::Business(config) => business(*config).await,
        Command::Push(args) => push_client::cli::run(args).await,
        Command::Play(args) => player_client::cli::run(args).await,
        Command::Token(args) => {
            token(&args);
            Ok(())
        }
        Command::Load(args) => {
            if !loadgen::cli::run(*args).await? {
                // Breached thresholds: the report is written; the exit code gates pipelines.
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
