//! Wall-clock stamps carried in H.264 SEI `user_data_unregistered` messages, used to measure
//! glass-to-glass latency: the publisher stamps frames, players read the stamps back.

use crate::avc::{avcc_nalus, nal_type, AvcError, NAL_AUD, NAL_SEI};
use crate::bits::{escape, unescape};

/// UUID identifying livepulse clock stamps: the 16 ASCII bytes `livepulse-clock!`.
pub const STAMP_UUID: [u8; 16] = *b"livepulse-clock!";

const PAYLOAD_USER_DATA_UNREGISTERED: u8 = 5;
const STAMP_PAYLOAD_LEN: usize = 24;

/// Builds an SEI NAL unit (type 6) holding one `user_data_unregistered` message:
/// [`STAMP_UUID`] then `unix_micros` as 8 big-endian bytes, with emulation prevention applied.
pub fn stamp_nalu(unix_micros: u64) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(3 + STAMP_PAYLOAD_LEN);
    rbsp.push(PAYLOAD_USER_DATA_UNREGISTERED);
    rbsp.push(STAMP_PAYLOAD_LEN as u8);
    rbsp.extend_from_slice(&STAMP_UUID);
    rbsp.extend_from_slice(&unix_micros.to_be_bytes());
    rbsp.push(0x80);
    let mut nalu = vec![NAL_SEI];
    nalu.extend_from_slice(&escape(&rbsp));
    nalu
}

/// Finds a livepulse stamp in any SEI NAL unit of an AVCC frame.
pub fn find_stamp(avcc: &[u8], nalu_length_size: u8) -> Option<u64> {
    avcc_nalus(avcc, nalu_length_size)
        .ok()?
        .into_iter()
        .filter(|nalu| nal_type(nalu) == NAL_SEI)
        .find_map(|nalu| stamp_in_sei(&unescape(nalu.get(1..)?)))
}

/// Returns a copy of the AVCC frame with a stamp SEI inserted after any leading AUD.
pub fn insert_stamp(
    avcc: &[u8],
    nalu_length_size: u8,
    unix_micros: u64,
) -> Result<Vec<u8>, AvcError> {
    let nalus = avcc_nalus(avcc, nalu_length_size)?;
    let sei = stamp_nalu(unix_micros);
    let at = nalus.iter().take_while(|n| nal_type(n) == NAL_AUD).count();
    let size = usize::from(nalu_length_size);
    let mut out = Vec::with_capacity(avcc.len() + size + sei.len());
    for (i, nalu) in nalus.iter().enumerate() {
        if i == at {
            write_nalu(&mut out, size, &sei);
        }
        write_nalu(&mut out, size, nalu);
    }
    if at == nalus.len() {
        write_nalu(&mut out, size, &sei);
    }
    Ok(out)
}

fn write_nalu(out: &mut Vec<u8>, size: usize, nalu: &[u8]) {
    let len = (nalu.len() as u64).to_be_bytes();
    out.extend_from_slice(&len[8 - size..]);
    out.extend_from_slice(nalu);
}

/// Walks the SEI messages of an SEI RBSP looking for a stamp.
fn stamp_in_sei(rbsp: &[u8]) -> Option<u64> {
    let mut rest = rbsp;
    while rest.len() > 1 {
        let payload_type = read_sei_value(&mut rest)?;
        let size = read_sei_value(&mut rest)?;
        let payload = rest.get(..size)?;
        rest = &rest[size..];
        if payload_type == usize::from(PAYLOAD_USER_DATA_UNREGISTERED)
            && payload.len() >= STAMP_PAYLOAD_LEN
            && payload[..16] == STAMP_UUID
        {
            let micros: [u8; 8] = payload[16..24].try_into().ok()?;
            return Some(u64::from_be_bytes(micros));
        }
    }
    None
}

/// Reads an SEI payload type or size: a run of 0xFF bytes plus a final byte.
fn read_sei_value(rest: &mut &[u8]) -> Option<usize> {
    let mut value = 0usize;
    loop {
        let (&b, tail) = rest.split_first()?;
        *rest = tail;
        value = value.checked_add(usize::from(b))?;
        if b != 0xFF {
            return Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc(nalus: &[&[u8]]) -> Vec<u8> {
        nalus
            .iter()
            .flat_map(|n| {
                (n.len() as u32)
                    .to_be_bytes()
                    .into_iter()
                    .chain(n.iter().copied())
            })
            .collect()
    }

    #[test]
    fn stamp_nalu_layout() {
        let nalu = stamp_nalu(0x0102_0304_0506_0708);
        let mut expected = vec![NAL_SEI, 5, 24];
        expected.extend_from_slice(&STAMP_UUID);
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0x80]);
        assert_eq!(nalu, expected);
    }

    #[test]
    fn emulation_prevention_applied_and_removed() {
        let nalu = stamp_nalu(0);
        assert!(!nalu.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] < 3));
        assert_eq!(nalu.len(), 28 + 3);
        assert_eq!(find_stamp(&avcc(&[&nalu]), 4), Some(0));
    }

    #[test]
    fn insert_after_aud_and_find() {
        let frame = avcc(&[&[0x09, 0xF0], &[0x65, 0x88]]);
        let stamped = insert_stamp(&frame, 4, 1_700_000_000_000_000).unwrap();
        let nalus = avcc_nalus(&stamped, 4).unwrap();
        let types: Vec<u8> = nalus.iter().map(|n| nal_type(n)).collect();
        assert_eq!(types, vec![NAL_AUD, NAL_SEI, 5]);
        assert_eq!(find_stamp(&stamped, 4), Some(1_700_000_000_000_000));

        let no_aud = insert_stamp(&avcc(&[&[0x41, 1]]), 4, 42).unwrap();
        assert_eq!(nal_type(avcc_nalus(&no_aud, 4).unwrap()[0]), NAL_SEI);
        assert_eq!(find_stamp(&no_aud, 4), Some(42));
        assert_eq!(find_stamp(&frame, 4), None);
        assert!(insert_stamp(&[0, 0, 0, 9, 1], 4, 1).is_err());
    }

    #[test]
    fn other_sei_messages_are_skipped() {
        // A recovery point SEI (type 6, size 1) precedes the stamp in the same NAL.
        let stamp = stamp_nalu(99);
        let mut nalu = vec![NAL_SEI, 6, 1, 0x84];
        nalu.extend_from_slice(&stamp[1..]);
        assert_eq!(find_stamp(&avcc(&[&nalu]), 4), Some(99));
        assert_eq!(find_stamp(&avcc(&[&[NAL_SEI, 5, 30, 1]]), 4), None);
    }
}
