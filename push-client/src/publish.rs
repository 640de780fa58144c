//! RTMP publishing: connect, handshake, `publish`, then paced media until stopped.

use std::time::Duration;

use rml_amf0::Amf0Value;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::pace::Pacer;
use crate::source::{MediaSource, MediaTag, TagKind};
use crate::stamp::{unix_micros, Stamper};
use crate::stats::{PublishState, PublishStats};
use crate::url::RtmpUrl;

const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of a publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Stamp wall-clock time into every video frame (SEI).
    pub stamp: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self { stamp: true }
    }
}

struct Conn<'a> {
    socket: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
    stats: &'a PublishStats,
    stamper: Option<Stamper>,
}

impl Conn<'_> {
    async fn send(
        &mut self,
        results: Vec<ClientSessionResult>,
    ) -> anyhow::Result<Vec<ClientSessionEvent>> {
        let mut events = Vec::new();
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => {
                    self.stats.add_bytes(p.bytes.len());
                    self.socket.write_all(&p.bytes).await?;
                }
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }

    async fn read_events(&mut self) -> anyhow::Result<Vec<ClientSessionEvent>> {
        let n = self.socket.read(&mut self.buf).await?;
        self.on_input(n).await
    }

    /// Handles `n` bytes just read into the buffer (0 means the server closed).
    async fn on_input(&mut self, n: usize) -> anyhow::Result<Vec<ClientSessionEvent>> {
        if n == 0 {
            anyhow::bail!("server closed the connection");
        }
        let results = self
            .session
            .handle_input(&self.buf[..n])
            .map_err(|e| anyhow::anyhow!("rtmp: {e}"))?;
        self.send(results).await
    }

    async fn wait_for(
        &mut self,
        what: &str,
        done: impl Fn(&ClientSessionEvent) -> bool,
    ) -> anyhow::Result<()> {
        tokio::time::timeout(SETUP_TIMEOUT, async {
            loop {
                for e in self.read_events().await? {
                    match e {
                        ClientSessionEvent::ConnectionRequestRejected { description } => {
                            anyhow::bail!("connect refused: {description}")
                        }
                        ClientSessionEvent::UnhandleableOnStatusCode { code } => {
                            anyhow::bail!("server answered {code}")
                        }
                        ClientSessionEvent::UnknownTransactionResultReceived {
                            additional_values,
                            ..
                        } => anyhow::bail!("server refused: {}", status_text(&additional_values)),
                        e if done(&e) => return Ok(()),
                        _ => {}
                    }
                }
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("timed out waiting for {what}"))?
    }

    async fn send_tag(&mut self, tag: MediaTag) -> anyhow::Result<()> {
        let tag = match self.stamper.as_mut() {
            Some(s) => s.stamp(tag, unix_micros()),
            None => tag,
        };
        let ts = RtmpTimestamp::new((tag.dts & 0xFFFF_FFFF) as u32);
        let result = match tag.kind {
            TagKind::Video => self
                .session
                .publish_video_data(tag.payload.clone(), ts, !tag.key),
            TagKind::Audio => self
                .session
                .publish_audio_data(tag.payload.clone(), ts, false),
        }
        .map_err(|e| anyhow::anyhow!("rtmp: {e}"))?;
        self.stats.add_frame();
        self.send(vec![result]).await?;
        Ok(())
    }
}

/// `code: description` from an RTMP status object.
fn status_text(values: &[Amf0Value]) -> String {
    let Some(Amf0Value::Object(props)) = values.first() else {
        return "no reason given".to_string();
    };
    let field = |k: &str| match props.get(k) {
        Some(Amf0Value::Utf8String(s)) => s.as_str(),
        _ => "",
    };
    format!("{}: {}", field("code"), field("description"))
}

async fn handshake(socket: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut hs = Handshake::new(PeerType::Client);
    let p0p1 = hs
        .generate_outbound_p0_and_p1()
        .map_err(|e| anyhow::anyhow!("handshake: {e}"))?;
    socket.write_all(&p0p1).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            anyhow::bail!("server closed the connection during the handshake");
        }
        match hs
            .process_bytes(&buf[..n])
            .map_err(|e| anyhow::anyhow!("handshake: {e}"))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await?
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

/// Publishes `source` to `url` in real time until `stop` fires or the connection fails.
pub async fn publish(
    url: &RtmpUrl,
    source: &mut dyn MediaSource,
    options: &PublishOptions,
    stop: &CancellationToken,
    stats: &PublishStats,
) -> anyhow::Result<()> {
    stats.set_state(PublishState::Connecting);
    let mut socket = tokio::time::timeout(SETUP_TIMEOUT, TcpStream::connect(&url.addr))
        .await
        .map_err(|_| anyhow::anyhow!("timed out connecting to {}", url.addr))??;
    socket.set_nodelay(true)?;
    let leftover = tokio::time::timeout(SETUP_TIMEOUT, handshake(&mut socket))
        .await
        .map_err(|_| anyhow::anyhow!("handshake timed out"))??;
    let mut config = ClientSessionConfig::new();
    config.chunk_size = 4096;
    config.tc_url = Some(format!("rtmp://{}/{}", url.addr, url.app));
    let (session, results) =
        ClientSession::new(config).map_err(|e| anyhow::anyhow!("rtmp: {e}"))?;
    let mut conn = Conn {
        socket,
        session,
        buf: vec![0u8; 64 * 1024],
        stats,
        stamper: options.stamp.then(Stamper::new),
    };
    conn.send(results).await?;
    if !leftover.is_empty() {
        let r = conn
            .session
            .handle_input(&leftover)
            .map_err(|e| anyhow::anyhow!("rtmp: {e}"))?;
        conn.send(r).await?;
    }
    let r = conn
        .session
        .request_connection(url.app.clone())
        .map_err(|e| anyhow::anyhow!("rtmp: {e}"))?;
    conn.send(vec![r]).await?;
    conn.wait_for("connect", |e| {
        matches!(e, ClientSessionEvent::ConnectionRequestAccepted)
    })
    .await?;
    let r = conn
        .session
        .request_publishing(url.stream.clone(), PublishRequestType::Live)
        .map_err(|e| anyhow::anyhow!("rtmp: {e}"))?;
    conn.send(vec![r]).await?;
    conn.wait_for("publish", |e| {
        matches!(e, ClientSessionEvent::PublishRequestAccepted)
    })
    .await?;
    if let Some(meta) = source.metadata().as_ref() {
        let r = conn
            .session
            .publish_metadata(meta)
            .map_err(|e| anyhow::anyhow!("rtmp: {e}"))?;
        conn.send(vec![r]).await?;
    }
    stats.set_state(PublishState::Publishing);
    let mut pacer = Pacer::new();
    let first = source.next_keyframe()?;
    for h in source.headers() {
        conn.send_tag(MediaTag {
            dts: first.dts,
            ..h
        })
        .await?;
    }
    let mut tag = first;
    loop {
        let due = pacer.due(tag.dts);
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            n = conn.socket.read(&mut conn.buf) => { conn.on_input(n?).await?; }
            _ = tokio::time::sleep_until(due) => {
                conn.send_tag(tag).await?;
                tag = source.next_tag()?;
            }
        }
    }
}
