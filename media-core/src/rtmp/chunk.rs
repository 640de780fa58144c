//! The chunk stream: messages cut into chunks with compressed headers, and back.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::Limits;

/// Chunk size every connection starts with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Timestamps at or above this value travel in the extended timestamp field.
const EXTENDED: u32 = 0xFF_FFFF;
/// Largest chunk stream id the three-byte basic header can carry.
const MAX_CSID: u32 = 65_599;
/// Most bytes reserved up front for a message before its chunks arrive.
const MAX_RESERVE: usize = 256 * 1024;

/// Why the chunk stream cannot be decoded further.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// The peer announced a chunk size of zero or beyond the limit.
    #[error("chunk size {size} outside 1..={max}")]
    ChunkSize {
        /// Announced size.
        size: u32,
        /// Configured limit.
        max: u32,
    },
    /// A message header declares a length beyond the limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLong {
        /// Declared length.
        len: u32,
        /// Configured limit.
        max: u32,
    },
    /// More chunk streams than allowed.
    #[error("more than {0} chunk streams")]
    TooManyChunkStreams(usize),
    /// Unfinished messages together hold more than allowed.
    #[error("unfinished messages hold more than {0} bytes")]
    TooMuchPending(u32),
    /// A compressed header on a chunk stream that never had a full one.
    #[error("chunk stream {0} starts without a full header")]
    NoPreviousHeader(u32),
}

/// The header of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageHeader {
    /// Message type id.
    pub type_id: u8,
    /// Message stream id (0 for the connection itself).
    pub stream_id: u32,
    /// Timestamp in milliseconds.
    pub timestamp: u32,
}

/// One complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The chunk stream it arrived on.
    pub csid: u32,
    /// Its header.
    pub header: MessageHeader,
    /// Its body.
    pub payload: Bytes,
}

#[derive(Debug, Default)]
struct ChunkStream {
    csid: u32,
    header: MessageHeader,
    length: u32,
    /// The timestamp field of the last full or delta header (absolute for type 0).
    delta: u32,
    /// The last header carried an extended timestamp.
    extended: bool,
    /// Bytes of the message in progress.
    partial: BytesMut,
    in_progress: bool,
}

/// Reassembles messages from received chunks, enforcing [`Limits`] as it goes.
#[derive(Debug)]
pub struct ChunkDecoder {
    buf: BytesMut,
    chunk_size: u32,
    streams: Vec<ChunkStream>,
    pending: usize,
    limits: Limits,
}

/// A parsed chunk header, not yet applied to its stream.
struct Parsed {
    fmt: u8,
    csid: u32,
    header_len: usize,
    field: u32,
    length: Option<u32>,
    type_id: Option<u8>,
    stream_id: Option<u32>,
}

