//! Helpers: servers on port 0, a real redis-server on an ephemeral port, WebSocket clients.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use business_server::auth::{Claims, Role, TokenSigner};
use business_server::{Config, Running, Server};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream as TokioTcp;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret";
pub const ADMIN: &str = "test-admin";

/// Serializes the heavy tests so their timings do not disturb each other.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A config on port 0 with the test secrets.
pub fn config(redis: Option<&RedisServer>) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        redis: redis.map(|r| r.url.clone()),
        admin_key: ADMIN.into(),
        token_secret: SECRET.into(),
        ..Config::default()
    }
}

pub async fn start(config: Config) -> Running {
    Server::bind(config).await.expect("server starts")
}

pub fn token(user: &str, room: &str, role: Role) -> String {
    TokenSigner::new(SECRET.as_bytes()).issue(&Claims {
        user: user.into(),
        room: room.into(),
        role,
        exp: business_server::server::now_secs() + 600,
    })
}

/// A redis-server child process on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub url: String,
}

impl RedisServer {
    /// Starts redis-server, or returns `None` (with a printed reason) when it is not
    /// installed. With `CI=true` a missing binary fails the test.
    pub fn start() -> Option<Self> {
        let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(String::from)
            .or_else(|| {
                Command::new("redis-server")
                    .arg("--version")
                    .output()
                    .ok()
                    .map(|_| "redis-server".to_string())
            });
        let Some(bin) = bin else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("redis-server is not installed and CI=true: install redis-server");
            }
            eprintln!("SKIPPED: redis-server is not installed; Redis tests not run");
            return None;
        };
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if ping(port) {
                    return Some(Self {
                        child,
                        url: format!("redis://127.0.0.1:{port}/"),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .map(|n| buf[..n].starts_with(b"+PONG"))
            .unwrap_or(false)
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Backends every shared scenario runs on.
pub enum Backend {
    Memory,
    Redis,
}

/// Starts `n` instances on `backend` (all on one Redis for `Redis`); `None` when skipped.
pub async fn instances(
    backend: Backend,
    n: usize,
    tweak: impl Fn(&mut Config),
) -> Option<(Vec<Running>, Option<RedisServer>)> {
    let redis = match backend {
        Backend::Memory => None,
        Backend::Redis => Some(RedisServer::start()?),
    };
    let mut out = Vec::new();
    for _ in 0..n {
        let mut c = config(redis.as_ref());
        tweak(&mut c);
        out.push(start(c).await);
    }
    Some((out, redis))
}

pub type Ws = WebSocketStream<MaybeTlsStream<TokioTcp>>;

/// A WebSocket member that reads messages one at a time, batches expanded into events.
pub struct Client {
    pub ws: Ws,
    buffered: VecDeque<Value>,
}

pub fn ws_url(addr: SocketAddr, room: &str, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("ws://{addr}/ws?room={room}&token={t}"),
        None => format!("ws://{addr}/ws?room={room}"),
    }
}

impl Client {
    pub async fn connect(addr: SocketAddr, room: &str, token: Option<&str>) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(ws_url(addr, room, token))
            .await
            .expect("websocket connects");
        Client {
            ws,
            buffered: VecDeque::new(),
        }
    }

    /// Connects and consumes the `welcome`.
    pub async fn join(addr: SocketAddr, room: &str, user: &str) -> Client {
        let t = token(user, room, Role::Viewer);
        let mut c = Client::connect(addr, room, Some(&t)).await;
        let w = c.next().await;
        assert_eq!(w["type"], "welcome", "{w}");
        c
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, s: String) {
        self.ws.send(Message::text(s)).await.expect("send");
    }

    /// Next message or event, within 10 s.
    pub async fn next(&mut self) -> Value {
        loop {
            if let Some(v) = self.buffered.pop_front() {
                return v;
            }
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("message within 10 s")
                .expect("connection open")
                .expect("frame");
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sends JSON");
                    if v["type"] == "batch" {
                        if let Some(events) = v["events"].as_array() {
                            self.buffered.extend(events.iter().cloned());
                        }
                    } else {
                        self.buffered.push_back(v);
                    }
                }
                Message::Close(f) => panic!("unexpected close {f:?}"),
                _ => {}
            }
        }
    }

    /// Skips messages until one matches.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next().await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// Next message of type `error` or `pong`/`purchase_result` (skipping room events).
    pub async fn direct(&mut self) -> Value {
        self.until(|v| {
            matches!(
                v["type"].as_str(),
                Some("error" | "pong" | "purchase_result" | "welcome")
            )
        })
        .await
    }

    /// Reads until the close frame; returns its code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("close within 20 s");
            match msg {
                Some(Ok(Message::Close(Some(f)))) => {
                    return (u16::from(f.code), f.reason.to_string())
                }
                Some(Ok(Message::Close(None))) => {
                    return (u16::from(CloseCode::Status), String::new())
                }
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

/// Reads one counter from `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

/// POSTs `body` as JSON to `url`, with the admin key if given: the status and the JSON answer
/// (null when it is not JSON).
pub async fn post_json(url: String, admin: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some(k) = admin {
        req = req.header("x-admin-key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// One purchase of `sale` by `user` with idempotency key `key`, which must answer 200.
pub async fn buy(addr: SocketAddr, sale: &str, user: &str, key: &str) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/sales/{sale}/purchase"))
        .bearer_auth(token(user, "*", Role::Viewer))
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}
