//! The client end of an RTMP connection after the handshake: `connect`, then `publish` or
//! `play` on a stream of its own, then media either way.

use std::collections::VecDeque;

use bytes::Bytes;

use super::amf0::Amf0;
use super::command::{self, Command};
use super::control::{Control, UserControl};
use super::link::Link;
use super::{
    Limits, MediaKind, RtmpError, TYPE_AMF0_COMMAND, TYPE_AMF0_DATA, TYPE_AMF3_COMMAND,
    TYPE_AMF3_DATA, TYPE_AUDIO, TYPE_VIDEO,
};

const CONNECT: f64 = 1.0;
const CREATE_STREAM: f64 = 4.0;

/// How the client end behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Application name (the first path segment of the URL).
    pub app: String,
    /// `rtmp://host:port/app`.
    pub tc_url: String,
    /// Chunk size of everything the client sends.
    pub chunk_size: u32,
    /// Play buffer asked of the server, in milliseconds.
    pub buffer_ms: u32,
    /// Bounds on what the server sends.
    pub limits: Limits,
}

impl ClientConfig {
    /// A configuration for `app` at `tc_url` with common defaults.
    pub fn new(app: &str, tc_url: &str) -> Self {
        Self {
            app: app.to_string(),
            tc_url: tc_url.to_string(),
            chunk_size: 4096,
            buffer_ms: 1000,
            limits: Limits {
                max_chunk_size: 16 << 20,
                max_message_len: 16 << 20,
                ..Limits::default()
            },
        }
    }
}

/// What the client is there to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Publish a live stream of this name.
    Publish(String),
    /// Play the stream of this name.
    Play(String),
}

/// What the server answered or sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `connect` succeeded.
    Connected,
    /// `NetStream.Publish.Start`: media may be sent.
    PublishStarted,
    /// `NetStream.Play.Start`: media will arrive.
    PlayStarted,
    /// Any other status the server sent.
    Status {
        /// `status` or `warning`.
        level: String,
        /// Status code.
        code: String,
        /// Human-readable text.
        description: String,
    },
    /// An audio or video message.
    Media {
        /// Audio or video.
        kind: MediaKind,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The message body (FLV tag body).
        payload: Bytes,
    },
    /// Stream metadata: the arguments of `onMetaData`.
    Metadata(Vec<Amf0>),
}

/// A client-side RTMP session; it starts `connect` at once and pursues its [`Goal`].
#[derive(Debug)]
pub struct ClientSession {
    link: Link,
    config: ClientConfig,
    goal: Goal,
    events: VecDeque<ClientEvent>,
    stream_id: Option<u32>,
}

impl ClientSession {
    /// A session right after the handshake, with `connect` queued.
    pub fn new(config: ClientConfig, goal: Goal) -> Self {
        let mut link = Link::new(config.limits.clone());
        link.send_control(Control::SetChunkSize(config.chunk_size));
        let object = Amf0::object([
            ("app", Amf0::str(&config.app)),
            ("type", Amf0::str("nonprivate")),
            ("flashVer", Amf0::str("FMLE/3.0 (compatible; livepulse)")),
            ("tcUrl", Amf0::str(&config.tc_url)),
            ("fpad", Amf0::Boolean(false)),
            ("capabilities", Amf0::Number(15.0)),
            ("audioCodecs", Amf0::Number(3575.0)),
            ("videoCodecs", Amf0::Number(252.0)),
            ("videoFunction", Amf0::Number(1.0)),
        ]);
        link.send_command(0, &Command::new("connect", CONNECT, object, Vec::new()));
        Self {
            link,
            config,
            goal,
            events: VecDeque::new(),
            stream_id: None,
        }
    }

