//! A member that never reads neither delays the others nor stays connected.

use std::time::{Duration, Instant};

use business_server::auth::Role;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{instances, metric, token, ws_url, Backend, Client, HEAVY};

const PADDING: usize = 3_800;
const READERS: usize = 3;
const MAX_MESSAGES: usize = 8_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_member_does_not_delay_others_and_is_disconnected() {
    let _heavy = HEAVY.lock().await;
    let (servers, _) = instances(Backend::Memory, 1, |c| {
        c.send_queue = 4;
        c.max_lag_batches = 10;
        c.max_chat_chars = 4_000;
        c.max_message_bytes = 16_384;
        c.chat_per_sec = 100_000.0;
        c.chat_burst = 100_000;
        c.messages_per_sec = 100_000.0;
        c.messages_burst = 100_000;
        c.presence_events = false;
    })
    .await
    .unwrap();
    let addr = servers[0].http_addr();
    let batch = Duration::from_millis(50);

    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let slow_token = token("sloth", "hall", Role::Viewer);
    let (mut slow, _) =
        tokio_tungstenite::client_async(ws_url(addr, "hall", Some(&slow_token)), stream)
            .await
            .unwrap();

    let t0 = Instant::now();
    let mut readers = Vec::new();
    for r in 0..READERS {
        let mut c = Client::join(addr, "hall", &format!("reader{r}")).await;
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let chat = c.until(|v| v["type"] == "chat").await;
                let text = chat["text"].as_str().unwrap_or_default().to_string();
                if text == "end" {
                    return latencies;
                }
                let (seq, sent_us) = text
                    .split(';')
                    .next()
                    .and_then(|h| h.split_once(':'))
                    .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<u64>().unwrap()))
                    .unwrap();
                assert_eq!(
                    seq,
                    latencies.len(),
                    "reader {r} missed or reordered a chat"
                );
                latencies.push(t0.elapsed() - Duration::from_micros(sent_us));
            }
        }));
    }

    let sender = Client::join(addr, "hall", "sender").await;
    let (mut tx, mut rx) = sender.ws.split();
    let drain = tokio::spawn(async move { while rx.next().await.is_some() {} });
    let pad = "x".repeat(PADDING);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut dropped_at = None;
    while sent < MAX_MESSAGES && Instant::now() < deadline {
        tick.tick().await;
        for _ in 0..2 {
            let text = format!("{sent}:{};{pad}", t0.elapsed().as_micros());
            tx.send(Message::text(
                json!({"type":"chat","text":text}).to_string(),
            ))
            .await
            .unwrap();
            sent += 1;
        }
        if sent % 100 == 0
            && dropped_at.is_none()
            && metric(addr, "business_lagging_dropped_total").await >= 1.0
        {
            dropped_at = Some(sent);
        }
        if dropped_at.is_some_and(|d| sent >= d + 200) {
            break;
        }
    }
    let dropped_at = dropped_at.expect("the slow member was disconnected while chat flowed");
    tx.send(Message::text(
        json!({"type":"chat","text":"end"}).to_string(),
    ))
    .await
    .unwrap();

    for r in readers {
        let mut lat = tokio::time::timeout(Duration::from_secs(30), r)
            .await
            .expect("readers finish")
            .unwrap();
        assert_eq!(lat.len(), sent, "every reader got every chat");
        lat.sort();
        let (p50, p99, max) = (
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat[lat.len() - 1],
        );
        eprintln!(
            "slow consumer: {sent} chats (member dropped after ~{dropped_at}), reader latency p50 {p50:?} p99 {p99:?} max {max:?}"
        );
        assert!(
            p99 <= batch * 8,
            "p99 delivery {p99:?} should stay within a few {batch:?} ticks"
        );
        assert!(max <= Duration::from_secs(2), "max delivery {max:?}");
    }

    let close = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(msg) = slow.next().await {
            if let Ok(Message::Close(frame)) = msg {
                return frame;
            }
        }
        None
    })
    .await
    .expect("slow member gets a close frame");
    let frame = close.expect("close frame has a reason");
    assert_eq!(
        u16::from(frame.code),
        business_server::session::CLOSE_LAGGING
    );
    assert!(frame.reason.contains("lagging"), "{}", frame.reason);
    assert_eq!(metric(addr, "business_lagging_dropped_total").await, 1.0);
    drain.abort();
    servers.into_iter().next().unwrap().shutdown().await;
}
