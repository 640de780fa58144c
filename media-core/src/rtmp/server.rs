//! The server end of an RTMP connection after the handshake: `connect`, `createStream`,
//! `publish` or `play`, then media either way.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::amf0::Amf0;
use super::command::{self, Command};
use super::control::{Control, UserControl};
use super::link::Link;
use super::{
    Limits, MediaKind, RtmpError, TYPE_AMF0_COMMAND, TYPE_AMF0_DATA, TYPE_AMF3_COMMAND,
    TYPE_AMF3_DATA, TYPE_AUDIO, TYPE_VIDEO,
};

/// Most message streams one connection may create.
const MAX_STREAMS: u32 = 16;

/// How the server end behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Chunk size of everything the server sends, announced right after `connect`.
    pub chunk_size: u32,
    /// Window acknowledgement size asked of the peer.
    pub window_ack_size: u32,
    /// Peer bandwidth announced to the peer.
    pub peer_bandwidth: u32,
    /// Bounds on what the peer sends.
    pub limits: Limits,
    /// Longest silence allowed from a peer that publishes.
    pub publisher_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            limits: Limits::default(),
            publisher_timeout: Duration::from_secs(10),
        }
    }
}

/// What the peer asked for or sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// `connect`: answer with [`ServerSession::accept_connect`] or [`ServerSession::reject_connect`].
    Connect {
        /// Application name.
        app: String,
        /// The client's `tcUrl`, if given.
        tc_url: Option<String>,
    },
    /// `publish`: answer with [`ServerSession::accept_publish`] or [`ServerSession::refuse`].
    Publish {
        /// Message stream id.
        stream_id: u32,
        /// Stream name, with any query string.
        name: String,
    },
    /// `play`: answer with [`ServerSession::accept_play`] or [`ServerSession::refuse`].
    Play {
        /// Message stream id.
        stream_id: u32,
        /// Stream name, with any query string.
        name: String,
    },
    /// An audio or video message from the publisher.
    Media {
        /// Audio or video.
        kind: MediaKind,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The message body (FLV tag body).
        payload: Bytes,
    },
    /// Stream metadata (`onMetaData`, with or without `@setDataFrame`): its arguments.
    Metadata(Vec<Amf0>),
    /// `deleteStream`, `closeStream` or `FCUnpublish`: the stream ends.
    Closed {
        /// Message stream id.
        stream_id: u32,
    },
}

/// A server-side RTMP session. Feed it bytes with [`Self::feed`], then drain
/// [`Self::poll_event`] and [`Self::take_output`].
#[derive(Debug)]
pub struct ServerSession {
    link: Link,
    config: ServerConfig,
    events: VecDeque<ServerEvent>,
    connect_transaction: Option<f64>,
    connected: bool,
    streams: u32,
    publishing: Option<u32>,
    last_input: Option<Instant>,
    /// A request awaits the caller's answer; later messages wait in the decoder.
    paused: bool,
}