    /// Handles received bytes. An error (including a refusal) ends the session.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        self.link.push(data);
        while let Some(m) = self.link.next()? {
            let h = m.header;
            match h.type_id {
                TYPE_AUDIO | TYPE_VIDEO => {
                    if let Some(kind) = MediaKind::of_media(h.type_id) {
                        self.events.push_back(ClientEvent::Media {
                            kind,
                            timestamp: h.timestamp,
                            payload: m.payload,
                        });
                    }
                }
                TYPE_AMF0_DATA | TYPE_AMF3_DATA => {
                    let depth = self.link.limits.max_amf_depth;
                    if let Some(args) = command::metadata_args(h.type_id, &m.payload, depth)? {
                        self.events.push_back(ClientEvent::Metadata(args));
                    }
                }
                TYPE_AMF0_COMMAND | TYPE_AMF3_COMMAND => {
                    let c = Command::decode(h.type_id, &m.payload, self.link.limits.max_amf_depth)?;
                    self.command(c)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Bytes to send, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.link.take_output()
    }

    /// Queues one audio, video or data message on the session's stream (publishing).
    pub fn send_media(&mut self, kind: MediaKind, timestamp: u32, body: &[u8]) {
        let stream_id = self.stream_id.unwrap_or(1);
        self.link
            .send(kind.csid(), kind.type_id(), stream_id, timestamp, body);
    }

    /// Queues stream metadata as `@setDataFrame("onMetaData", values)`.
    pub fn send_metadata(&mut self, values: &[Amf0]) {
        let mut body = Vec::new();
        super::amf0::encode_all(
            &[Amf0::str("@setDataFrame"), Amf0::str("onMetaData")],
            &mut body,
        );
        super::amf0::encode_all(values, &mut body);
        self.send_media(MediaKind::Data, 0, &body);
    }

    fn command(&mut self, c: Command) -> Result<(), RtmpError> {
        match c.name.as_str() {
            "_result" if c.transaction == CONNECT => {
                self.events.push_back(ClientEvent::Connected);
                self.after_connect();
            }
            "_result" if c.transaction == CREATE_STREAM => {
                let id = c.args.first().and_then(Amf0::as_f64).unwrap_or(1.0) as u32;
                self.stream_id = Some(id);
                self.start(id);
            }
            "_error" if c.transaction == CONNECT || c.transaction == CREATE_STREAM => {
                let (_, code, description) = command::status_fields(c.args.first());
                return Err(RtmpError::Refused { code, description });
            }
            "onStatus" => {
                let (level, code, description) = command::status_fields(c.args.first());
                match code.as_str() {
                    _ if level == "error" => {
                        return Err(RtmpError::Refused { code, description });
                    }
                    "NetStream.Publish.Start" => self.events.push_back(ClientEvent::PublishStarted),
                    "NetStream.Play.Start" => self.events.push_back(ClientEvent::PlayStarted),
                    _ => self.events.push_back(ClientEvent::Status {
                        level,
                        code,
                        description,
                    }),
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn after_connect(&mut self) {
        if let Goal::Publish(name) = &self.goal {
            for (n, t) in [("releaseStream", 2.0), ("FCPublish", 3.0)] {
                let args = vec![Amf0::str(name)];
                self.link
                    .send_command(0, &Command::new(n, t, Amf0::Null, args));
            }
        }
        self.link.send_command(
            0,
            &Command::new("createStream", CREATE_STREAM, Amf0::Null, Vec::new()),
        );
    }

    fn start(&mut self, stream_id: u32) {
        match &self.goal {
            Goal::Publish(name) => {
                let args = vec![Amf0::str(name), Amf0::str("live")];
                self.link
                    .send_command(stream_id, &Command::new("publish", 5.0, Amf0::Null, args));
            }
            Goal::Play(name) => {
                let args = vec![Amf0::str(name), Amf0::Number(-2000.0)];
                self.link
                    .send_command(stream_id, &Command::new("play", 5.0, Amf0::Null, args));
                self.link
                    .send_control(Control::User(UserControl::SetBufferLength {
                        stream_id,
                        ms: self.config.buffer_ms,
                    }));
            }
        }
    }
}
