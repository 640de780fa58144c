//! A minimal HTTP/1.1 keep-alive client for the generator's hot path: requests are prebuilt
//! bytes, responses are parsed with `httparse` straight from one reusable buffer, bodies are
//! counted (and kept only when asked). A general-purpose client costs several times more CPU
//! per request (task hand-offs, header maps), which would make the generator the bottleneck
//! long before the server; this is the wrk approach in a few hundred lines.

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most response headers parsed.
const MAX_HEADERS: usize = 64;
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Read buffer per connection.
const READ_CHUNK: usize = 16 * 1024;
/// Largest body kept for the caller (answers to parse); larger ones fail the request.
const MAX_KEPT_BODY: usize = 1 << 20;

/// Why a request failed, as an error kind for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFailure {
    /// TCP connect failed.
    Connect,
    /// No answer within the timeout.
    Timeout,
    /// The connection broke mid-request.
    Io,
    /// The response was not valid HTTP/1.1.
    Protocol,
    /// A body to keep was larger than [`MAX_KEPT_BODY`].
    TooLarge,
}

impl HttpFailure {
    /// The error kind.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpFailure::Connect => "connect",
            HttpFailure::Timeout => "timeout",
            HttpFailure::Io => "io",
            HttpFailure::Protocol => "bad_response",
            HttpFailure::TooLarge => "body_too_large",
        }
    }
}

/// A completed exchange.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body bytes (kept only when asked for).
    pub body: Bytes,
    /// Body length.
    pub len: u64,
}

/// Longest a connection is kept idle for reuse: below the keep-alive timeouts servers
/// commonly use (5 s in Node.js, 10 s for our servers' header deadline, 75 s in nginx), so a
/// request is not sent on a connection the server is closing.
const MAX_IDLE: Duration = Duration::from_secs(4);

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    idle_since: Instant,
}

impl Conn {
    /// True if the connection can carry another request: idle briefly, and the server has
    /// neither closed it nor sent anything unasked (a pooled connection's buffer is empty).
    fn reusable(&self, now: Instant) -> bool {
        if now.saturating_duration_since(self.idle_since) > MAX_IDLE {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// Keep-alive connections to one `host:port`.
pub struct Pool {
    authority: String,
    idle: Mutex<Vec<Conn>>,
    timeout: Duration,
}

/// The bytes of one request.
pub fn build_request(
    method: &str,
    path: &str,
    authority: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Bytes {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n").as_bytes());
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() || !matches!(method, "GET" | "HEAD") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
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

    /// The `host:port` this pool connects to.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// An idle keep-alive connection still open, or a new one.
    pub async fn checkout(&self) -> Result<Conn, HttpFailure> {
        let now = Instant::now();
        loop {
            let Some(c) = self.idle.lock().pop() else {
                break;
            };
            if c.reusable(now) {
                return Ok(c);
            }
        }
        let connect = TcpStream::connect(self.authority.as_str());
        let stream = match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(_)) => return Err(HttpFailure::Connect),
            Err(_) => return Err(HttpFailure::Timeout),
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            idle_since: now,
        })
    }

    /// Sends `request` on `conn` and reads the answer; the connection returns to the pool if
    /// it can be reused. `keep_body` keeps the body bytes in the answer.
    pub async fn send(
        &self,
        mut conn: Conn,
        request: &[u8],
        keep_body: bool,
    ) -> Result<Answer, HttpFailure> {
        let head_only = request.starts_with(b"HEAD ");
        let exchange = conn.exchange(request, keep_body, head_only);
        let (answer, reusable) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r?,
            Err(_) => return Err(HttpFailure::Timeout),
        };
        if reusable {
            conn.idle_since = Instant::now();
            self.idle.lock().push(conn);
        }
        Ok(answer)
    }
}

/// How the body of a response is delimited.
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

impl Conn {
    async fn fill(&mut self) -> Result<usize, HttpFailure> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|_| HttpFailure::Io)
    }

    async fn exchange(
        &mut self,
        request: &[u8],
        keep_body: bool,
        head_only: bool,
    ) -> Result<(Answer, bool), HttpFailure> {
        self.buf.clear();
        self.stream
            .write_all(request)
            .await
            .map_err(|_| HttpFailure::Io)?;
        let (status, framing, mut reusable, head_len) = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpFailure::Protocol);
            }
            if self.fill().await? == 0 {
                return Err(HttpFailure::Io);
            }
        };
        self.buf.advance(head_len);
        let no_body = head_only || status == 204 || status == 304 || (100..200).contains(&status);
        let mut kept = BytesMut::new();
        let mut len = 0u64;
        if !no_body {
            match framing {
                Framing::Length(n) => loop {
                    let take = usize::try_from(n - len)
                        .unwrap_or(usize::MAX)
                        .min(self.buf.len());
                    if keep_body {
                        keep(&mut kept, &self.buf[..take])?;
                    }
                    self.buf.advance(take);
                    len += take as u64;
                    if len == n {
                        break;
                    }
                    if self.fill().await? == 0 {
                        return Err(HttpFailure::Io);
                    }
                },
                Framing::Chunked => {
                    len = self.read_chunked(keep_body.then_some(&mut kept)).await?;
                }
                Framing::UntilClose => {
                    loop {
                        len += self.buf.len() as u64;
                        if keep_body {
                            keep(&mut kept, &self.buf)?;
                        }
                        self.buf.clear();
                        if self.fill().await? == 0 {
                            break;
                        }
                    }
                    reusable = false;
                }
            }
        }
        reusable &= self.buf.is_empty();
        Ok((
            Answer {
                status,
                body: kept.freeze(),
                len,
            },
            reusable,
        ))
    }

    async fn read_chunked(&mut self, mut kept: Option<&mut BytesMut>) -> Result<u64, HttpFailure> {
        let mut total = 0u64;
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if self.buf.len() > 1024 || self.fill().await? == 0 {
                    return Err(HttpFailure::Protocol);
                }
            };
            let size_text =
                std::str::from_utf8(&self.buf[..line_end]).map_err(|_| HttpFailure::Protocol)?;
            let size_hex = size_text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_hex, 16).map_err(|_| HttpFailure::Protocol)?;
            self.buf.advance(line_end + 2);
            // The chunk plus its CRLF (for the last chunk: the empty trailer line).
            let need = size.checked_add(2).ok_or(HttpFailure::Protocol)?;
            let mut got = 0u64;
            while got < need {
                if self.buf.is_empty() && self.fill().await? == 0 {
                    return Err(HttpFailure::Io);
                }
                let take = (need - got).min(self.buf.len() as u64) as usize;
                let data_end = take.min(size.saturating_sub(got) as usize);
                if let Some(k) = kept.as_deref_mut() {
                    keep(k, &self.buf[..data_end])?;
                }
                self.buf.advance(take);
                got += take as u64;
            }
            total = total.checked_add(size).ok_or(HttpFailure::Protocol)?;
            if size == 0 {
                return Ok(total);
            }
        }
    }
}

