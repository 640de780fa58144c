//! One RTMP connection: handshake, then publish or play through the hub.

use std::collections::VecDeque;
use std::future::pending;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::guard::ChunkGuard;
use super::Context;
use crate::hub::{Frame, FrameKind, Protocol, Publisher, Subscription};

const READ_BUF: usize = 64 * 1024;

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
    /// The peer broke the RTMP protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A publisher sent no media for too long.
    #[error("publisher silent for {0:?}")]
    Silent(Duration),
    /// A media message was malformed.
    #[error(transparent)]
    Media(#[from] crate::hub::MediaError),
    /// The screening of declared sizes failed.
    #[error(transparent)]
    Guard(#[from] super::GuardError),
}

struct Play {
    stream_id: u32,
    sub: Subscription,
}

struct Conn {
    ctx: Context,
    peer: SocketAddr,
    socket: TcpStream,
    session: ServerSession,
    guard: ChunkGuard,
    publisher: Option<Publisher>,
    play: Option<Play>,
    out: Vec<u8>,
    refused: bool,
}

/// Runs a connection to completion. `Ok` means the peer left normally.
pub async fn run(
    mut socket: TcpStream,
    peer: SocketAddr,
    ctx: Context,
) -> Result<(), SessionError> {
    let deadline = Duration::from_secs_f64(ctx.limits.handshake_timeout_secs);
    let leftover = tokio::time::timeout(deadline, handshake(&mut socket))
        .await
        .map_err(|_| SessionError::HandshakeTimeout)??;
    let (session, results) = ServerSession::new(ServerSessionConfig::new())
        .map_err(|e| SessionError::Protocol(e.to_string()))?;
    let mut conn = Conn {
        guard: ChunkGuard::new(ctx.limits.clone()),
        ctx,
        peer,
        socket,
        session,
        publisher: None,
        play: None,
        out: Vec::new(),
        refused: false,
    };
    conn.handle_results(results).await?;
    if !leftover.is_empty() {
        conn.input(&leftover).await?;
    }
    conn.flush().await?;
    let result = conn.serve().await;
    if let Some(p) = &conn.publisher {
        tracing::info!(peer = %conn.peer, stream = p.key(), "publish ended");
    }
    result
}

async fn handshake(socket: &mut TcpStream) -> Result<Vec<u8>, SessionError> {
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

async fn next_frame(play: &mut Option<Play>) -> Option<Frame> {
    match play {
        Some(p) => p.sub.recv().await,
        None => pending().await,
    }
}

async fn kicked(publisher: &Option<Publisher>) {
    match publisher {
        Some(p) => p.kicked().await,
        None => pending().await,
    }
}

impl Conn {
    async fn serve(&mut self) -> Result<(), SessionError> {
        let mut buf = vec![0u8; READ_BUF];
        let silence = self.ctx.publisher_timeout;
        loop {
            let publishing = self.publisher.is_some();
            tokio::select! {
                read = async {
                    if publishing {
                        tokio::time::timeout(silence, self.socket.read(&mut buf)).await
                    } else {
                        Ok(self.socket.read(&mut buf).await)
                    }
                } => {
                    let n = match read {
                        Ok(r) => r?,
                        Err(_) => return Err(SessionError::Silent(silence)),
                    };
                    if n == 0 {
                        return Ok(());
                    }
                    self.ctx.metrics.rtmp_bytes_in.inc_by(n as u64);
                    self.input(&buf[..n]).await?;
                }
                frame = next_frame(&mut self.play) => match frame {
                    Some(f) => self.forward(f)?,
                    None => return Ok(()),
                },
                _ = kicked(&self.publisher) => {
                    tracing::info!(peer = %self.peer, "publisher replaced by a newer one");
                    return Ok(());
                }
            }
            self.flush().await?;
            if self.refused {
                return Ok(());
            }
        }
    }

    async fn input(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        // The chunk decoder can panic on some malformed headers; contain it to this connection.
        let guard = &mut self.guard;
        catch_unwind(AssertUnwindSafe(|| guard.check(bytes)))
            .map_err(|_| SessionError::Protocol("malformed chunk header".into()))??;
        let session = &mut self.session;
        let results = catch_unwind(AssertUnwindSafe(|| session.handle_input(bytes)))
            .map_err(|_| SessionError::Protocol("malformed chunk header".into()))?
            .map_err(|e| SessionError::Protocol(e.to_string()))?;
        self.handle_results(results).await
    }

    async fn handle_results(
        &mut self,
        results: Vec<ServerSessionResult>,
    ) -> Result<(), SessionError> {
        let mut queue: VecDeque<ServerSessionResult> = results.into();
        while let Some(result) = queue.pop_front() {
            match result {
                ServerSessionResult::OutboundResponse(packet) => self.out.extend(packet.bytes),
                ServerSessionResult::RaisedEvent(event) => queue.extend(self.event(event).await?),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    async fn event(
        &mut self,
        event: ServerSessionEvent,
    ) -> Result<Vec<ServerSessionResult>, SessionError> {
        let proto =
            |e: rml_rtmp::sessions::ServerSessionError| SessionError::Protocol(e.to_string());
        match event {
            ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                self.session.accept_request(request_id).map_err(proto)
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => self.publish(request_id, &app_name, &stream_key).await,
            ServerSessionEvent::PublishStreamFinished { .. } => {
                self.publisher = None;
                Ok(Vec::new())
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Some(p) = self.publisher.as_mut() {
                    p.set_metadata(metadata);
                }
                Ok(Vec::new())
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                self.media(FrameKind::Video, timestamp, data)?;
                Ok(Vec::new())
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                self.media(FrameKind::Audio, timestamp, data)?;
                Ok(Vec::new())
            }
            ServerSessionEvent::PlayStreamRequested {
                request_id,
                app_name,
                stream_key,
                stream_id,
                ..
            } => self.play(request_id, &app_name, &stream_key, stream_id),
            ServerSessionEvent::PlayStreamFinished { .. } => {
                self.play = None;
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    fn media(
        &mut self,
        kind: FrameKind,
        timestamp: RtmpTimestamp,
        data: Bytes,
    ) -> Result<(), SessionError> {
        let Some(p) = self.publisher.as_mut() else {
            return Ok(());
        };
        let len = data.len() as u64;
        let dropped = match kind {
            FrameKind::Video => p.push_video(timestamp.value, data)?,
            _ => p.push_audio(timestamp.value, data)?,
        };
        let m = &self.ctx.metrics;
        m.frames_in.inc();
        m.media_bytes_in.inc_by(len);
        if dropped > 0 {
            m.viewer_frames_dropped.inc_by(dropped);
        }
        Ok(())
    }

    async fn publish(
        &mut self,
        request_id: u32,
        app: &str,
        stream_key: &str,
    ) -> Result<Vec<ServerSessionResult>, SessionError> {
        let (name, query) = stream_key.split_once('?').unwrap_or((stream_key, ""));
        let key = format!("{app}/{name}");
        self.refused = true;
        let refuse = |session: &mut ServerSession, reason: &str| {
            session
                .reject_request(request_id, "NetStream.Publish.BadName", reason)
                .map_err(|e| SessionError::Protocol(e.to_string()))
        };
        if name.is_empty() || self.publisher.is_some() {
            self.ctx.metrics.publish_refused.inc();
            return refuse(&mut self.session, "invalid stream name");
        }
        if let Some(hook) = &self.ctx.hook {
            if let Err(reason) = hook.allow(app, name, query, self.peer).await {
                tracing::info!(peer = %self.peer, stream = key, "publish refused: {reason}");
                self.ctx.metrics.publish_refused.inc();
                return refuse(&mut self.session, &reason);
            }
        }
        match self.ctx.hub.publish(&key) {
            Ok(p) => {
                self.refused = false;
                tracing::info!(peer = %self.peer, stream = key, "publish started");
                self.ctx.metrics.publish_accepted.inc();
                self.publisher = Some(p);
                self.session
                    .accept_request(request_id)
                    .map_err(|e| SessionError::Protocol(e.to_string()))
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, stream = key, "publish refused: {e}");
                self.ctx.metrics.publish_refused.inc();
                refuse(&mut self.session, &e.to_string())
            }
        }
    }

    fn play(
        &mut self,
        request_id: u32,
        app: &str,
        stream_key: &str,
        stream_id: u32,
    ) -> Result<Vec<ServerSessionResult>, SessionError> {
        let name = stream_key.split_once('?').map_or(stream_key, |(n, _)| n);
        let key = format!("{app}/{name}");
        let proto =
            |e: rml_rtmp::sessions::ServerSessionError| SessionError::Protocol(e.to_string());
        let Some(sub) = self.ctx.hub.subscribe(&key, Protocol::Rtmp) else {
            tracing::info!(peer = %self.peer, stream = key, "play refused: no such stream");
            self.refused = true;
            return self
                .session
                .reject_request(
                    request_id,
                    "NetStream.Play.StreamNotFound",
                    "no such stream",
                )
                .map_err(proto);
        };
        tracing::info!(peer = %self.peer, stream = key, "rtmp play started");
        let results = self.session.accept_request(request_id).map_err(proto)?;
        self.play = Some(Play { stream_id, sub });
        Ok(results)
    }

    /// Serializes one frame, and any others already queued, for the playing peer.
    fn forward(&mut self, first: Frame) -> Result<(), SessionError> {
        let Some(play) = self.play.as_mut() else {
            return Ok(());
        };
        let mut frame = Some(first);
        let mut sent = 0u64;
        while let Some(f) = frame.take() {
            let ts = RtmpTimestamp::new(f.timestamp32());
            let droppable = !f.keyframe && !f.header;
            let packet = match f.kind {
                FrameKind::Video => {
                    self.session
                        .send_video_data(play.stream_id, f.payload, ts, droppable)
                }
                FrameKind::Audio => {
                    self.session
                        .send_audio_data(play.stream_id, f.payload, ts, droppable)
                }
                FrameKind::Script => match play.sub.metadata() {
                    Some(meta) => self.session.send_metadata(play.stream_id, &meta),
                    None => continue,
                },
            }
            .map_err(|e| SessionError::Protocol(e.to_string()))?;
            sent += packet.bytes.len() as u64;
            self.out.extend(packet.bytes);
            if self.out.len() < READ_BUF {
                frame = play.sub.try_recv();
            }
        }
        self.ctx.metrics.rtmp_bytes_out.inc_by(sent);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        if !self.out.is_empty() {
            self.socket.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }
}
