//! RTMP playback over media-core's client session: handshake, `connect`, `play`, then media.

use media_core::rtmp::client::Goal;
use media_core::rtmp::{ClientConfig, ClientEvent, ClientSession, MediaKind, RtmpError};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::deadline::Deadline;
use crate::error::{Failure, PlayErrorKind};
use crate::session::Session;
use crate::tags::TagHandler;

/// Socket read buffer per player.
const READ_BUFFER: usize = 16 * 1024;

/// A parsed `rtmp://host[:port]/app/stream` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtmpTarget {
    addr: String,
    app: String,
    stream: String,
}

impl RtmpTarget {
    /// Parses an RTMP URL; the port defaults to 1935 and the stream keeps any query string.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("rtmp://")?;
        let (host, path) = rest.split_once('/')?;
        let (app, stream) = path.split_once('/')?;
        if host.is_empty() || app.is_empty() || stream.is_empty() {
            return None;
        }
        let addr = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:1935")
        };
        Some(Self {
            addr,
            app: app.to_string(),
            stream: stream.to_string(),
        })
    }
}

/// Plays an RTMP URL until the session ends, reconnecting as the options allow.
pub(crate) async fn play(url: &str, session: &mut Session<'_>) -> Result<(), PlayErrorKind> {
    let target =
        RtmpTarget::parse(url).ok_or_else(|| PlayErrorKind::UnsupportedUrl(url.to_string()))?;
    let mut handler = TagHandler::default();
    let mut buf = vec![0u8; READ_BUFFER];
    while !session.over() {
        match connection(url, &target, session, &mut handler, &mut buf).await {
            Ok(()) => break,
            Err(failure) => session.retry(failure).await?,
        }
    }
    Ok(())
}

/// A session failure: a refused connect is final, anything else may be retried.
fn rtmp_failure(url: &str, e: RtmpError) -> Failure {
    match e {
        RtmpError::Refused { code, description } if code.contains("Connect") => {
            Failure::Fatal(PlayErrorKind::Refused {
                url: url.to_string(),
                reason: format!("{code}: {description}"),
            })
        }
        RtmpError::Refused { code, .. } if code.contains("StreamNotFound") => {
            Failure::retry("not_found", format!("{url}: {code}"))
        }
        e => Failure::retry("rtmp", format!("rtmp: {e}")),
    }
}

/// TCP connect and the RTMP handshake; returns bytes received after the handshake.
async fn open(target: &RtmpTarget) -> Result<(TcpStream, Vec<u8>), Failure> {
    let mut socket = TcpStream::connect(&target.addr)
        .await
        .map_err(|e| Failure::retry("connect", format!("{}: {e}", target.addr)))?;
    socket
        .set_nodelay(true)
        .map_err(|e| Failure::retry("connect", e))?;
    let mut hs = Handshake::new(PeerType::Client);
    let p0p1 = hs
        .generate_outbound_p0_and_p1()
        .map_err(|e| Failure::retry("handshake", e))?;
    socket
        .write_all(&p0p1)
        .await
        .map_err(|e| Failure::retry("handshake", e))?;
    let mut buf = [0u8; 4096];
    loop {
        let n = socket
            .read(&mut buf)
            .await
            .map_err(|e| Failure::retry("handshake", e))?;
        if n == 0 {
            return Err(Failure::retry(
                "handshake",
                "server closed the connection during the handshake",
            ));
        }
        match hs
            .process_bytes(&buf[..n])
            .map_err(|e| Failure::retry("handshake", e))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => socket
                .write_all(&response_bytes)
                .await
                .map_err(|e| Failure::retry("handshake", e))?,
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket
                    .write_all(&response_bytes)
                    .await
                    .map_err(|e| Failure::retry("handshake", e))?;
                return Ok((socket, remaining_bytes));
            }
        }
    }
}

