//! RTMP publishing: connect, handshake, `publish`, then paced media until stopped.

use std::time::Duration;

use media_core::rtmp::client::Goal;
use media_core::rtmp::{ClientConfig, ClientEvent, ClientSession, MediaKind};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
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
    /// Writes whatever the session has queued.
    async fn flush(&mut self) -> anyhow::Result<()> {
        while let Some(bytes) = self.session.take_output() {
            self.stats.add_bytes(bytes.len());
            self.socket.write_all(&bytes).await?;
        }
        Ok(())
    }

    /// Feeds received bytes to the session, answers what it queued, returns its events.
    async fn input(&mut self, data: &[u8]) -> anyhow::Result<Vec<ClientEvent>> {
        self.session
            .feed(data)
            .map_err(|e| anyhow::anyhow!("rtmp: {e}"))?;
        self.flush().await?;
        Ok(std::iter::from_fn(|| self.session.poll_event()).collect())
    }

    /// Reads once from the socket and handles what arrived.
    async fn read(&mut self) -> anyhow::Result<Vec<ClientEvent>> {
        let n = self.socket.read(&mut self.buf).await?;
        if n == 0 {
            anyhow::bail!("server closed the connection");
        }
        self.session
            .feed(&self.buf[..n])
            .map_err(|e| anyhow::anyhow!("rtmp: {e}"))?;
        self.flush().await?;
        Ok(std::iter::from_fn(|| self.session.poll_event()).collect())
    }

    async fn wait_for(&mut self, what: &str, done: ClientEvent) -> anyhow::Result<()> {
        tokio::time::timeout(SETUP_TIMEOUT, async {
            while !self.read().await?.contains(&done) {}
            Ok(())
        })
        .await
        .map_err(|_| anyhow::anyhow!("timed out waiting for {what}"))?
    }

    async fn send_tag(&mut self, tag: MediaTag) -> anyhow::Result<()> {
        let tag = match self.stamper.as_mut() {
            Some(s) => s.stamp(tag, unix_micros()),
            None => tag,
        };
        let kind = match tag.kind {
            TagKind::Video => MediaKind::Video,
            TagKind::Audio => MediaKind::Audio,
        };
        let ts = (tag.dts & 0xFFFF_FFFF) as u32;
        self.session.send_media(kind, ts, &tag.payload);
        self.stats.add_frame();
        self.flush().await
    }
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
    let tc_url = format!("rtmp://{}/{}", url.addr, url.app);
    let session = ClientSession::new(
        ClientConfig::new(&url.app, &tc_url),
        Goal::Publish(url.stream.clone()),
    );
    let mut conn = Conn {
        socket,
        session,
        buf: vec![0u8; 64 * 1024],
        stats,
        stamper: options.stamp.then(Stamper::new),
    };
    let early = conn.input(&leftover).await?;
    if !early.contains(&ClientEvent::PublishStarted) {
        conn.wait_for("publish", ClientEvent::PublishStarted)
            .await?;
    }
    if let Some(meta) = source.metadata().as_ref() {
        conn.session.send_metadata(&[meta.to_value()]);
        conn.flush().await?;
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
            r = conn.read() => { r?; }
            _ = tokio::time::sleep_until(due) => {
                conn.send_tag(tag).await?;
                tag = source.next_tag()?;
            }
        }
    }
}