/// Appends body bytes to what is kept, up to [`MAX_KEPT_BODY`].
fn keep(kept: &mut BytesMut, data: &[u8]) -> Result<(), HttpFailure> {
    if kept.len() + data.len() > MAX_KEPT_BODY {
        return Err(HttpFailure::TooLarge);
    }
    kept.extend_from_slice(data);
    Ok(())
}

/// Parses a response head: status, body framing, keep-alive, head length.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, Framing, bool, usize)>, HttpFailure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpFailure::Protocol),
    };
    let status = resp.code.ok_or(HttpFailure::Protocol)?;
    let mut framing = Framing::UntilClose;
    let mut keep_alive = resp.version == Some(1);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(HttpFailure::Protocol)?;
            if !matches!(framing, Framing::Chunked) {
                framing = Framing::Length(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value.to_ascii_lowercase().ends_with(b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = h.value.to_ascii_lowercase();
            if v == b"close" {
                keep_alive = false;
            } else if v == b"keep-alive" {
                keep_alive = true;
            }
        }
    }
    Ok(Some((status, framing, keep_alive, head_len)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request with the next canned response.
    async fn canned(responses: Vec<&'static [u8]>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            for r in responses {
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.expect("read");
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                // Split writes to exercise partial reads.
                let (a, b) = r.split_at(r.len() / 2);
                s.write_all(a).await.expect("write");
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.write_all(b).await.expect("write");
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_not_reused() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            // Each connection gets one keep-alive answer, then the server closes it, as a
            // server does when its keep-alive timeout passes.
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                drop(s);
            }
        });
        let pool = Pool::new(addr.clone(), Duration::from_secs(5));
        let req = build_request("POST", "/buy", &addr, &[], b"");
        for i in 0..3 {
            let conn = pool.checkout().await.expect("conn");
            let answer = pool.send(conn, &req, false).await;
            assert_eq!(answer.map(|a| a.status), Ok(200), "request {i}");
            // Let the server's close arrive before the next checkout.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn length_chunked_and_keep_alive() {
        let addr = canned(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close",
        ])
        .await;
        let pool = Pool::new(addr.clone(), Duration::from_secs(5));
        let req = build_request("GET", "/", &addr, &[], b"");
        let a = pool
            .send(pool.checkout().await.expect("conn"), &req, true)
            .await
            .expect("1");
        assert_eq!((a.status, &a.body[..], a.len), (200, &b"hello"[..], 5));
        let b = pool
            .send(pool.checkout().await.expect("reused"), &req, true)
            .await
            .expect("2");
        assert_eq!((b.status, &b.body[..], b.len), (404, &b"abcde"[..], 5));
        let c = pool
            .send(pool.checkout().await.expect("reused"), &req, false)
            .await
            .expect("3");
        assert_eq!((c.status, c.len), (204, 0));
        let d = pool
            .send(pool.checkout().await.expect("reused"), &req, true)
            .await
            .expect("4");
        assert_eq!(&d.body[..], b"until close");
        assert!(
            pool.idle.lock().is_empty(),
            "a closed connection is not reused"
        );
    }

    #[tokio::test]
    async fn absurd_chunk_sizes_and_bodies_too_large_to_keep_fail_the_request() {
        let addr = canned(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc",
        ])
        .await;
        let pool = Pool::new(addr.clone(), Duration::from_secs(5));
        let req = build_request("GET", "/", &addr, &[], b"");
        let conn = pool.checkout().await.expect("conn");
        let err = pool.send(conn, &req, false).await.err();
        assert_eq!(err, Some(HttpFailure::Protocol));
        let mut kept = BytesMut::new();
        assert_eq!(keep(&mut kept, &[0; MAX_KEPT_BODY]), Ok(()));
        assert_eq!(keep(&mut kept, b"x"), Err(HttpFailure::TooLarge));
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error() {
        let addr = canned(vec![b"SMTP ready\r\n\r\n"]).await;
        let pool = Pool::new(addr.clone(), Duration::from_secs(5));
        let req = build_request("POST", "/x", &addr, &[("a".into(), "b".into())], b"{}");
        assert!(req.starts_with(b"POST /x HTTP/1.1\r\nHost: "));
        assert!(req.ends_with(b"a: b\r\nContent-Length: 2\r\n\r\n{}"));
        let err = pool
            .send(pool.checkout().await.expect("conn"), &req, false)
            .await;
        assert_eq!(err.err(), Some(HttpFailure::Protocol));
    }
}
