//! One RTMP connection: the handshake, then media-core's server session between the socket
//! and the hub. Read, feed, handle events, write: the protocol lives in the session.

use std::collections::VecDeque;
use std::future::pending;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use media_core::rtmp::{
    MediaKind, RtmpError, ServerConfig, ServerEvent, ServerSession, StreamMetadata,
};
use media_core::token::Action;
use net_guard::DeadlineIo;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{writev, Context, CHUNK_SIZE};
use crate::hub::{Frame, Protocol, Publisher, Subscription, RTMP_STREAM_ID};

/// Read buffer of a publishing connection.
const READ_BUF: usize = 64 * 1024;
/// Read buffer until a connection publishes: players only send small control messages.
const SMALL_READ_BUF: usize = 4 * 1024;

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Socket error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The handshake did not complete in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The handshake bytes were invalid.
    #[error("handshake: {0}")]
    Handshake(String),
    /// The peer broke the RTMP protocol or a limit.
    #[error(transparent)]
    Protocol(#[from] RtmpError),
    /// A media message was malformed.
    #[error(transparent)]
    Media(#[from] crate::hub::MediaError),
}

/// A connection's socket, closed by the listener's idle deadline when nothing moves.
pub type Socket = DeadlineIo<TcpStream>;

struct Play {
    stream_id: u32,
    sub: Subscription,
}

struct Conn {
    ctx: Context,
    peer: SocketAddr,
    socket: Socket,
    session: ServerSession,
    app: String,
    publisher: Option<Publisher>,
    play: Option<Play>,
    out: VecDeque<Bytes>,
    batch: Vec<Frame>,
    refused: bool,
}

/// Runs a connection to completion. `Ok` means the peer left normally.
pub async fn run(mut socket: Socket, peer: SocketAddr, ctx: Context) -> Result<(), SessionError> {
    let deadline = Duration::from_secs_f64(ctx.limits.handshake_timeout_secs);
    let leftover = tokio::time::timeout(deadline, handshake(&mut socket))
        .await
        .map_err(|_| SessionError::HandshakeTimeout)??;
    let config = ServerConfig {
        chunk_size: CHUNK_SIZE,
        limits: ctx.limits.chunk_limits(),
        publisher_timeout: ctx.publisher_timeout,
        ..ServerConfig::default()
    };
    let mut conn = Conn {
        ctx,
        peer,
        socket,
        session: ServerSession::new(config),
        app: String::new(),
        publisher: None,
        play: None,
        out: VecDeque::new(),
        batch: Vec::new(),
        refused: false,
    };
    conn.input(&leftover).await?;
    conn.flush().await?;
    let result = conn.serve().await;
    if let Some(p) = &conn.publisher {
        tracing::info!(peer = %conn.peer, stream = p.key(), "publish ended");
    }
    result
}

async fn handshake(socket: &mut Socket) -> Result<Vec<u8>, SessionError> {
    let mut hs = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Err(SessionError::Handshake(
                "peer closed during handshake".into(),
            ));
        }
        match hs
            .process_bytes(&buf[..n])
            .map_err(|e| SessionError::Handshake(e.to_string()))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

/// Waits for the playing viewer's next batch of frames; never resolves when not playing.
async fn next_batch(play: &mut Option<Play>, batch: &mut Vec<Frame>) -> bool {
    match play {
        Some(p) => p.sub.recv_batch(batch).await,
        None => pending().await,
    }
}

impl Conn {
    async fn serve(&mut self) -> Result<(), SessionError> {
        let mut buf = vec![0u8; SMALL_READ_BUF];
        // The silence timer is armed at the session's deadline and re-armed only when it fires
        // (the session then says whether input arrived meanwhile), not on every message.
        let far = || Instant::now() + Duration::from_secs(86_400);
        let silence = tokio::time::sleep_until(far());
        tokio::pin!(silence);
        let mut armed = false;
        let mut kicked = None;
        loop {
            if let Some(p) = self.publisher.as_ref().filter(|_| kicked.is_none()) {
                buf.resize(READ_BUF, 0);
                kicked = Some(Box::pin(p.kicked()));
            }
            if !armed {
                if let Some(at) = self.session.timeout() {
                    silence.as_mut().reset(Instant::from_std(at));
                    armed = true;
                }
            }
            tokio::select! {
                read = self.socket.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.ctx.metrics.rtmp_bytes_in.inc_by(n as u64);
                    self.input(&buf[..n]).await?;
                }
                open = next_batch(&mut self.play, &mut self.batch) => {
                    if !open {
                        if let Some(p) = self.play.take() {
                            self.session.end_play(p.stream_id);
                            self.flush().await?;
                        }
                        return Ok(());
                    }
                    self.forward();
                }
                _ = &mut silence, if armed => {
                    self.session.handle_timeout(std::time::Instant::now())?;
                    silence.as_mut().reset(far());
                    armed = false;
                }
                _ = async { kicked.as_mut()?.await; Some(()) }, if kicked.is_some() => {
                    tracing::info!(peer = %self.peer, "publisher replaced by a newer one");
                    return Ok(());
                }
            }
            if self.publisher.is_none() {
                kicked = None;
            }
            self.flush().await?;
            if self.refused {
                return Ok(());
            }
        }
    }

    async fn input(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.session.feed(std::time::Instant::now(), bytes)?;
        while let Some(event) = self.session.poll_event() {
            self.event(event).await?;
        }
        Ok(())
    }

    async fn event(&mut self, event: ServerEvent) -> Result<(), SessionError> {
        match event {
            ServerEvent::Connect { app, .. } => {
                self.app = app;
                self.session.accept_connect()?;
            }
            ServerEvent::Publish { stream_id, name } => self.publish(stream_id, &name).await?,
            ServerEvent::Play { stream_id, name } => self.play(stream_id, &name)?,
            ServerEvent::Media {
                kind,
                timestamp,
                payload,
            } => self.media(kind, timestamp, payload)?,
            ServerEvent::Metadata(values) => {
                if let Some(p) = self.publisher.as_mut() {
                    p.set_metadata(StreamMetadata::from_values(&values));
                }
            }
            ServerEvent::Closed { stream_id } => {
                if self.play.as_ref().is_some_and(|p| p.stream_id == stream_id) {
                    self.play = None;
                } else if self.publisher.is_some() {
                    self.publisher = None;
                }
            }
        }
        Ok(())
    }

    fn media(&mut self, kind: MediaKind, timestamp: u32, data: Bytes) -> Result<(), SessionError> {
        let Some(p) = self.publisher.as_mut() else {
            return Ok(());
        };
        let len = data.len() as u64;
        let dropped = match kind {
            MediaKind::Video => p.push_video(timestamp, data)?,
            MediaKind::Audio => p.push_audio(timestamp, data)?,
            MediaKind::Data => 0,
        };
        let m = &self.ctx.metrics;
        m.frames_in.inc();
        m.media_bytes_in.inc_by(len);
        if dropped > 0 {
            m.viewer_frames_dropped.inc_by(dropped);
        }
        Ok(())
    }

    async fn publish(&mut self, stream_id: u32, stream_key: &str) -> Result<(), RtmpError> {
        let (name, query) = stream_key.split_once('?').unwrap_or((stream_key, ""));
        let app = self.app.clone();
        let key = format!("{app}/{name}");
        self.refused = true;
        let refuse = |conn: &mut Self, reason: &str| {
            conn.ctx.metrics.publish_refused.inc();
            conn.session
                .refuse(stream_id, "NetStream.Publish.BadName", reason)
        };
        if let Err(e) = check_key(&app, name) {
            tracing::info!(peer = %self.peer, "publish refused: {e}");
            return refuse(self, &e);
        }
        if self.publisher.is_some() || self.play.is_some() {
            return refuse(self, "this connection already publishes or plays");
        }
        if let Err(e) =
            self.ctx
                .auth
                .check(Action::Publish, &app, name, query, net_guard::unix_secs())
        {
            tracing::info!(peer = %self.peer, stream = key, "publish refused: {e}");
            return refuse(self, &e.to_string());
        }
        if let Some(hook) = &self.ctx.hook {
            if let Err(reason) = hook.allow(&app, name, query, self.peer).await {
                tracing::info!(peer = %self.peer, stream = key, "publish refused: {reason}");
                return refuse(self, &reason);
            }
        }
        match self.ctx.hub.publish(&key) {
            Ok(p) => {
                self.refused = false;
                tracing::info!(peer = %self.peer, stream = key, "publish started");
                self.ctx.metrics.publish_accepted.inc();
                self.publisher = Some(p);
                self.session.accept_publish(stream_id, name)
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, stream = key, "publish refused: {e}");
                refuse(self, &e.to_string())
            }
        }
    }

    fn play(&mut self, stream_id: u32, stream_key: &str) -> Result<(), RtmpError> {
        let name = stream_key.split_once('?').map_or(stream_key, |(n, _)| n);
        let key = format!("{}/{name}", self.app);
        if let Err(e) = check_key(&self.app, name) {
            tracing::info!(peer = %self.peer, "play refused: {e}");
            self.refused = true;
            return self
                .session
                .refuse(stream_id, "NetStream.Play.StreamNotFound", &e);
        }
        let query = stream_key.split_once('?').map_or("", |(_, q)| q);
        if let Err(e) =
            self.ctx
                .auth
                .check(Action::Play, &self.app, name, query, net_guard::unix_secs())
        {
            tracing::info!(peer = %self.peer, stream = key, "play refused: {e}");
            self.ctx.metrics.play_refused.inc();
            self.refused = true;
            return self
                .session
                .refuse(stream_id, "NetStream.Play.Failed", &e.to_string());
        }
        let sub = match self.ctx.hub.subscribe(&key, Protocol::Rtmp) {
            Some(sub) if self.publisher.is_none() && self.play.is_none() => sub,
            _ => {
                tracing::info!(peer = %self.peer, stream = key, "play refused: no such stream");
                self.refused = true;
                return self.session.refuse(
                    stream_id,
                    "NetStream.Play.StreamNotFound",
                    "no such stream",
                );
            }
        };
        tracing::info!(peer = %self.peer, stream = key, "rtmp play started");
        self.play = Some(Play { stream_id, sub });
        self.session.accept_play(stream_id, name)
    }

    /// Queues the batch just received for the playing peer: each frame's shared wire form,
    /// or its own encoding when the session cannot take the shared one.
    fn forward(&mut self) {
        let Some(play) = self.play.as_ref() else {
            self.batch.clear();
            return;
        };
        if let Some(b) = self.session.take_output() {
            self.out.push_back(b);
        }
        let mut sent = 0u64;
        for f in self.batch.drain(..) {
            let shared = (play.stream_id == RTMP_STREAM_ID)
                .then(|| f.rtmp_wire(CHUNK_SIZE))
                .flatten();
            let bytes = match shared {
                Some(b) => b,
                None => {
                    self.ctx.metrics.rtmp_wire_fallbacks.inc();
                    self.session.send_media(
                        play.stream_id,
                        f.kind.rtmp(),
                        f.timestamp32(),
                        &f.payload,
                    );
                    match self.session.take_output() {
                        Some(b) => b,
                        None => continue,
                    }
                }
            };
            sent += bytes.len() as u64;
            self.out.push_back(bytes);
        }
        self.ctx.metrics.rtmp_bytes_out.inc_by(sent);
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        if let Some(b) = self.session.take_output() {
            self.out.push_back(b);
        }
        writev::write_all(&mut self.socket, &mut self.out).await?;
        Ok(())
    }
}

/// Checks an app and stream name pair before it becomes a stream key.
fn check_key(app: &str, name: &str) -> Result<(), String> {
    media_core::name::check(app).map_err(|e| format!("bad app name {app:?}: {e}"))?;
    media_core::name::check(name).map_err(|e| format!("bad stream name {name:?}: {e}"))
}
