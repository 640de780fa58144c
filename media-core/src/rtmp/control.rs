//! Protocol control messages (types 1 to 6) and user control events.

use super::{
    RtmpError, TYPE_ABORT, TYPE_ACK, TYPE_SET_CHUNK_SIZE, TYPE_SET_PEER_BANDWIDTH,
    TYPE_USER_CONTROL, TYPE_WINDOW_ACK_SIZE,
};

/// A user control event (message type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControl {
    /// A stream became functional.
    StreamBegin(u32),
    /// Playback of a stream ended.
    StreamEof(u32),
    /// No more data on a stream for now.
    StreamDry(u32),
    /// The client's buffer length for a stream, in milliseconds.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length.
        ms: u32,
    },
    /// The stream is recorded.
    StreamIsRecorded(u32),
    /// A ping to be answered with its timestamp.
    PingRequest(u32),
    /// The answer to a ping.
    PingResponse(u32),
    /// An event type this module does not interpret.
    Other(u16),
}

/// A protocol control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// New chunk size for the sender's chunks (the top bit is ignored).
    SetChunkSize(u32),
    /// Discard the unfinished message on a chunk stream.
    Abort(u32),
    /// Bytes received so far.
    Ack(u32),
    /// Acknowledge every this many bytes.
    WindowAckSize(u32),
    /// Limit on the peer's output.
    SetPeerBandwidth {
        /// Window size.
        size: u32,
        /// 0 hard, 1 soft, 2 dynamic.
        limit: u8,
    },
    /// A user control event.
    User(UserControl),
}

fn be32(p: &[u8], at: usize, what: &'static str) -> Result<u32, RtmpError> {
    p.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(RtmpError::Control(what))
}

impl Control {
    /// Parses a control message; `None` when `type_id` is not one.
    pub fn parse(type_id: u8, p: &[u8]) -> Result<Option<Self>, RtmpError> {
        Ok(Some(match type_id {
            TYPE_SET_CHUNK_SIZE => Self::SetChunkSize(be32(p, 0, "set chunk size")? & 0x7FFF_FFFF),
            TYPE_ABORT => Self::Abort(be32(p, 0, "abort")?),
            TYPE_ACK => Self::Ack(be32(p, 0, "acknowledgement")?),
            TYPE_WINDOW_ACK_SIZE => Self::WindowAckSize(be32(p, 0, "window size")?),
            TYPE_SET_PEER_BANDWIDTH => Self::SetPeerBandwidth {
                size: be32(p, 0, "set peer bandwidth")?,
                limit: p.get(4).copied().unwrap_or(2),
            },
            TYPE_USER_CONTROL => {
                let what = "user control";
                let event = p
                    .get(..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
                    .ok_or(RtmpError::Control(what))?;
                let arg = || be32(p, 2, what);
                Self::User(match event {
                    0 => UserControl::StreamBegin(arg()?),
                    1 => UserControl::StreamEof(arg()?),
                    2 => UserControl::StreamDry(arg()?),
                    3 => UserControl::SetBufferLength {
                        stream_id: arg()?,
                        ms: be32(p, 6, what)?,
                    },
                    4 => UserControl::StreamIsRecorded(arg()?),
                    6 => UserControl::PingRequest(arg()?),
                    7 => UserControl::PingResponse(arg()?),
                    other => UserControl::Other(other),
                })
            }
            _ => return Ok(None),
        }))
    }

    /// The message type id.
    pub fn type_id(&self) -> u8 {
        match self {
            Self::SetChunkSize(_) => TYPE_SET_CHUNK_SIZE,
            Self::Abort(_) => TYPE_ABORT,
            Self::Ack(_) => TYPE_ACK,
            Self::WindowAckSize(_) => TYPE_WINDOW_ACK_SIZE,
            Self::SetPeerBandwidth { .. } => TYPE_SET_PEER_BANDWIDTH,
            Self::User(_) => TYPE_USER_CONTROL,
        }
    }

    /// The message body.
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10);
        match *self {
            Self::SetChunkSize(n) => out.extend_from_slice(&(n & 0x7FFF_FFFF).to_be_bytes()),
            Self::Abort(n) | Self::Ack(n) | Self::WindowAckSize(n) => {
                out.extend_from_slice(&n.to_be_bytes())
            }
            Self::SetPeerBandwidth { size, limit } => {
                out.extend_from_slice(&size.to_be_bytes());
                out.push(limit);
            }
            Self::User(u) => {
                let (event, a, b): (u16, u32, Option<u32>) = match u {
                    UserControl::StreamBegin(s) => (0, s, None),
                    UserControl::StreamEof(s) => (1, s, None),
                    UserControl::StreamDry(s) => (2, s, None),
                    UserControl::SetBufferLength { stream_id, ms } => (3, stream_id, Some(ms)),
                    UserControl::StreamIsRecorded(s) => (4, s, None),
                    UserControl::PingRequest(t) => (6, t, None),
                    UserControl::PingResponse(t) => (7, t, None),
                    UserControl::Other(e) => (e, 0, None),
                };
                out.extend_from_slice(&event.to_be_bytes());
                out.extend_from_slice(&a.to_be_bytes());
                if let Some(b) = b {
                    out.extend_from_slice(&b.to_be_bytes());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_round_trips() {
        let all = [
            Control::SetChunkSize(4096),
            Control::Abort(4),
            Control::Ack(123_456),
            Control::WindowAckSize(2_500_000),
            Control::SetPeerBandwidth {
                size: 2_500_000,
                limit: 2,
            },
            Control::User(UserControl::StreamBegin(1)),
            Control::User(UserControl::StreamEof(1)),
            Control::User(UserControl::StreamDry(1)),
            Control::User(UserControl::SetBufferLength {
                stream_id: 1,
                ms: 3000,
            }),
            Control::User(UserControl::StreamIsRecorded(1)),
            Control::User(UserControl::PingRequest(77)),
            Control::User(UserControl::PingResponse(77)),
        ];
        for c in all {
            assert_eq!(Control::parse(c.type_id(), &c.payload()), Ok(Some(c)));
        }
        assert_eq!(Control::parse(9, b"x"), Ok(None));
        assert!(Control::parse(TYPE_ACK, &[1, 2]).is_err());
    }

    #[test]
    fn set_chunk_size_ignores_the_top_bit() {
        assert_eq!(
            Control::parse(TYPE_SET_CHUNK_SIZE, &[0x80, 0, 0x10, 0]),
            Ok(Some(Control::SetChunkSize(4096)))
        );
    }
}
