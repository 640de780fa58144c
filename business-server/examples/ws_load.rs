//! Loopback load client for `bench/business-room.sh`: N members in one room, S senders
//! at a fixed total chat rate; reports deliveries per second and delivery latency.
//! Speaks the business-server protocol or socket.io (Engine.IO v4 over WebSocket).
//!
//! ```text
//! cargo run --release -p business-server --example ws_load -- \
//!     --target business --addr 127.0.0.1:8090 --members 5000 --senders 10 --rate 500 --secs 10
//! ```
//!
//! Bounded: at most 30,000 connections and 300 seconds; loopback addresses only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use business_server::auth::{Claims, Role, TokenSigner};
use clap::{Parser, ValueEnum};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

const MAX_CONNECTIONS: usize = 30_000;
const MAX_SECS: u64 = 300;
/// Latency histogram: 0.1 ms buckets up to 10 s.
const BUCKETS: usize = 100_000;

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Target {
    Business,
    Socketio,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum)]
    target: Target,
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, default_value = "bench")]
    room: String,
    #[arg(long, default_value_t = 5000)]
    members: usize,
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Total chat messages per second into the room (0: idle members only).
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Measured seconds (after warm-up).
    #[arg(long, default_value_t = 10)]
    secs: u64,
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Token secret of the business server (senders need tokens).
    #[arg(long, default_value = "livepulse-dev-secret")]
    secret: String,
    /// Concurrent connection attempts while ramping up.
    #[arg(long, default_value_t = 200)]
    ramp: usize,
}

struct Stats {
    origin: Instant,
    measuring: AtomicBool,
    deliveries: AtomicU64,
    hist: Vec<AtomicU64>,
}

impl Stats {
    fn record(&self, sent_us: u64) {
        self.deliveries.fetch_add(1, Relaxed);
        let now = self.origin.elapsed().as_micros() as u64;
        let bucket = (now.saturating_sub(sent_us) / 100) as usize;
        self.hist[bucket.min(BUCKETS - 1)].fetch_add(1, Relaxed);
    }

    fn percentile(&self, p: f64) -> f64 {
        let total: u64 = self.hist.iter().map(|b| b.load(Relaxed)).sum();
        let want = (total as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (i, b) in self.hist.iter().enumerate() {
            seen += b.load(Relaxed);
            if seen >= want.max(1) {
                return i as f64 / 10.0;
            }
        }
        f64::NAN
    }
}

/// Finds chat stamps `"L<micros>` in a frame and records them.
fn scan(text: &str, stats: &Stats) {
    let measuring = stats.measuring.load(Relaxed);
    for (i, _) in text.match_indices("\"L") {
        let digits = &text[i + 2..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if measuring {
            if let Ok(us) = digits[..end].parse() {
                stats.record(us);
            }
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(args: &Args, token: Option<&str>) -> anyhow::Result<Ws> {
    let url = match args.target {
        Target::Business => match token {
            Some(t) => format!("ws://{}/ws?room={}&token={t}", args.addr, args.room),
            None => format!("ws://{}/ws?room={}", args.addr, args.room),
        },
        Target::Socketio => format!("ws://{}/socket.io/?EIO=4&transport=websocket", args.addr),
    };
    let socket = TcpSocket::new_v4()?;
    let stream = socket.connect(args.addr).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    if args.target == Target::Socketio {
        ws.send(Message::text("40")).await?;
    }
    Ok(ws)
}

/// Reads until the connection ends; answers Engine.IO pings.
async fn member(mut ws: Ws, stats: Arc<Stats>, socketio: bool) {
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(t) = msg {
            if socketio && t.as_str() == "2" {
                if ws.send(Message::text("3")).await.is_err() {
                    return;
                }
                continue;
            }
            scan(t.as_str(), &stats);
        }
    }
}

async fn sender(args: Arc<Args>, ws: Ws, stats: Arc<Stats>, per_sec: f64, stop: Instant) {
    let (mut tx, mut rx) = ws.split();
    let socketio = args.target == Target::Socketio;
    tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while Instant::now() < stop {
        tick.tick().await;
        let stamp = format!("L{}", stats.origin.elapsed().as_micros());
        let frame = if socketio {
            format!("42[\"chat\",\"{stamp}\"]")
        } else {
            format!("{{\"type\":\"chat\",\"text\":\"{stamp}\"}}")
        };
        if tx.send(Message::text(frame)).await.is_err() {
            eprintln!("sender lost its connection");
            return;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if !args.addr.ip().is_loopback() {
        bail!("ws_load only targets loopback addresses");
    }
    if args.members + args.senders > MAX_CONNECTIONS || args.secs + args.warmup > MAX_SECS {
        bail!("at most {MAX_CONNECTIONS} connections and {MAX_SECS} s");
    }
    let stats = Arc::new(Stats {
        origin: Instant::now(),
        measuring: AtomicBool::new(false),
        deliveries: AtomicU64::new(0),
        hist: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
    });
    let socketio = args.target == Target::Socketio;
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(args.ramp));
    let mut joins = Vec::with_capacity(args.members);
    for _ in 0..args.members {
        let (args, stats, gate) = (args.clone(), stats.clone(), gate.clone());
        joins.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let ws = connect(&args, None).await?;
            drop(permit);
            tokio::spawn(member(ws, stats, socketio));
            anyhow::Ok(())
        }));
    }
    let mut failed = 0;
    for j in joins {
        if j.await.context("join task")?.is_err() {
            failed += 1;
        }
    }
    println!(
        "READY members={} failed={failed} connect_secs={:.1}",
        args.members - failed,
        started.elapsed().as_secs_f64()
    );
    if args.rate == 0 {
        tokio::time::sleep(Duration::from_secs(args.secs)).await;
        return Ok(());
    }
    let signer = TokenSigner::new(args.secret.as_bytes());
    let stop = Instant::now() + Duration::from_secs(args.warmup + args.secs);
    let per_sender = args.rate as f64 / args.senders as f64;
    for s in 0..args.senders {
        let token = signer.issue(&Claims {
            user: format!("sender{s}"),
            room: args.room.clone(),
            role: Role::Viewer,
            exp: business_server::server::now_secs() + 3600,
        });
        let ws = connect(&args, Some(&token)).await?;
        tokio::spawn(sender(args.clone(), ws, stats.clone(), per_sender, stop));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    stats.measuring.store(true, Relaxed);
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    stats.measuring.store(false, Relaxed);
    let secs = t.elapsed().as_secs_f64();
    let delivered = stats.deliveries.load(Relaxed);
    println!(
        "RESULT target={} members={} rate={} deliveries={delivered} deliveries_per_sec={:.0} expected_per_sec={} p50_ms={:.1} p99_ms={:.1}",
        if socketio { "socketio" } else { "business" },
        args.members - failed,
        args.rate,
        delivered as f64 / secs,
        (args.members - failed) as u64 * args.rate,
        stats.percentile(0.50),
        stats.percentile(0.99),
    );
    Ok(())
}
