//! Writing 188-byte transport packets: header, adaptation field (random access, PCR,
//! stuffing) and payload.

use super::{PACKET_SIZE, SYNC_BYTE, TIMESTAMP_MASK};

const HEADER_LEN: usize = 4;
const PCR_LEN: usize = 6;
const FLAG_RANDOM_ACCESS: u8 = 0x40;
const FLAG_PCR: u8 = 0x10;

/// Adaptation field contents requested for the first packet of a unit.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Adaptation {
    /// Set random_access_indicator.
    pub random_access: bool,
    /// Program clock reference base (90 kHz).
    pub pcr: Option<u64>,
}

/// Per-PID continuity counter.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Continuity(u8);

impl Continuity {
    /// Returns the counter for the next packet with payload and advances it mod 16.
    pub(crate) fn next(&mut self) -> u8 {
        let cc = self.0;
        self.0 = (self.0 + 1) & 0x0F;
        cc
    }
}

/// Splits `header ++ body` into packets on `pid`. The first packet carries PUSI and `first`;
/// a short last packet is filled with adaptation-field stuffing, never payload padding.
pub(crate) fn write_unit(
    out: &mut Vec<u8>,
    pid: u16,
    cc: &mut Continuity,
    first: Adaptation,
    header: &[u8],
    body: &[u8],
) {
    let mut header = header;
    let mut body = body;
    let mut adaptation = Some(first);
    let mut pusi = true;
    loop {
        let af = adaptation.take().unwrap_or_default();
        let af_fields = if af.random_access || af.pcr.is_some() {
            1 + if af.pcr.is_some() { PCR_LEN } else { 0 }
        } else {
            0
        };
        let capacity = PACKET_SIZE - HEADER_LEN - if af_fields > 0 { 1 + af_fields } else { 0 };
        let remaining = header.len() + body.len();
        let n = remaining.min(capacity);
        let af_total = PACKET_SIZE - HEADER_LEN - n;
        out.push(SYNC_BYTE);
        out.push((u8::from(pusi) << 6) | ((pid >> 8) as u8 & 0x1F));
        out.push(pid as u8);
        out.push(if af_total > 0 { 0x30 } else { 0x10 } | cc.next());
        if af_total > 0 {
            write_adaptation(out, af, af_total);
        }
        let from_header = n.min(header.len());
        out.extend_from_slice(&header[..from_header]);
        header = &header[from_header..];
        let from_body = n - from_header;
        out.extend_from_slice(&body[..from_body]);
        body = &body[from_body..];
        pusi = false;
        if header.is_empty() && body.is_empty() {
            break;
        }
    }
}

/// Writes an adaptation field of exactly `total` bytes (including its length byte).
fn write_adaptation(out: &mut Vec<u8>, af: Adaptation, total: usize) {
    out.push((total - 1) as u8);
    if total == 1 {
        return;
    }
    let mut flags = 0;
    if af.random_access {
        flags |= FLAG_RANDOM_ACCESS;
    }
    if af.pcr.is_some() {
        flags |= FLAG_PCR;
    }
    out.push(flags);
    let mut used = 2;
    if let Some(pcr) = af.pcr {
        let base = pcr & TIMESTAMP_MASK;
        out.extend_from_slice(&[
            (base >> 25) as u8,
            (base >> 17) as u8,
            (base >> 9) as u8,
            (base >> 1) as u8,
            (((base & 1) as u8) << 7) | 0x7E,
            0,
        ]);
        used += PCR_LEN;
    }
    out.resize(out.len() + (total - used), 0xFF);
}

/// Writes one PSI section (pointer field first) as a single packet padded with 0xFF.
pub(crate) fn write_section(out: &mut Vec<u8>, pid: u16, cc: &mut Continuity, section: &[u8]) {
    let start = out.len();
    out.push(SYNC_BYTE);
    out.push(0x40 | ((pid >> 8) as u8 & 0x1F));
    out.push(pid as u8);
    out.push(0x10 | cc.next());
    out.push(0);
    let len = section.len().min(PACKET_SIZE - HEADER_LEN - 1);
    out.extend_from_slice(&section[..len]);
    out.resize(start + PACKET_SIZE, 0xFF);
}
