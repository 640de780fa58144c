//! Every listener closes what an attacker leaves open, and keeps serving everyone else:
//! 10,000 connections that never finish their request headers (or their RTMP handshake)
//! are refused by the per-IP cap or closed by the header deadline, while a normal client on
//! another address is answered throughout. A viewer that stops reading is closed by the
//! idle deadline.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use livepulse_tests::{metric, metrics_page, start_origin};
use media_core::avc::AvcConfig;
use media_core::flv::{avc_video_tag, VideoPacket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_util::sync::CancellationToken;

const ATTACKERS: usize = 10_000;
const HEADER_TIMEOUT: f64 = 2.0;
const IDLE_TIMEOUT: f64 = 3.0;

/// The default caps (1,000 connections per address), with short deadlines.
fn short(limits: &mut net_guard::Limits) {
    *limits = net_guard::Limits {
        header_timeout_secs: HEADER_TIMEOUT,
        idle_timeout_secs: IDLE_TIMEOUT,
        ..net_guard::Limits::default()
    };
}

/// The attacker's address, and the normal client's.
fn attacker() -> IpAddr {
    [127, 0, 0, 1].into()
}
fn bystander() -> IpAddr {
    [127, 0, 0, 2].into()
}

/// Opens `ATTACKERS` connections from the attacker's address that send `partial` and then
/// nothing; returns how many the server closed (EOF or reset) within `within`.
async fn attack(target: SocketAddr, partial: &'static [u8], within: Duration) -> usize {
    let closed = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..ATTACKERS {
        let permit = gate.clone().acquire_owned().await.expect("gate");
        let closed = closed.clone();
        tasks.spawn(async move {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.bind(SocketAddr::new(attacker(), 0)).expect("bind");
            let Ok(mut stream) = socket.connect(target).await else {
                drop(permit);
                closed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = stream.write_all(partial).await;
            drop(permit);
            let mut buf = [0u8; 512];
            let ended = tokio::time::timeout(within, async {
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            if ended.is_ok() {
                closed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    closed.load(Ordering::Relaxed) as usize
}

/// GETs `url` from the bystander's address every 50 ms until `stop`; returns (ok, failed,
/// slowest).
async fn bystander_polls(url: String, stop: CancellationToken) -> (u64, u64, Duration) {
    let client = reqwest::Client::builder()
        .local_address(bystander())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let (mut ok, mut failed, mut slowest) = (0, 0, Duration::ZERO);
    while !stop.is_cancelled() {
        let started = Instant::now();
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => ok += 1,
            _ => failed += 1,
        }
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (ok, failed, slowest)
}

/// Runs the attack on `target` while the bystander polls `url`, and checks both sides.
async fn survive(name: &str, target: SocketAddr, partial: &'static [u8], url: &str) {
    let stop = CancellationToken::new();
    let polls = tokio::spawn(bystander_polls(url.to_string(), stop.clone()));
    let started = Instant::now();
    let within = Duration::from_secs_f64(HEADER_TIMEOUT * 4.0);
    let closed = attack(target, partial, within).await;
    stop.cancel();
    let (ok, failed, slowest) = polls.await.expect("bystander");
    println!(
        "{name}: {closed} of {ATTACKERS} closed in {:?}; bystander {ok} ok, {failed} failed, \
         slowest {slowest:?}",
        started.elapsed()
    );
    assert_eq!(
        closed, ATTACKERS,
        "{name}: every half-open connection is closed"
    );
    assert_eq!(failed, 0, "{name}: the bystander is always answered");
    assert!(ok >= 10, "{name}: the bystander kept asking ({ok})");
}

/// Checks that every attacking connection shows in `listener`'s counters on a metrics page:
/// refused by the per-IP cap (which must have bitten) or closed by a deadline.
fn assert_counted(text: &str, prefix: &str, listener: &str) {
    let label = if listener.is_empty() {
        String::new()
    } else {
        format!("listener=\"{listener}\"")
    };
    let refused = metric(text, &format!("{prefix}_connections_refused_total"), &label);
    let timed_out = metric(
        text,
        &format!("{prefix}_connections_timed_out_total"),
        &label,
    );
    println!("{prefix} {listener}: refused {refused}, timed out {timed_out}");
    assert!(refused > 0, "{prefix} {listener}: the per-IP cap bit");
    assert!(refused + timed_out >= ATTACKERS as u64 - 10, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_and_others_served() {
    let origin = start_origin(|c| {
        short(&mut c.http_listener);
        short(&mut c.rtmp_listener);
        c.rtmp_limits.handshake_timeout_secs = HEADER_TIMEOUT;
    })
    .await;
    let mut config = cdn_edge::Config::ephemeral(vec![format!("http://{}", origin.http_addr())]);
    short(&mut config.listener);
    let edge = cdn_edge::Server::bind(config).await.expect("edge starts");
    let origin_metrics = format!("http://{}/metrics", origin.http_addr());
    let edge_metrics = format!("http://{}/metrics", edge.http_addr());
    let partial_http: &[u8] = b"GET /live/x.m3u8 HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    // C0 and the first bytes of C1: a handshake that never completes.
    let partial_rtmp: &[u8] = &[3, 0, 0, 0, 0, 0, 0, 0, 0];

    survive(
        "origin http",
        origin.http_addr(),
        partial_http,
        &origin_metrics,
    )
    .await;
    survive(
        "origin rtmp",
        origin.rtmp_addr(),
        partial_rtmp,
        &origin_metrics,
    )
    .await;
    survive("edge http", edge.http_addr(), partial_http, &edge_metrics).await;
    let mut business_config = business_server::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        token_secret: "listener-test-secret".into(),
        admin_key: "listener-test-admin".into(),
        ping_interval_ms: 1_000,
        idle_timeout_ms: 2_500,
        ..business_server::Config::default()
    };
    short(&mut business_config.listener);
    let business = business_server::Server::bind(business_config)
        .await
        .expect("business server starts");
    let business_metrics = format!("http://{}/metrics", business.http_addr());
    survive(
        "business http",
        business.http_addr(),
        partial_http,
        &business_metrics,
    )
    .await;
    assert_counted(&metrics_page(&business_metrics).await, "business", "");
    business.shutdown().await;

    let text = metrics_page(&origin_metrics).await;
    assert_counted(&text, "livepulse_origin", "http");
    assert_counted(&text, "livepulse_origin", "rtmp");
    let text = metrics_page(&edge_metrics).await;
    assert_counted(&text, "livepulse_edge", "");
    let open = metric(&text, "livepulse_edge_connections_open", "");
    assert!(open <= 2, "edge: nothing left open: {open}");
    edge.shutdown().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_is_closed() {
    let origin = start_origin(|c| short(&mut c.http_listener)).await;
    // 5 MB/s of video, so the socket buffers between the origin and the stuck viewer (which
    // grow to megabytes) fill within a second or two.
    let mut publisher = origin.hub().publish("live/stuck").expect("publish");
    let config = AvcConfig {
        profile: 66,
        compatibility: 0,
        level: 30,
        nalu_length_size: 4,
        sps: vec![Bytes::from_static(&[0x67, 0x42, 0, 30])],
        pps: vec![Bytes::from_static(&[0x68, 0xce])],
    };
    let header = avc_video_tag(true, VideoPacket::SequenceHeader, 0, &config.to_bytes());
    publisher
        .push_video(0, Bytes::from(header))
        .expect("header");
    let stop = CancellationToken::new();
    let publishing = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut nalu = vec![0u8; 100_000];
            nalu[..5].copy_from_slice(&[0, 1, 0x86, 0x9b, 0x65]);
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for i in 1u32.. {
                tick.tick().await;
                if stop.is_cancelled() {
                    break;
                }
                let tag = avc_video_tag(i % 50 == 0, VideoPacket::Nalu, 0, &nalu);
                let _ = publisher.push_video(i * 20, Bytes::from(tag));
            }
        })
    };
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut viewer = socket.connect(origin.http_addr()).await.expect("connect");
    viewer
        .write_all(b"GET /live/stuck.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut head = [0u8; 256];
    let n = viewer.read(&mut head).await.expect("answer");
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head[..n])
    );
    let viewers = || {
        origin
            .hub()
            .stats()
            .iter()
            .find(|s| s.key == "live/stuck")
            .map_or(0, |s| s.viewers.http_flv)
    };
    assert_eq!(viewers(), 1);
    // The viewer reads nothing more. Once the socket buffers are full, nothing moves, and the
    // idle deadline closes it.
    let started = Instant::now();
    while viewers() > 0 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    println!("stuck viewer closed after {took:?}");
    assert_eq!(viewers(), 0, "the stuck viewer is closed");
    assert!(
        took >= Duration::from_secs_f64(IDLE_TIMEOUT),
        "not before the deadline: {took:?}"
    );
    stop.cancel();
    publishing.await.expect("publisher");
    origin.shutdown().await;
}