impl ServerSession {
    /// A session right after the handshake.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            link: Link::new(config.limits.clone()),
            config,
            events: VecDeque::new(),
            connect_transaction: None,
            connected: false,
            streams: 0,
            publishing: None,
            last_input: None,
            paused: false,
        }
    }

    /// Handles bytes received at `now`. An error means the connection must close.
    ///
    /// After a `connect`, `publish` or `play` event the session waits for the caller's answer
    /// before it reads further messages, so pipelined requests are answered in order.
    pub fn feed(&mut self, now: Instant, data: &[u8]) -> Result<(), RtmpError> {
        self.last_input = Some(now);
        self.link.push(data);
        self.process()
    }

    /// Handles buffered messages until a request needs an answer.
    fn process(&mut self) -> Result<(), RtmpError> {
        while !self.paused {
            let Some(m) = self.link.next()? else {
                break;
            };
            let h = m.header;
            match h.type_id {
                TYPE_AUDIO | TYPE_VIDEO if self.publishing == Some(h.stream_id) => {
                    if let Some(kind) = MediaKind::of_media(h.type_id) {
                        self.events.push_back(ServerEvent::Media {
                            kind,
                            timestamp: h.timestamp,
                            payload: m.payload,
                        });
                    }
                }
                TYPE_AMF0_DATA | TYPE_AMF3_DATA => {
                    let depth = self.link.limits.max_amf_depth;
                    let args = command::metadata_args(h.type_id, &m.payload, depth)?;
                    if let Some(args) = args.filter(|_| self.publishing == Some(h.stream_id)) {
                        self.events.push_back(ServerEvent::Metadata(args));
                    }
                }
                TYPE_AMF0_COMMAND | TYPE_AMF3_COMMAND => {
                    let c = Command::decode(h.type_id, &m.payload, self.link.limits.max_amf_depth)?;
                    self.command(h.stream_id, c)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    pub fn timeout(&self) -> Option<Instant> {
        self.publishing?;
        Some(self.last_input? + self.config.publisher_timeout)
    }

    /// Fails a publishing session that has been silent past its timeout.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), RtmpError> {
        match self.timeout() {
            Some(t) if now >= t => Err(RtmpError::Silent(self.config.publisher_timeout)),
            _ => Ok(()),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Bytes to send, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.link.take_output()
    }

    /// The chunk size of everything this session sends once connected.
    pub fn chunk_size(&self) -> u32 {
        self.link.encoder.chunk_size()
    }

    /// Accepts the pending `connect`, then goes on with the messages behind it.
    pub fn accept_connect(&mut self) -> Result<(), RtmpError> {
        let Some(transaction) = self.connect_transaction.take() else {
            return Ok(());
        };
        self.connected = true;
        self.link
            .send_control(Control::WindowAckSize(self.config.window_ack_size));
        self.link.send_control(Control::SetPeerBandwidth {
            size: self.config.peer_bandwidth,
            limit: 2,
        });
        self.link
            .send_control(Control::SetChunkSize(self.config.chunk_size));
        let props = Amf0::object([
            ("fmsVer", Amf0::str("FMS/3,0,1,123")),
            ("capabilities", Amf0::Number(31.0)),
        ]);
        let mut info = command::status(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
        );
        if let Amf0::Object(p) = &mut info {
            p.push(("objectEncoding".into(), Amf0::Number(0.0)));
        }
        self.link
            .send_command(0, &Command::new("_result", transaction, props, vec![info]));
        self.resume()
    }

    /// Refuses the pending `connect`; the caller closes the connection after sending.
    pub fn reject_connect(&mut self, description: &str) {
        let Some(transaction) = self.connect_transaction.take() else {
            return;
        };
        let info = command::status("error", "NetConnection.Connect.Rejected", description);
        self.link.send_command(
            0,
            &Command::new("_error", transaction, Amf0::Null, vec![info]),
        );
    }

    /// Accepts a `publish`: media on `stream_id` becomes [`ServerEvent::Media`].
    pub fn accept_publish(&mut self, stream_id: u32, name: &str) -> Result<(), RtmpError> {
        self.publishing = Some(stream_id);
        self.link
            .send_control(Control::User(UserControl::StreamBegin(stream_id)));
        self.send_status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            &format!("{name} is now published."),
        );
        self.resume()
    }

    /// Accepts a `play`: the caller then sends media on `stream_id`.
    pub fn accept_play(&mut self, stream_id: u32, name: &str) -> Result<(), RtmpError> {
        self.link
            .send_control(Control::User(UserControl::StreamBegin(stream_id)));
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Reset",
            &format!("Playing and resetting {name}."),
        );
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Start",
            &format!("Started playing {name}."),
        );
        let access = [
            Amf0::str("|RtmpSampleAccess"),
            Amf0::Boolean(true),
            Amf0::Boolean(true),
        ];
        let mut body = Vec::new();
        super::amf0::encode_all(&access, &mut body);
        self.link
            .send(MediaKind::Data.csid(), TYPE_AMF0_DATA, stream_id, 0, &body);
        self.resume()
    }

    /// Refuses a `publish` or `play` with an error status such as
    /// `NetStream.Play.StreamNotFound` or `NetStream.Publish.BadName`, then goes on with the
    /// messages behind it.
    pub fn refuse(
        &mut self,
        stream_id: u32,
        code: &str,
        description: &str,
    ) -> Result<(), RtmpError> {
        self.send_status(stream_id, "error", code, description);
        self.resume()
    }

    fn resume(&mut self) -> Result<(), RtmpError> {
        self.paused = false;
        self.process()
    }

    /// Sends an `onStatus` on a message stream.
    pub fn send_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.link
            .send_command(stream_id, &command::on_status(level, code, description));
    }

    /// Tells a player its stream ended.
    pub fn end_play(&mut self, stream_id: u32) {
        self.link
            .send_control(Control::User(UserControl::StreamEof(stream_id)));
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.UnpublishNotify",
            "The stream was unpublished.",
        );
    }

    /// Queues one media or data message on `stream_id`.
    pub fn send_media(&mut self, stream_id: u32, kind: MediaKind, timestamp: u32, body: &[u8]) {
        self.link
            .send(kind.csid(), kind.type_id(), stream_id, timestamp, body);
    }

    fn command(&mut self, stream_id: u32, c: Command) -> Result<(), RtmpError> {
        let name = c.name.as_str();
        if name == "connect" {
            if self.connected || self.connect_transaction.is_some() {
                return Err(RtmpError::Unexpected("second connect".into()));
            }
            self.connect_transaction = Some(c.transaction);
            self.paused = true;
            let text = |k: &str| c.object.get(k).and_then(Amf0::as_str).map(str::to_string);
            self.events.push_back(ServerEvent::Connect {
                app: text("app").unwrap_or_default(),
                tc_url: text("tcUrl"),
            });
            return Ok(());
        }
        if !self.connected {
            return Err(RtmpError::Unexpected(format!("{name} before connect")));
        }
        match name {
            "createStream" => {
                if self.streams >= MAX_STREAMS {
                    return Err(RtmpError::Unexpected("too many createStream".into()));
                }
                self.streams += 1;
                let id = f64::from(self.streams);
                self.link.send_command(
                    0,
                    &Command::new("_result", c.transaction, Amf0::Null, vec![Amf0::Number(id)]),
                );
            }
            "releaseStream" | "FCPublish" if c.transaction > 0.0 => {
                self.link.send_command(
                    0,
                    &Command::new("_result", c.transaction, Amf0::Null, vec![Amf0::Undefined]),
                );
            }
            "publish" | "play" => {
                self.paused = true;
                let name = c.arg_str(0).unwrap_or_default().to_string();
                self.events.push_back(if c.name == "publish" {
                    ServerEvent::Publish { stream_id, name }
                } else {
                    ServerEvent::Play { stream_id, name }
                });
            }
            "deleteStream" => {
                let id = c.args.first().and_then(Amf0::as_f64).unwrap_or(0.0);
                self.closed(id as u32);
            }
            "closeStream" => self.closed(stream_id),
            "FCUnpublish" => {
                if let Some(id) = self.publishing {
                    self.closed(id);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn closed(&mut self, stream_id: u32) {
        if self.publishing == Some(stream_id) {
            self.publishing = None;
        }
        self.events.push_back(ServerEvent::Closed { stream_id });
    }
}
