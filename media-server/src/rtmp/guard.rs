//! Screens the inbound RTMP chunk stream for declared sizes and nesting we refuse.
//!
//! It parses the same bytes the session will, with its own chunk deserializer, so a hostile
//! chunk size, oversized message or deeply nested AMF is rejected before the session acts on it.

use rml_rtmp::chunk_io::ChunkDeserializer;
use rml_rtmp::messages::MessagePayload;

use crate::config::RtmpLimits;

use super::amf_depth;

const SET_CHUNK_SIZE: u8 = 1;
const AMF3_DATA: u8 = 15;
const AMF3_COMMAND: u8 = 17;
const AMF0_DATA: u8 = 18;
const AMF0_COMMAND: u8 = 20;

/// Why the guard closed a connection.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The peer announced a chunk size beyond the limit.
    #[error("peer chunk size {0} exceeds limit {1}")]
    ChunkSize(u32, u32),
    /// A message is larger than allowed.
    #[error("message of {0} bytes exceeds limit {1}")]
    MessageSize(usize, usize),
    /// AMF data nests too deeply.
    #[error(transparent)]
    Amf(#[from] amf_depth::TooDeep),
    /// The chunk stream itself is malformed.
    #[error("malformed chunk stream: {0}")]
    Chunk(String),
}

/// Shadow parser of the inbound chunk stream.
pub struct ChunkGuard {
    deserializer: ChunkDeserializer,
    limits: RtmpLimits,
}

impl ChunkGuard {
    /// A guard for a fresh connection.
    pub fn new(limits: RtmpLimits) -> Self {
        Self {
            deserializer: ChunkDeserializer::new(),
            limits,
        }
    }

    /// Inspects newly received bytes; an error means the connection must close.
    pub fn check(&mut self, bytes: &[u8]) -> Result<(), GuardError> {
        let mut input = bytes;
        loop {
            let message = self
                .deserializer
                .get_next_message(input)
                .map_err(|e| GuardError::Chunk(e.to_string()))?;
            input = &[];
            match message {
                Some(m) => self.inspect(&m)?,
                None => return Ok(()),
            }
        }
    }

    fn inspect(&mut self, message: &MessagePayload) -> Result<(), GuardError> {
        let data = &message.data[..];
        if data.len() > self.limits.max_message_bytes {
            return Err(GuardError::MessageSize(
                data.len(),
                self.limits.max_message_bytes,
            ));
        }
        match message.type_id {
            SET_CHUNK_SIZE => {
                let size = data
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7FFF_FFFF)
                    .ok_or_else(|| GuardError::Chunk("short SetChunkSize".into()))?;
                if size > self.limits.max_chunk_size || size == 0 {
                    return Err(GuardError::ChunkSize(size, self.limits.max_chunk_size));
                }
                self.deserializer
                    .set_max_chunk_size(size as usize)
                    .map_err(|e| GuardError::Chunk(e.to_string()))?;
            }
            AMF0_DATA | AMF0_COMMAND => amf_depth::check(data, self.limits.max_amf_depth)?,
            AMF3_DATA | AMF3_COMMAND => {
                amf_depth::check(data.get(1..).unwrap_or_default(), self.limits.max_amf_depth)?
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::time::RtmpTimestamp;

    fn packet(type_id: u8, data: Vec<u8>) -> Vec<u8> {
        let payload = MessagePayload {
            timestamp: RtmpTimestamp::new(0),
            message_stream_id: 0,
            type_id,
            data: Bytes::from(data),
        };
        ChunkSerializer::new()
            .serialize(&payload, true, false)
            .expect("serializes")
            .bytes
    }

    #[test]
    fn refuses_huge_chunk_size() {
        let mut guard = ChunkGuard::new(RtmpLimits::default());
        let err = guard
            .check(&packet(
                SET_CHUNK_SIZE,
                0x7FFF_FFFFu32.to_be_bytes().to_vec(),
            ))
            .expect_err("2 GiB chunk size must be refused");
        assert!(matches!(err, GuardError::ChunkSize(0x7FFF_FFFF, _)));
    }

    #[test]
    fn accepts_ordinary_chunk_size_and_refuses_deep_amf() {
        let mut guard = ChunkGuard::new(RtmpLimits::default());
        let mut serializer = ChunkSerializer::new();
        let set = serializer
            .set_max_chunk_size(4096, RtmpTimestamp::new(0))
            .expect("serializes");
        guard.check(&set.bytes).expect("4096 is fine");
        let deep = MessagePayload {
            timestamp: RtmpTimestamp::new(0),
            message_stream_id: 0,
            type_id: AMF0_COMMAND,
            data: Bytes::from([0x03, 0x00, 0x01, b'k'].repeat(100)),
        };
        let bytes = serializer
            .serialize(&deep, true, false)
            .expect("serializes")
            .bytes;
        assert!(matches!(guard.check(&bytes), Err(GuardError::Amf(_))));
    }
}
