//! RTMP without I/O: the chunk stream, protocol control and command messages, and server and
//! client sessions.
//!
//! A session is fed the bytes that arrived and the current time, and polled for events and for
//! the bytes to send; it never touches a socket or a clock. Limits (chunk size, message length,
//! chunk streams, AMF nesting) are enforced while decoding, so hostile input fails the one
//! session that received it. The handshake is not part of this module.
//!
//! Written here rather than taken from a crate because this is the hot media path: every
//! media byte is parsed exactly once and copied once (into a buffer of the message's size),
//! and outbound messages are chunked into shareable buffers built once for every viewer.

pub mod amf0;
pub mod chunk;
pub mod client;
pub mod command;
pub mod control;
mod limits;
mod link;
pub mod metadata;
pub mod server;
#[cfg(test)]
mod tests;

pub use chunk::{ChunkDecoder, ChunkEncoder, ChunkError, Message, MessageHeader};
pub use client::{ClientConfig, ClientEvent, ClientSession, Goal};
pub use limits::Limits;
pub use metadata::StreamMetadata;
pub use server::{ServerConfig, ServerEvent, ServerSession};

/// Message type: set chunk size.
pub const TYPE_SET_CHUNK_SIZE: u8 = 1;
/// Message type: abort message.
pub const TYPE_ABORT: u8 = 2;
/// Message type: acknowledgement.
pub const TYPE_ACK: u8 = 3;
/// Message type: user control.
pub const TYPE_USER_CONTROL: u8 = 4;
/// Message type: window acknowledgement size.
pub const TYPE_WINDOW_ACK_SIZE: u8 = 5;
/// Message type: set peer bandwidth.
pub const TYPE_SET_PEER_BANDWIDTH: u8 = 6;
/// Message type: audio.
pub const TYPE_AUDIO: u8 = 8;
/// Message type: video.
pub const TYPE_VIDEO: u8 = 9;
/// Message type: AMF3 data.
pub const TYPE_AMF3_DATA: u8 = 15;
/// Message type: AMF3 command.
pub const TYPE_AMF3_COMMAND: u8 = 17;
/// Message type: AMF0 data (metadata).
pub const TYPE_AMF0_DATA: u8 = 18;
/// Message type: AMF0 command.
pub const TYPE_AMF0_COMMAND: u8 = 20;

/// Chunk stream for protocol control messages.
pub const CSID_CONTROL: u32 = 2;
/// Chunk stream for commands.
pub const CSID_COMMAND: u32 = 3;
/// Chunk stream for audio.
pub const CSID_AUDIO: u32 = 4;
/// Chunk stream for data (metadata).
pub const CSID_DATA: u32 = 5;
/// Chunk stream for video.
pub const CSID_VIDEO: u32 = 6;

/// What a media or data message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// Audio (type 8).
    Audio,
    /// Video (type 9).
    Video,
    /// AMF0 data such as `onMetaData` (type 18).
    Data,
}

impl MediaKind {
    /// The kind of an audio or video message type.
    pub fn of_media(type_id: u8) -> Option<Self> {
        match type_id {
            TYPE_AUDIO => Some(Self::Audio),
            TYPE_VIDEO => Some(Self::Video),
            _ => None,
        }
    }

    /// The message type id.
    pub fn type_id(self) -> u8 {
        match self {
            Self::Audio => TYPE_AUDIO,
            Self::Video => TYPE_VIDEO,
            Self::Data => TYPE_AMF0_DATA,
        }
    }

    /// The chunk stream this kind travels on.
    pub fn csid(self) -> u32 {
        match self {
            Self::Audio => CSID_AUDIO,
            Self::Video => CSID_VIDEO,
            Self::Data => CSID_DATA,
        }
    }
}

/// Why a session failed; the connection that produced it must close.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RtmpError {
    /// The chunk stream broke a rule or a limit.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// A command or data message is not valid AMF0 or too deep.
    #[error(transparent)]
    Amf(#[from] amf0::AmfError),
    /// A protocol control message is malformed.
    #[error("malformed {0} message")]
    Control(&'static str),
    /// A command arrived that is not valid in the session's state.
    #[error("unexpected command {0}")]
    Unexpected(String),
    /// The peer refused a request.
    #[error("{code}: {description}")]
    Refused {
        /// Status code, e.g. `NetStream.Play.StreamNotFound`.
        code: String,
        /// Human-readable reason.
        description: String,
    },
    /// Nothing arrived for longer than the session allows.
    #[error("peer silent for {0:?}")]
    Silent(std::time::Duration),
}