/// One connection; `Ok` when the session ended while it was open.
async fn connection(
    url: &str,
    target: &RtmpTarget,
    session: &mut Session<'_>,
    handler: &mut TagHandler,
    buf: &mut [u8],
) -> Result<(), Failure> {
    handler.new_connection(&mut session.stats);
    let ended = session.ended();
    tokio::pin!(ended);
    let setup = session.options.connect_timeout;
    let (mut socket, leftover) = tokio::select! {
        _ = &mut ended => return Ok(()),
        r = timeout(setup, open(target)) => r.map_err(|_| {
            Failure::retry("timeout", format!("{}: no handshake within {setup:?}", target.addr))
        })??,
    };
    let tc_url = format!("rtmp://{}/{}", target.addr, target.app);
    let mut rtmp = ClientSession::new(
        ClientConfig::new(&target.app, &tc_url),
        Goal::Play(target.stream.clone()),
    );
    let mut conn = Conn {
        url,
        socket: &mut socket,
        rtmp: &mut rtmp,
        playing: false,
    };
    conn.input(&leftover, session, handler).await?;
    let started = Instant::now();
    let mut last_data = started;
    let mut flowing = false;
    let mut tick = Deadline::new(session.next_tick());
    let mut quiet = Deadline::new(started + setup);
    loop {
        let quiet_until = if conn.playing {
            last_data + session.options.idle_timeout
        } else {
            started + setup
        };
        tokio::select! {
            _ = &mut ended => return Ok(()),
            _ = tick.until(session.next_tick()) => session.tick(),
            _ = quiet.until(quiet_until) => {
                let what = if conn.playing { "no data" } else { "play not accepted" };
                return Err(Failure::retry("idle", format!("{url}: {what} in time")));
            }
            n = conn.socket.read(buf) => {
                let n = n.map_err(|e| Failure::retry("read", format!("{url}: {e}")))?;
                if n == 0 {
                    return Err(Failure::retry("closed", format!("{url}: server closed the connection")));
                }
                last_data = Instant::now();
                session.stats.add_bytes(n);
                conn.input(&buf[..n], session, handler).await?;
                if !flowing && handler.started() {
                    flowing = true;
                    session.media_flowing();
                }
            }
        }
    }
}

/// An open RTMP connection.
struct Conn<'c> {
    url: &'c str,
    socket: &'c mut TcpStream,
    rtmp: &'c mut ClientSession,
    playing: bool,
}

impl Conn<'_> {
    /// Feeds received bytes, writes what the session answers, and reacts to its events.
    async fn input(
        &mut self,
        data: &[u8],
        session: &mut Session<'_>,
        handler: &mut TagHandler,
    ) -> Result<(), Failure> {
        self.rtmp
            .feed(data)
            .map_err(|e| rtmp_failure(self.url, e))?;
        while let Some(bytes) = self.rtmp.take_output() {
            self.socket
                .write_all(&bytes)
                .await
                .map_err(|e| Failure::retry("write", format!("{}: {e}", self.url)))?;
        }
        while let Some(event) = self.rtmp.poll_event() {
            self.event(event, session, handler)?;
        }
        Ok(())
    }

    fn event(
        &mut self,
        event: ClientEvent,
        session: &mut Session<'_>,
        handler: &mut TagHandler,
    ) -> Result<(), Failure> {
        match event {
            ClientEvent::PlayStarted => self.playing = true,
            ClientEvent::Media {
                kind,
                timestamp,
                payload,
            } => match kind {
                MediaKind::Video => handler.video(&mut session.stats, timestamp, &payload),
                MediaKind::Audio => handler.audio(&mut session.stats, timestamp, &payload),
                MediaKind::Data => {}
            },
            ClientEvent::Status { code, .. } => {
                if code.contains("Play.Stop") || code.contains("UnpublishNotify") {
                    return Err(Failure::retry("closed", format!("{}: {code}", self.url)));
                }
                tracing::debug!(url = self.url, code, "rtmp status");
            }
            ClientEvent::Connected | ClientEvent::PublishStarted | ClientEvent::Metadata(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rtmp_urls() {
        let t = RtmpTarget::parse("rtmp://127.0.0.1:1936/live/cam?token=1").expect("valid");
        assert_eq!(
            t,
            RtmpTarget {
                addr: "127.0.0.1:1936".into(),
                app: "live".into(),
                stream: "cam?token=1".into()
            }
        );
        assert_eq!(
            RtmpTarget::parse("rtmp://h/a/b").expect("valid").addr,
            "h:1935"
        );
        assert!(RtmpTarget::parse("rtmp://h/a").is_none());
        assert!(RtmpTarget::parse("http://h/a/b").is_none());
    }
}
