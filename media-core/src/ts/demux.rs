//! The MPEG-TS demuxer: finds the H.264 and AAC PIDs through PAT/PMT and reassembles PES
//! packets, tolerating unaligned input and counting continuity errors.

use super::pes;
use super::psi::{self, SectionError};
use super::{TsError, PACKET_SIZE, PID_PAT, SYNC_BYTE};

/// Which elementary stream a packet belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamKind {
    /// H.264 (Annex B access units).
    Video,
    /// AAC (ADTS frames).
    Audio,
}

/// One reassembled PES packet.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Stream the packet belongs to.
    pub kind: StreamKind,
    /// Presentation timestamp (90 kHz).
    pub pts: u64,
    /// Decode timestamp (90 kHz); equal to `pts` when the PES has none.
    pub dts: u64,
    /// The first TS packet had random_access_indicator set.
    pub random_access: bool,
    /// PES payload.
    pub data: Vec<u8>,
}

/// PES reassembly state of one PID.
#[derive(Debug, Default)]
struct Assembly {
    pid: Option<u16>,
    buf: Vec<u8>,
    active: bool,
    random_access: bool,
    last_cc: Option<u8>,
}

/// Demuxes a transport stream fed in arbitrary chunks.
#[derive(Debug, Default)]
pub struct Demuxer {
    pending: Vec<u8>,
    pmt_pid: Option<u16>,
    video: Assembly,
    audio: Assembly,
    ready: Vec<Packet>,
    continuity_errors: u64,
}

impl Demuxer {
    /// Creates a demuxer that waits for a PAT.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes and returns the PES packets completed so far. Unaligned input is buffered
    /// and garbage is skipped by resyncing on 0x47. On error the bad unit is dropped, packets
    /// already completed are kept for the next call, and demuxing can continue.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Packet>, TsError> {
        self.pending.extend_from_slice(data);
        let mut pos = 0;
        let mut result = Ok(());
        while result.is_ok() {
            let Some(offset) = self
                .pending
                .get(pos..)
                .and_then(|r| r.iter().position(|&b| b == SYNC_BYTE))
            else {
                pos = self.pending.len();
                break;
            };
            pos += offset;
            let Some(packet) = self.pending.get(pos..pos + PACKET_SIZE) else {
                break;
            };
            let packet: [u8; PACKET_SIZE] = match packet.try_into() {
                Ok(p) => p,
                Err(_) => break,
            };
            pos += PACKET_SIZE;
            result = self.packet(&packet);
        }
        self.pending.drain(..pos.min(self.pending.len()));
        result.map(|()| std::mem::take(&mut self.ready))
    }

    /// Completes any partial PES packets (end of input) and returns everything pending.
    pub fn flush(&mut self) -> Vec<Packet> {
        for kind in [StreamKind::Video, StreamKind::Audio] {
            let assembly = self.assembly(&kind);
            if assembly.active {
                assembly.active = false;
                let pes = std::mem::take(&mut assembly.buf);
                let random_access = assembly.random_access;
                self.emit(kind, 0, &pes, random_access).ok();
            }
        }
        std::mem::take(&mut self.ready)
    }

    /// Number of continuity counter jumps seen on the elementary stream PIDs.
    pub fn continuity_errors(&self) -> u64 {
        self.continuity_errors
    }

    fn assembly(&mut self, kind: &StreamKind) -> &mut Assembly {
        match kind {
            StreamKind::Video => &mut self.video,
            StreamKind::Audio => &mut self.audio,
        }
    }

    fn packet(&mut self, p: &[u8; PACKET_SIZE]) -> Result<(), TsError> {
        let pusi = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let control = (p[3] >> 4) & 0x03;
        let cc = p[3] & 0x0F;
        let mut start = 4;
        let mut random_access = false;
        let mut discontinuity = false;
        if control & 0x02 != 0 {
            let af_len = usize::from(p[4]);
            start = 5 + af_len;
            if start > PACKET_SIZE {
                return Err(TsError::BadAdaptationField(pid));
            }
            if af_len > 0 {
                discontinuity = p[5] & 0x80 != 0;
                random_access = p[5] & 0x40 != 0;
            }
        }
        if control & 0x01 == 0 {
            return Ok(());
        }
        let payload = &p[start..];
        if pid == PID_PAT {
            if pusi {
                self.pmt_pid = psi::parse_pat(payload).map_err(|e| section_error(e, pid))?;
            }
            return Ok(());
        }
        if Some(pid) == self.pmt_pid {
            if pusi {
                let (video, audio) = psi::parse_pmt(payload).map_err(|e| section_error(e, pid))?;
                self.video.pid = video;
                self.audio.pid = audio;
            }
            return Ok(());
        }
        let kind = if Some(pid) == self.video.pid {
            StreamKind::Video
        } else if Some(pid) == self.audio.pid {
            StreamKind::Audio
        } else {
            return Ok(());
        };
        self.pes_packet(kind, pid, pusi, cc, random_access, discontinuity, payload)
    }

    #[allow(clippy::too_many_arguments)]
    fn pes_packet(
        &mut self,
        kind: StreamKind,
        pid: u16,
        pusi: bool,
        cc: u8,
        random_access: bool,
        discontinuity: bool,
        payload: &[u8],
    ) -> Result<(), TsError> {
        let assembly = self.assembly(&kind);
        let expected = assembly.last_cc.map(|last| (last + 1) & 0x0F);
        if assembly.last_cc == Some(cc) && !pusi {
            return Ok(());
        }
        assembly.last_cc = Some(cc);
        let broken = expected.is_some_and(|e| e != cc) && !discontinuity;
        if broken {
            self.continuity_errors += 1;
        }
        let assembly = self.assembly(&kind);
        let mut finished = None;
        if pusi {
            if assembly.active {
                finished = Some((std::mem::take(&mut assembly.buf), assembly.random_access));
            }
            assembly.active = true;
            assembly.random_access = random_access;
        } else if broken {
            assembly.active = false;
            assembly.buf.clear();
        }
        if assembly.active {
            assembly.buf.extend_from_slice(payload);
        }
        let complete = assembly.active
            && pes::declared_len(&assembly.buf).is_some_and(|len| assembly.buf.len() >= len);
        let mut result = Ok(());
        if let Some((pes, ra)) = finished {
            result = self.emit(kind.clone(), pid, &pes, ra);
        }
        if complete {
            let assembly = self.assembly(&kind);
            assembly.active = false;
            let pes = std::mem::take(&mut assembly.buf);
            let ra = assembly.random_access;
            result = result.and(self.emit(kind, pid, &pes, ra));
        }
        result
    }

    fn emit(
        &mut self,
        kind: StreamKind,
        pid: u16,
        pes: &[u8],
        random_access: bool,
    ) -> Result<(), TsError> {
        let parsed = pes::parse(pes).ok_or(TsError::BadPes(pid))?;
        self.ready.push(Packet {
            kind,
            pts: parsed.pts,
            dts: parsed.dts,
            random_access,
            data: parsed.payload.to_vec(),
        });
        Ok(())
    }
}

fn section_error(e: SectionError, pid: u16) -> TsError {
    match e {
        SectionError::Crc => TsError::Crc(pid),
        SectionError::Malformed => TsError::BadSection(pid),
    }
}
