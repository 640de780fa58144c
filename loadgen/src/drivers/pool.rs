//! A small HTTP/1.1 keep-alive connection pool on hyper's connection API. Each request takes an
//! idle connection or opens one, like wrk's per-connection loop; no per-request allocation
//! beyond the request itself (this is the generator's hot path, so no general-purpose client).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;

/// Why a request failed, as an error kind for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    /// TCP connect failed.
    Connect,
    /// No answer within the timeout.
    Timeout,
    /// The connection broke mid-request.
    Io,
}

impl HttpFailure {
    /// The error kind.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpFailure::Connect => "connect",
            HttpFailure::Timeout => "timeout",
            HttpFailure::Io => "io",
        }
    }
}

/// A completed exchange.
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Body bytes (kept only when asked for).
    pub body: Bytes,
    /// Body length.
    pub len: u64,
}

/// A connection checked out of a [`Pool`].
pub struct Conn(SendRequest<Full<Bytes>>);

/// Keep-alive connections to one `host:port`.
pub struct Pool {
    authority: String,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    timeout: Duration,
}

impl Pool {
    /// A pool for `authority` (`host:port`).
    pub fn new(authority: String, timeout: Duration) -> Self {
        Self {
            authority,
            idle: Mutex::new(Vec::new()),
            timeout,
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, HttpFailure> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|_| HttpFailure::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| HttpFailure::Connect)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// An idle keep-alive connection, or a new one.
    pub async fn checkout(&self) -> Result<Conn, HttpFailure> {
        loop {
            let Some(mut s) = self.idle.lock().pop() else {
                return match tokio::time::timeout(self.timeout, self.connect()).await {
                    Ok(r) => r.map(Conn),
                    Err(_) => Err(HttpFailure::Timeout),
                };
            };
            if !s.is_closed() && s.ready().await.is_ok() {
                return Ok(Conn(s));
            }
        }
    }

    /// Sends one request on `conn`, which returns to the pool afterwards; `keep_body` keeps the
    /// body bytes in the answer.
    pub async fn send(
        &self,
        conn: Conn,
        method: &Method,
        path: &str,
        headers: &[(String, String)],
        body: &Bytes,
        keep_body: bool,
    ) -> Result<Answer, HttpFailure> {
        let exchange = self.exchange(conn.0, method, path, headers, body, keep_body);
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(HttpFailure::Timeout),
        }
    }

    async fn exchange(
        &self,
        mut sender: SendRequest<Full<Bytes>>,
        method: &Method,
        path: &str,
        headers: &[(String, String)],
        body: &Bytes,
        keep_body: bool,
    ) -> Result<Answer, HttpFailure> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, &self.authority);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(body.clone()))
            .map_err(|_| HttpFailure::Io)?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|_| HttpFailure::Io)?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut len = 0u64;
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| HttpFailure::Io)?;
            if let Some(data) = frame.data_ref() {
                len += data.len() as u64;
                if keep_body {
                    kept.extend_from_slice(data);
                }
            }
        }
        self.idle.lock().push(sender);
        Ok(Answer {
            status,
            body: Bytes::from(kept),
            len,
        })
    }
}

/// `host:port` and path-and-query of an `http://` URL.
pub fn split_http_url(url: &str) -> anyhow::Result<(String, String)> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("bad URL {url:?}: {e}"))?;
    anyhow::ensure!(
        parsed.scheme() == "http",
        "{url:?}: only http:// URLs are supported by this driver"
    );
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("{url:?} has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut path = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok((format!("{host}:{port}"), path))
}