impl ChunkDecoder {
    /// A decoder at the default chunk size of 128.
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
            pending: 0,
            limits,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet part of a returned message or an unfinished one.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Applies a chunk size the peer announced; takes effect for the next chunk.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > self.limits.max_chunk_size {
            return Err(ChunkError::ChunkSize {
                size,
                max: self.limits.max_chunk_size,
            });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops the unfinished message on a chunk stream (the peer sent Abort).
    pub fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.csid == csid) {
            self.pending -= s.partial.len();
            s.partial = BytesMut::new();
            s.in_progress = false;
        }
    }

    /// The next complete message, or `None` until more bytes arrive.
    pub fn next_message(&mut self) -> Result<Option<Message>, ChunkError> {
        loop {
            let Some(p) = self.parse_header()? else {
                return Ok(None);
            };
            let index = self.stream_index(&p)?;
            let stream = &self.streams[index];
            let length = p.length.unwrap_or(stream.length);
            // A message starts with any header but type 3 (or with type 3 after a complete
            // message). Some encoders repeat a full header on every chunk of a message: a
            // header that matches the unfinished message continues it.
            let continues = stream.in_progress
                && (p.fmt == 3
                    || (length == stream.length
                        && p.type_id.is_none_or(|t| t == stream.header.type_id)
                        && p.stream_id.is_none_or(|s| s == stream.header.stream_id)));
            let starts = !continues;
            if length > self.limits.max_message_len {
                return Err(ChunkError::MessageTooLong {
                    len: length,
                    max: self.limits.max_message_len,
                });
            }
            // Extended timestamp: always after a 0xFFFFFF field; on a type 3 chunk when the
            // stream's last header had one (some encoders omit it on continuations, so there
            // it is taken only when it repeats the value).
            let mut at = p.header_len;
            let mut field = p.field;
            let extended = if p.fmt < 3 {
                p.field == EXTENDED
            } else {
                stream.extended
            };
            if extended {
                let Some(ext) = self.buf.get(at..at + 4) else {
                    return Ok(None);
                };
                let ext = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
                if p.fmt < 3 || starts {
                    field = ext;
                    at += 4;
                } else if ext == stream.delta {
                    at += 4;
                }
            }
            let have = if starts { 0 } else { stream.partial.len() };
            let take = (length as usize - have).min(self.chunk_size as usize);
            if self.buf.len() < at + take {
                return Ok(None);
            }
            // Bodies are copied out of the read buffer, each into an allocation of its own
            // size: the read buffer stays unshared and is reused in place, and a cached frame
            // never pins a whole read's worth of memory.
            let data = &self.buf[at..at + take];
            let stream = &mut self.streams[index];
            if starts {
                self.pending -= stream.partial.len();
                stream.partial = BytesMut::new();
                let prev = stream.header;
                stream.header = MessageHeader {
                    type_id: p.type_id.unwrap_or(prev.type_id),
                    stream_id: p.stream_id.unwrap_or(prev.stream_id),
                    timestamp: match p.fmt {
                        0 => field,
                        3 => prev.timestamp.wrapping_add(stream.delta),
                        _ => prev.timestamp.wrapping_add(field),
                    },
                };
                if p.fmt < 3 {
                    stream.delta = field;
                    stream.extended = extended;
                }
                stream.length = length;
                stream.in_progress = true;
                if take == length as usize {
                    stream.in_progress = false;
                    let payload = Bytes::copy_from_slice(data);
                    self.buf.advance(at + take);
                    return Ok(Some(Message {
                        csid: p.csid,
                        header: stream.header,
                        payload,
                    }));
                }
                stream.partial.reserve((length as usize).min(MAX_RESERVE));
            }
            stream.partial.extend_from_slice(data);
            self.buf.advance(at + take);
            self.pending += take;
            if self.pending > self.limits.max_message_len as usize {
                return Err(ChunkError::TooMuchPending(self.limits.max_message_len));
            }
            if stream.partial.len() == stream.length as usize {
                stream.in_progress = false;
                self.pending -= stream.partial.len();
                let payload = std::mem::take(&mut stream.partial).freeze();
                return Ok(Some(Message {
                    csid: p.csid,
                    header: stream.header,
                    payload,
                }));
            }
        }
    }

    /// Reads the basic and message header at the front of the buffer without consuming it.
    fn parse_header(&self) -> Result<Option<Parsed>, ChunkError> {
        let b = &self.buf;
        let Some(&first) = b.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, basic) = match first & 0x3F {
            0 => match b.get(1) {
                Some(&x) => (64 + u32::from(x), 2),
                None => return Ok(None),
            },
            1 => match b.get(1..3) {
                Some(x) => (64 + u32::from(x[0]) + 256 * u32::from(x[1]), 3),
                None => return Ok(None),
            },
            c => (u32::from(c), 1),
        };
        let header_len = basic + [11, 7, 3, 0][usize::from(fmt)];
        let Some(h) = b.get(basic..header_len) else {
            return Ok(None);
        };
        let be24 = |x: &[u8]| u32::from_be_bytes([0, x[0], x[1], x[2]]);
        Ok(Some(Parsed {
            fmt,
            csid,
            header_len,
            field: if fmt < 3 { be24(&h[0..3]) } else { 0 },
            length: (fmt < 2).then(|| be24(&h[3..6])),
            type_id: (fmt < 2).then(|| h[6]),
            stream_id: (fmt == 0).then(|| u32::from_le_bytes([h[7], h[8], h[9], h[10]])),
        }))
    }

    fn stream_index(&mut self, p: &Parsed) -> Result<usize, ChunkError> {
        if let Some(i) = self.streams.iter().position(|s| s.csid == p.csid) {
            return Ok(i);
        }
        if p.fmt != 0 {
            return Err(ChunkError::NoPreviousHeader(p.csid));
        }
        if self.streams.len() >= self.limits.max_chunk_streams {
            return Err(ChunkError::TooManyChunkStreams(
                self.limits.max_chunk_streams,
            ));
        }
        self.streams.push(ChunkStream {
            csid: p.csid,
            ..ChunkStream::default()
        });
        Ok(self.streams.len() - 1)
    }
}

/// Cuts messages into chunks. Every message starts with a full (type 0) header carrying its
/// absolute timestamp and continues with type 3 chunks, so the bytes for one message do not
/// depend on what was sent before: they can be built once and shared by every peer that uses
/// the same chunk size and message stream id.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    chunk_size: u32,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new(DEFAULT_CHUNK_SIZE)
    }
}

impl ChunkEncoder {
    /// An encoder at `chunk_size` (at least 1).
    pub fn new(chunk_size: u32) -> Self {
        Self {
            chunk_size: chunk_size.max(1),
        }
    }

