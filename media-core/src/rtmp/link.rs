//! What both ends of a connection share: chunking both ways, protocol control, and
//! acknowledgements.

use bytes::{Bytes, BytesMut};

use super::chunk::{ChunkDecoder, ChunkEncoder, Message, MessageHeader};
use super::command::Command;
use super::control::{Control, UserControl};
use super::{Limits, RtmpError, CSID_COMMAND, CSID_CONTROL, TYPE_AMF0_COMMAND};

/// One end of a chunk stream connection.
#[derive(Debug)]
pub(crate) struct Link {
    decoder: ChunkDecoder,
    pub encoder: ChunkEncoder,
    out: BytesMut,
    received: u64,
    acked: u64,
    ack_window: u32,
    pub limits: Limits,
}

impl Link {
    pub fn new(limits: Limits) -> Self {
        Self {
            decoder: ChunkDecoder::new(limits.clone()),
            encoder: ChunkEncoder::default(),
            out: BytesMut::new(),
            received: 0,
            acked: 0,
            ack_window: 0,
            limits,
        }
    }

    /// Takes received bytes; acknowledges them once a window's worth arrived.
    pub fn push(&mut self, data: &[u8]) {
        self.decoder.push(data);
        self.received += data.len() as u64;
        if self.ack_window > 0 && self.received - self.acked >= u64::from(self.ack_window) {
            self.acked = self.received;
            // The acknowledgement carries the byte count modulo 2^32.
            self.send_control(Control::Ack(self.received as u32));
        }
    }

    /// The next message that is not protocol control; control is handled here.
    pub fn next(&mut self) -> Result<Option<Message>, RtmpError> {
        while let Some(m) = self.decoder.next_message()? {
            let Some(control) = Control::parse(m.header.type_id, &m.payload)? else {
                return Ok(Some(m));
            };
            match control {
                Control::SetChunkSize(n) => self.decoder.set_chunk_size(n)?,
                Control::Abort(csid) => self.decoder.abort(csid),
                Control::WindowAckSize(n) => self.ack_window = n,
                Control::User(UserControl::PingRequest(t)) => {
                    self.send_control(Control::User(UserControl::PingResponse(t)))
                }
                Control::Ack(_) | Control::SetPeerBandwidth { .. } | Control::User(_) => {}
            }
        }
        Ok(None)
    }

    /// Queues a control message; a Set Chunk Size also switches the encoder.
    pub fn send_control(&mut self, c: Control) {
        let header = MessageHeader {
            type_id: c.type_id(),
            stream_id: 0,
            timestamp: 0,
        };
        self.encoder
            .encode(CSID_CONTROL, &header, &c.payload(), &mut self.out);
        if let Control::SetChunkSize(n) = c {
            self.encoder.set_chunk_size(n);
        }
    }

    /// Queues a command on a message stream.
    pub fn send_command(&mut self, stream_id: u32, c: &Command) {
        self.send(CSID_COMMAND, TYPE_AMF0_COMMAND, stream_id, 0, &c.encode());
    }

    /// Queues any message.
    pub fn send(&mut self, csid: u32, type_id: u8, stream_id: u32, timestamp: u32, body: &[u8]) {
        let header = MessageHeader {
            type_id,
            stream_id,
            timestamp,
        };
        self.encoder.encode(csid, &header, body, &mut self.out);
    }

    /// Everything queued to send since the last call.
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }
}
