//! `livepulse demo`: the stack in one process, publishing the built-in sample in a loop.

use std::net::{IpAddr, SocketAddr};

use clap::Args;
use push_client::{Backoff, FlvLoop, PublishOptions, PublishStats, RtmpUrl};
use tokio_util::sync::CancellationToken;

/// Options of `livepulse demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// RTMP port of the origin.
    #[arg(long, default_value_t = 1935)]
    rtmp_port: u16,
    /// HTTP port of the origin.
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    /// HTTP port of the CDN edge in front of the origin.
    #[arg(long, default_value_t = 8081)]
    edge_port: u16,
    /// HTTP/WebSocket port of the business server.
    #[arg(long, default_value_t = 8090)]
    business_port: u16,
}

/// Runs the demo until Ctrl-C.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let config = media_server::Config {
        rtmp: SocketAddr::new(args.host, args.rtmp_port),
        http: SocketAddr::new(args.host, args.http_port),
        rtmp_listener: net_guard::Limits::one_machine(),
        http_listener: net_guard::Limits::one_machine(),
        ..media_server::Config::default()
    };
    let origin = media_server::Server::bind(config).await?;
    let edge = cdn_edge::Server::bind(cdn_edge::Config {
        listen: SocketAddr::new(args.host, args.edge_port),
        origins: vec![format!("http://{}", origin.http_addr())],
        listener: net_guard::Limits::one_machine(),
        ..cdn_edge::Config::default()
    })
    .await?;
    let cdn = edge.http_addr();
    let business = business_server::Server::bind(business_server::Config {
        listen: SocketAddr::new(args.host, args.business_port),
        listener: net_guard::Limits::one_machine(),
        web: web_page(origin.http_addr(), cdn),
        ..business_server::Config::demo()
    })
    .await?;
    let ws = business.http_addr();
    let page = SocketAddr::new(reachable(ws.ip()), ws.port());
    let rtmp = format!("rtmp://{}/live/demo", origin.rtmp_addr());
    let http = origin.http_addr();
    let stop = CancellationToken::new();
    let pusher = tokio::spawn(push_loop(RtmpUrl::parse(&rtmp)?, stop.clone()));

    println!("Open http://{page}/");
    println!("  (the host's view: http://{page}/host)");
    println!();
    println!("livepulse demo is running; the built-in sample is being published to {rtmp}");
    println!();
    println!(
        "  HLS        ffplay http://{http}/live/demo.m3u8      (edge: http://{cdn}/live/demo.m3u8)"
    );
    println!(
        "  HTTP-FLV   ffplay http://{http}/live/demo.flv       (edge: http://{cdn}/live/demo.flv)"
    );
    println!("  RTMP       ffplay {rtmp}");
    println!("  Streams    curl http://{http}/api/v1/streams");
    println!("  Metrics    curl http://{http}/metrics   (edge: http://{cdn}/metrics)");
    println!("  Business   ws://{ws}/ws?room=demo  (rooms, chat, gifts, flash sales; see docs/PROTOCOL.md)");
    println!(
        "             admin key {}, token secret {} (public demo values)",
        business_server::config::DEMO_ADMIN_KEY,
        business_server::config::DEMO_TOKEN_SECRET
    );
    println!();
    println!(
        "Publish your own: ffmpeg -re -i input.mp4 -c copy -f flv rtmp://{}/live/<name>",
        origin.rtmp_addr()
    );
    println!("Press Ctrl-C to stop.");

    net_guard::stop_signal().await?;
    stop.cancel();
    let _ = pusher.await;
    edge.shutdown().await;
    origin.shutdown().await;
    business.shutdown().await;
    Ok(())
}

/// Where the web page finds the demo's video and metrics: the edge and the origin as
/// bound; `{host}` (the host name the browser used) when they listen on every address.
fn web_page(origin: SocketAddr, edge: SocketAddr) -> business_server::config::WebPage {
    let base = |addr: SocketAddr| {
        if addr.ip().is_unspecified() {
            format!("http://{{host}}:{}", addr.port())
        } else {
            format!("http://{addr}")
        }
    };
    let (origin, edge) = (base(origin), base(edge));
    business_server::config::WebPage {
        hls: format!("{edge}/live/demo.m3u8"),
        llhls: format!("{edge}/live/demo/ll.m3u8"),
        flv: format!("{edge}/live/demo.flv"),
        origin,
        edge,
        ..business_server::config::WebPage::default()
    }
}

/// An address a browser on this machine can open: loopback for "every address".
fn reachable(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

async fn push_loop(url: RtmpUrl, stop: CancellationToken) {
    let mut source = match FlvLoop::sample() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("built-in sample unreadable: {e}");
            return;
        }
    };
    let stats = PublishStats::default();
    push_client::run(
        &url,
        &mut source,
        &PublishOptions::default(),
        &Backoff::default(),
        &stop,
        &stats,
    )
    .await;
}
