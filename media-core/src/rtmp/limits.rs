//! The bounds a session enforces on what its peer sends.

/// Bounds on inbound RTMP, checked while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest chunk size the peer may announce.
    pub max_chunk_size: u32,
    /// Largest message the peer may declare.
    pub max_message_len: u32,
    /// Most chunk streams the peer may open.
    pub max_chunk_streams: usize,
    /// Deepest AMF nesting accepted in commands and data.
    pub max_amf_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_chunk_size: 1 << 20,
            max_message_len: 8 << 20,
            max_chunk_streams: 64,
            max_amf_depth: 16,
        }
    }
}
