//! WebSocket pings: a member that answers them stays, one that stops is closed.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use business_server::auth::Role;
use business_server::session::CLOSE_IDLE;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{instances, metric, token, ws_url, Backend, Client};

const PING_MS: u64 = 100;
const IDLE_MS: u64 = 500;

/// A TCP stream whose writes vanish once `muted`: its WebSocket still reads every
/// frame, but the pongs it answers with never reach the server.
struct Muted {
    inner: TcpStream,
    muted: Arc<AtomicBool>,
}

impl AsyncRead for Muted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Muted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.muted.load(Relaxed) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.muted.load(Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.muted.load(Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_answering_pings_is_closed_after_the_idle_deadline() {
    let (servers, _) = instances(Backend::Memory, 1, |c| {
        c.ping_interval_ms = PING_MS;
        c.idle_timeout_ms = IDLE_MS;
        c.presence_events = false;
    })
    .await
    .unwrap();
    let addr = servers[0].http_addr();

    // Joins first, answers pings, sends nothing else: it outlives the silent member,
    // which is closed a full idle deadline after its own join.
    let awake = Client::join(addr, "quiet", "awake").await;
    let (mut awake_tx, mut awake_rx) = awake.ws.split();
    let awake_reader = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(Ok(msg)) = awake_rx.next().await {
            match msg {
                Message::Ping(_) => pings += 1,
                Message::Text(t) if t.as_str().contains("\"pong\"") => return pings,
                _ => {}
            }
        }
        panic!("the member that answers pings was disconnected after {pings} pings");
    });

    let muted = Arc::new(AtomicBool::new(false));
    let stream = Muted {
        inner: TcpStream::connect(addr).await.unwrap(),
        muted: muted.clone(),
    };
    let url = ws_url(addr, "quiet", Some(&token("sleepy", "quiet", Role::Viewer)));
    let (mut sleepy, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let welcome = sleepy.next().await.unwrap().unwrap();
    assert!(welcome.to_text().unwrap().contains("welcome"), "{welcome}");
    muted.store(true, Relaxed);
    let silent_since = Instant::now();

    let mut pings = 0;
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = sleepy.next().await {
            match msg.expect("frames until the close") {
                Message::Ping(_) => pings += 1,
                Message::Close(frame) => return frame,
                _ => {}
            }
        }
        None
    })
    .await
    .expect("the silent member is closed")
    .expect("with a close frame");
    let silent_for = silent_since.elapsed();
    assert_eq!(u16::from(close.code), CLOSE_IDLE);
    assert!(close.reason.starts_with("idle:"), "{}", close.reason);
    assert!(pings >= 2, "pinged {pings} times before the close");
    assert!(
        silent_for >= Duration::from_millis(IDLE_MS - PING_MS),
        "closed after {silent_for:?}"
    );
    assert_eq!(metric(addr, "business_idle_closed_total").await, 1.0);

    awake_tx
        .send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    let awake_pings = tokio::time::timeout(Duration::from_secs(10), awake_reader)
        .await
        .expect("the awake member answers")
        .unwrap();
    assert!(
        awake_pings >= 2,
        "the awake member was pinged and answered ({awake_pings} pings)"
    );
    assert!(metric(addr, "business_pings_total").await >= f64::from(pings + awake_pings));
    assert_eq!(metric(addr, "business_idle_closed_total").await, 1.0);
    servers.into_iter().next().unwrap().shutdown().await;
}
