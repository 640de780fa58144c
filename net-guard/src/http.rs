//! Serving HTTP under a listener's caps and deadlines.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use crate::{Admission, DeadlineIo, Refusal};

/// How long connections may take to finish after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(5);
/// How long a refused client gets to read its `503`.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Pause after an accept error (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The client's address, as axum's `ConnectInfo<SocketAddr>` extractor expects it.
pub type PeerAddr = ConnectInfo<SocketAddr>;

/// Serves `router` on `listener` until `shutdown`: each connection is admitted by
/// `admission` (a refused one gets `503` with the reason and is closed), has hyper's
/// header-read deadline (which also bounds a keep-alive connection's idle wait) and the idle
/// deadline of [`DeadlineIo`] (which closes a viewer that stops reading). Requests carry the
/// client's address as [`PeerAddr`]. Sockets get `TCP_NODELAY`: live media goes out as
/// small writes that Nagle would hold back.
pub async fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    admission: Arc<Admission>,
    shutdown: CancellationToken,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(admission.limits().header_timeout());
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let idle = admission.limits().idle_timeout();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let permit = match admission.admit(peer.ip()) {
            Ok(p) => p,
            Err(refusal) => {
                tokio::spawn(refuse(stream, refusal));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(DeadlineIo::new(stream, idle, Some(permit.stats().clone())));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move {
                let Ok(response) = router.call(request).await;
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                let timed_out = e
                    .downcast_ref::<hyper::Error>()
                    .is_some_and(hyper::Error::is_timeout);
                if timed_out {
                    permit.stats().count_timeout();
                }
                tracing::debug!(%peer, "http connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("connections still open after {DRAIN:?}; closing them");
    }
}

/// Answers a connection over a cap with `503` and closes it, after giving the client a moment
/// to read the answer (closing with its request unread would reset the connection instead).
async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    let body = format!("{refusal}\n");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
