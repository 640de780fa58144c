//! Program-specific information: building and parsing single-program PAT and PMT sections.

use super::crc::crc32_mpeg2;
use super::{PID_PMT, STREAM_TYPE_AAC, STREAM_TYPE_H264};

const TABLE_PAT: u8 = 0x00;
const TABLE_PMT: u8 = 0x02;
const PROGRAM_NUMBER: u16 = 1;
const NO_PCR_PID: u16 = 0x1FFF;

/// Builds the PAT section pointing program 1 at [`PID_PMT`].
pub(crate) fn pat() -> Vec<u8> {
    let mut body = PROGRAM_NUMBER.to_be_bytes().to_vec();
    body.extend_from_slice(&(0xE000 | PID_PMT).to_be_bytes());
    section(TABLE_PAT, 1, &body)
}

/// Builds the PMT section for the given `(stream_type, pid)` streams.
pub(crate) fn pmt(pcr_pid: Option<u16>, streams: &[(u8, u16)]) -> Vec<u8> {
    let mut body = (0xE000 | pcr_pid.unwrap_or(NO_PCR_PID))
        .to_be_bytes()
        .to_vec();
    body.extend_from_slice(&[0xF0, 0x00]);
    for &(stream_type, pid) in streams {
        body.push(stream_type);
        body.extend_from_slice(&(0xE000 | pid).to_be_bytes());
        body.extend_from_slice(&[0xF0, 0x00]);
    }
    section(TABLE_PMT, PROGRAM_NUMBER, &body)
}

/// Wraps `body` in a long-form section header (version 0, current) and appends the CRC.
fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let length = 5 + body.len() + 4;
    let mut s = vec![table_id, 0xB0 | (length >> 8) as u8, length as u8];
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&[0xC1, 0x00, 0x00]);
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// Why a section could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionError {
    /// Structure or length is wrong.
    Malformed,
    /// CRC mismatch.
    Crc,
}

/// Validates the section at the start of a PUSI payload and returns its table id and the
/// bytes between the 8-byte header and the CRC.
fn section_body(payload: &[u8]) -> Result<(u8, &[u8]), SectionError> {
    let (&pointer, rest) = payload.split_first().ok_or(SectionError::Malformed)?;
    let s = rest
        .get(usize::from(pointer)..)
        .ok_or(SectionError::Malformed)?;
    let head = s.get(..3).ok_or(SectionError::Malformed)?;
    let length = usize::from(u16::from_be_bytes([head[1], head[2]]) & 0x0FFF);
    let whole = s.get(..3 + length).ok_or(SectionError::Malformed)?;
    if length < 9 {
        return Err(SectionError::Malformed);
    }
    if crc32_mpeg2(whole) != 0 {
        return Err(SectionError::Crc);
    }
    Ok((head[0], &whole[8..whole.len() - 4]))
}

/// Returns the PMT PID of the first program listed in a PAT.
pub(crate) fn parse_pat(payload: &[u8]) -> Result<Option<u16>, SectionError> {
    let (table_id, body) = section_body(payload)?;
    if table_id != TABLE_PAT {
        return Err(SectionError::Malformed);
    }
    Ok(body
        .chunks_exact(4)
        .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
        .map(|e| u16::from_be_bytes([e[2], e[3]]) & 0x1FFF))
}

/// Returns the first H.264 and first AAC PIDs listed in a PMT.
pub(crate) fn parse_pmt(payload: &[u8]) -> Result<(Option<u16>, Option<u16>), SectionError> {
    let (table_id, body) = section_body(payload)?;
    if table_id != TABLE_PMT {
        return Err(SectionError::Malformed);
    }
    let info = body.get(2..4).ok_or(SectionError::Malformed)?;
    let info_len = usize::from(u16::from_be_bytes([info[0], info[1]]) & 0x0FFF);
    let mut rest = body.get(4 + info_len..).ok_or(SectionError::Malformed)?;
    let (mut video, mut audio) = (None, None);
    while !rest.is_empty() {
        let e = rest.get(..5).ok_or(SectionError::Malformed)?;
        let pid = u16::from_be_bytes([e[1], e[2]]) & 0x1FFF;
        let es_info_len = usize::from(u16::from_be_bytes([e[3], e[4]]) & 0x0FFF);
        match e[0] {
            STREAM_TYPE_H264 => video = video.or(Some(pid)),
            STREAM_TYPE_AAC => audio = audio.or(Some(pid)),
            _ => {}
        }
        rest = rest.get(5 + es_info_len..).ok_or(SectionError::Malformed)?;
    }
    Ok((video, audio))
}
