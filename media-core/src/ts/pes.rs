//! PES packet headers: encoding with PTS/DTS and decoding back to timestamps and payload.

use super::TIMESTAMP_MASK;

/// Stream id of the first video stream.
pub(crate) const STREAM_ID_VIDEO: u8 = 0xE0;
/// Stream id of the first audio stream.
pub(crate) const STREAM_ID_AUDIO: u8 = 0xC0;
const MARKER_DATA_ALIGNED: u8 = 0x84;

/// Builds a PES header. DTS is written only when it differs from PTS; PES_packet_length is 0
/// when the packet would exceed 65535 bytes.
pub(crate) fn header(stream_id: u8, pts: u64, dts: Option<u64>, payload_len: usize) -> Vec<u8> {
    let dts = dts.filter(|&d| d & TIMESTAMP_MASK != pts & TIMESTAMP_MASK);
    let data_len: u8 = if dts.is_some() { 10 } else { 5 };
    let packet_len = 3 + usize::from(data_len) + payload_len;
    let packet_len = u16::try_from(packet_len).unwrap_or(0);
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(&[0, 0, 1, stream_id]);
    h.extend_from_slice(&packet_len.to_be_bytes());
    h.push(MARKER_DATA_ALIGNED);
    match dts {
        Some(dts) => {
            h.extend_from_slice(&[0xC0, data_len]);
            h.extend_from_slice(&timestamp(0x3, pts));
            h.extend_from_slice(&timestamp(0x1, dts));
        }
        None => {
            h.extend_from_slice(&[0x80, data_len]);
            h.extend_from_slice(&timestamp(0x2, pts));
        }
    }
    h
}

/// Encodes a 33-bit timestamp with its 4-bit prefix and marker bits.
fn timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & TIMESTAMP_MASK;
    [
        (prefix << 4) | (((ts >> 29) as u8) & 0x0E) | 1,
        (ts >> 22) as u8,
        (((ts >> 14) as u8) & 0xFE) | 1,
        (ts >> 7) as u8,
        ((ts << 1) as u8) | 1,
    ]
}

/// Decodes a 5-byte timestamp field.
fn read_timestamp(b: &[u8]) -> Option<u64> {
    let b = b.get(..5)?;
    Some(
        (u64::from(b[0] >> 1 & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1),
    )
}

/// A parsed PES packet.
pub(crate) struct Parsed<'a> {
    pub pts: u64,
    pub dts: u64,
    pub payload: &'a [u8],
}

/// Total PES size declared by its header, when bounded (non-zero PES_packet_length).
pub(crate) fn declared_len(pes: &[u8]) -> Option<usize> {
    let len = usize::from(u16::from_be_bytes([*pes.get(4)?, *pes.get(5)?]));
    (len > 0).then_some(6 + len)
}

/// Parses a complete PES packet; `None` when malformed, shorter than its declared length, or
/// without a PTS.
pub(crate) fn parse(pes: &[u8]) -> Option<Parsed<'_>> {
    let h = pes.get(..9)?;
    if h[..3] != [0, 0, 1] {
        return None;
    }
    let flags = h[7] >> 6;
    let header_end = 9 + usize::from(h[8]);
    let end = declared_len(pes).unwrap_or(pes.len());
    let payload = pes.get(header_end..end)?;
    let pts = if flags & 0x2 != 0 {
        read_timestamp(pes.get(9..)?)?
    } else {
        return None;
    };
    let dts = if flags == 0x3 {
        read_timestamp(pes.get(14..)?)?
    } else {
        pts
    };
    Some(Parsed { pts, dts, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_with_pts_and_dts() {
        // PTS 0x1_2345_6789 (33 bits), DTS 90_000.
        let h = header(STREAM_ID_VIDEO, 0x1_2345_6789, Some(90_000), 100);
        assert_eq!(
            h,
            vec![
                0x00, 0x00, 0x01, 0xE0, 0x00, 0x71, 0x84, 0xC0, 0x0A, // length 3 + 10 + 100
                0x39, 0x8D, 0x15, 0xCF, 0x13, // PTS
                0x11, 0x00, 0x05, 0xBF, 0x21, // DTS
            ]
        );
    }

    #[test]
    fn header_bytes_pts_only_and_unbounded() {
        let h = header(STREAM_ID_AUDIO, 90_000, Some(90_000), 70_000);
        assert_eq!(
            h,
            vec![
                0x00, 0x00, 0x01, 0xC0, 0x00, 0x00, 0x84, 0x80, 0x05, 0x21, 0x00, 0x05, 0xBF, 0x21
            ]
        );
    }

    #[test]
    fn parse_round_trip() {
        let mut pes = header(STREAM_ID_VIDEO, 123_456, Some(120_000), 3);
        pes.extend_from_slice(&[7, 8, 9]);
        let parsed = parse(&pes).unwrap();
        assert_eq!(
            (parsed.pts, parsed.dts, parsed.payload),
            (123_456, 120_000, &[7u8, 8, 9][..])
        );
    }
}