    /// The outbound chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the outbound chunk size (after sending Set Chunk Size to the peer).
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.max(1);
    }

    /// Bytes [`Self::encode`] appends for a message of `len` bytes on `csid`.
    pub fn encoded_len(&self, csid: u32, header: &MessageHeader, len: usize) -> usize {
        let basic = basic_len(csid);
        let ext = if header.timestamp >= EXTENDED { 4 } else { 0 };
        let chunks = len.div_ceil(self.chunk_size as usize).max(1);
        basic + 11 + ext + (chunks - 1) * (basic + ext) + len
    }

    /// Appends one message, chunked. `csid` must be 2..=65599 (it is clamped).
    pub fn encode(&self, csid: u32, header: &MessageHeader, payload: &[u8], out: &mut BytesMut) {
        let csid = csid.clamp(2, MAX_CSID);
        out.reserve(self.encoded_len(csid, header, payload.len()));
        let ts = header.timestamp;
        let field = ts.min(EXTENDED);
        put_basic(out, 0, csid);
        out.put_slice(&field.to_be_bytes()[1..]);
        out.put_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        out.put_u8(header.type_id);
        out.put_u32_le(header.stream_id);
        if ts >= EXTENDED {
            out.put_u32(ts);
        }
        let mut chunks = payload.chunks(self.chunk_size as usize);
        if let Some(first) = chunks.next() {
            out.put_slice(first);
        }
        for chunk in chunks {
            put_basic(out, 3, csid);
            if ts >= EXTENDED {
                out.put_u32(ts);
            }
            out.put_slice(chunk);
        }
    }

    /// One message, chunked, as a buffer of its own.
    pub fn to_bytes(&self, csid: u32, header: &MessageHeader, payload: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(csid, header, payload, &mut out);
        out.freeze()
    }
}

fn basic_len(csid: u32) -> usize {
    match csid {
        0..=63 => 1,
        64..=319 => 2,
        _ => 3,
    }
}

fn put_basic(out: &mut BytesMut, fmt: u8, csid: u32) {
    match csid {
        0..=63 => out.put_u8((fmt << 6) | csid as u8),
        64..=319 => out.put_slice(&[fmt << 6, (csid - 64) as u8]),
        _ => {
            let id = csid - 64;
            out.put_slice(&[(fmt << 6) | 1, (id & 0xFF) as u8, (id >> 8) as u8]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(type_id: u8, stream_id: u32, timestamp: u32) -> MessageHeader {
        MessageHeader {
            type_id,
            stream_id,
            timestamp,
        }
    }

    fn decode_all(dec: &mut ChunkDecoder) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(m) = dec.next_message().expect("valid chunks") {
            out.push(m);
        }
        out
    }

    #[test]
    fn encodes_known_bytes() {
        let enc = ChunkEncoder::new(4);
        let bytes = enc.to_bytes(6, &header(9, 1, 0x0102), b"abcdef");
        assert_eq!(
            &bytes[..],
            &[
                0x06, 0x00, 0x01, 0x02, 0x00, 0x00, 0x06, 0x09, 0x01, 0x00, 0x00, 0x00, b'a', b'b',
                b'c', b'd', 0xC6, b'e', b'f'
            ]
        );
        assert_eq!(enc.encoded_len(6, &header(9, 1, 0x0102), 6), bytes.len());
    }

    #[test]
    fn extended_timestamps_on_every_chunk() {
        let enc = ChunkEncoder::new(2);
        let h = header(8, 1, 0x0100_0000);
        let bytes = enc.to_bytes(4, &h, b"abc");
        assert_eq!(bytes.len(), enc.encoded_len(4, &h, 3));
        assert_eq!(&bytes[1..4], &[0xFF, 0xFF, 0xFF]);
        assert_eq!(&bytes[12..16], &0x0100_0000u32.to_be_bytes());
        assert_eq!(&bytes[18..23], &[0xC4, 0x01, 0x00, 0x00, 0x00]);
        let mut dec = ChunkDecoder::new(Limits::default());
        dec.set_chunk_size(2).expect("valid size");
        dec.push(&bytes);
        let m = decode_all(&mut dec);
        assert_eq!(m[0].header, h);
        assert_eq!(&m[0].payload[..], b"abc");
    }

    #[test]
    fn decodes_compressed_headers_as_ffmpeg_writes_them() {
        // Type 0, then a type 2 delta, then a type 3 new message repeating the delta.
        let mut wire = vec![0x04, 0, 0, 10, 0, 0, 2, 8, 1, 0, 0, 0, b'a', b'b'];
        wire.extend_from_slice(&[0x84, 0, 0, 23, b'c', b'd']);
        wire.extend_from_slice(&[0xC4, b'e', b'f']);
        // Type 1 changes the length and type on the same chunk stream.
        wire.extend_from_slice(&[0x44, 0, 0, 1, 0, 0, 1, 9, b'g']);
        let mut dec = ChunkDecoder::new(Limits::default());
        dec.push(&wire);
        let m = decode_all(&mut dec);
        let ts: Vec<u32> = m.iter().map(|m| m.header.timestamp).collect();
        assert_eq!(ts, [10, 33, 56, 57]);
        assert_eq!(m[3].header.type_id, 9);
        assert_eq!(m[3].header.stream_id, 1);
        assert_eq!(&m[3].payload[..], b"g");
    }

    #[test]
    fn interleaved_chunk_streams_reassemble() {
        let enc = ChunkEncoder::new(3);
        let a = enc.to_bytes(4, &header(8, 1, 5), b"aaaaaa");
        let v = enc.to_bytes(6, &header(9, 1, 7), b"vvvvvv");
        // a0 v0 a1 v1, each chunk 4 bytes on the wire after a 12-byte first header.
        let mut wire = Vec::new();
        wire.extend_from_slice(&a[..15]);
        wire.extend_from_slice(&v[..15]);
        wire.extend_from_slice(&a[15..]);
        wire.extend_from_slice(&v[15..]);
        let mut dec = ChunkDecoder::new(Limits::default());
        dec.set_chunk_size(3).expect("valid size");
        for byte in wire {
            dec.push(&[byte]);
            while let Some(m) = dec.next_message().expect("valid") {
                let want: &[u8] = if m.header.type_id == 8 {
                    b"aaaaaa"
                } else {
                    b"vvvvvv"
                };
                assert_eq!(&m.payload[..], want);
            }
        }
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn limits_hold_while_decoding() {
        let mut dec = ChunkDecoder::new(Limits::default());
        assert!(matches!(
            dec.set_chunk_size(0x7FFF_FFFF),
            Err(ChunkError::ChunkSize { .. })
        ));
        // A header declaring 16 MiB is refused before any body arrives.
        dec.push(&[0x04, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]);
        assert!(matches!(
            dec.next_message(),
            Err(ChunkError::MessageTooLong { .. })
        ));
        let limits = Limits {
            max_chunk_streams: 2,
            ..Limits::default()
        };
        let mut dec = ChunkDecoder::new(limits);
        for csid in 3..6u8 {
            dec.push(&[csid, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0]);
        }
        assert_eq!(decode_all_err(&mut dec), ChunkError::TooManyChunkStreams(2));
        let mut dec = ChunkDecoder::new(Limits::default());
        dec.push(&[0xC7, 1, 2]);
        assert_eq!(decode_all_err(&mut dec), ChunkError::NoPreviousHeader(7));
    }

    fn decode_all_err(dec: &mut ChunkDecoder) -> ChunkError {
        loop {
            match dec.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("expected an error"),
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn unfinished_messages_are_bounded_together() {
        let limits = Limits {
            max_message_len: 1000,
            ..Limits::default()
        };
        let mut dec = ChunkDecoder::new(limits);
        dec.set_chunk_size(600).expect("valid size");
        for csid in 3..5u8 {
            let mut c = vec![csid, 0, 0, 0, 0, 0x03, 0xE8, 9, 1, 0, 0, 0];
            c.extend(std::iter::repeat_n(0u8, 600));
            dec.push(&c);
        }
        assert_eq!(decode_all_err(&mut dec), ChunkError::TooMuchPending(1000));
    }

    #[test]
    fn full_headers_on_every_chunk_continue_the_message() {
        // Some encoders repeat the type 0 header on each chunk of one message.
        let mut wire = vec![0x03, 0, 0, 5, 0, 0, 4, 20, 0, 0, 0, 0, b'a', b'b'];
        wire.extend_from_slice(&[0x03, 0, 0, 5, 0, 0, 4, 20, 0, 0, 0, 0, b'c', b'd']);
        wire.extend_from_slice(&[0x03, 0, 0, 9, 0, 0, 1, 20, 0, 0, 0, 0, b'e']);
        let mut dec = ChunkDecoder::new(Limits::default());
        dec.set_chunk_size(2).expect("valid size");
        dec.push(&wire);
        let m = decode_all(&mut dec);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (&m[0].payload[..], m[0].header.timestamp),
            (&b"abcd"[..], 5)
        );
        assert_eq!((&m[1].payload[..], m[1].header.timestamp), (&b"e"[..], 9));
    }

    #[test]
    fn large_csids_round_trip() {
        for csid in [2, 63, 64, 319, 320, 65_599] {
            let enc = ChunkEncoder::new(2);
            let bytes = enc.to_bytes(csid, &header(8, 1, 1), b"hello");
            let mut dec = ChunkDecoder::new(Limits::default());
            dec.set_chunk_size(2).expect("valid size");
            dec.push(&bytes);
            let m = decode_all(&mut dec);
            assert_eq!((m[0].csid, &m[0].payload[..]), (csid, &b"hello"[..]));
        }
    }
}
