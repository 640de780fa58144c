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
    /// and garbage is skipped by resyncing on a 0x47 that is followed by another one 188 bytes
    /// later (or by the end of the data). On error the bad unit is dropped, packets
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
            let next = self.pending.get(pos + PACKET_SIZE);
            if next.is_some_and(|&b| b != SYNC_BYTE) {
                pos += 1;
                continue;
            }
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
                let (pid, random_access) =
                    (assembly.pid.unwrap_or_default(), assembly.random_access);
                self.emit(kind, pid, &pes, random_access).ok();
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
            if assembly.active && !broken {
                finished = Some((std::mem::take(&mut assembly.buf), assembly.random_access));
            }
            assembly.buf.clear();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::{Muxer, PID_VIDEO};

    struct Frame {
        dts: u64,
        pts: u64,
        keyframe: bool,
        data: Vec<u8>,
    }

    fn video_frames() -> Vec<Frame> {
        // I P B B pattern: decode order with PTS reordered ahead of DTS.
        let offsets = [2u64, 5, 3, 4, 8, 6, 7];
        offsets
            .iter()
            .enumerate()
            .map(|(i, &pts_frames)| Frame {
                dts: 90_000 + i as u64 * 3000,
                pts: 90_000 + pts_frames * 3000,
                keyframe: i == 0,
                data: [
                    0,
                    0,
                    0,
                    1,
                    0x09,
                    0xF0,
                    0,
                    0,
                    0,
                    1,
                    if i == 0 { 0x65 } else { 0x41 },
                ]
                .into_iter()
                .chain((0..(i * 150 + 10)).map(|b| (b % 250 + 1) as u8))
                .collect(),
            })
            .collect()
    }

    fn mux(frames: &[Frame]) -> Vec<u8> {
        let mut muxer = Muxer::new(true, true);
        let mut out = Vec::new();
        muxer.write_tables(&mut out);
        for (i, f) in frames.iter().enumerate() {
            muxer.write_video(&mut out, f.dts, f.pts, f.keyframe, &f.data);
            muxer.write_audio(
                &mut out,
                f.dts + 100,
                &[0xFF, 0xF1, 0x50, 0x80, 0x01, 0x3F, 0xFC, i as u8, 2],
            );
        }
        out
    }

    #[test]
    fn mux_demux_round_trip_in_odd_chunks() {
        let frames = video_frames();
        let ts = mux(&frames);
        let mut demuxer = Demuxer::new();
        let mut packets = Vec::new();
        for chunk in ts.chunks(100) {
            packets.extend(demuxer.push(chunk).unwrap());
        }
        packets.extend(demuxer.flush());
        let video: Vec<&Packet> = packets
            .iter()
            .filter(|p| p.kind == StreamKind::Video)
            .collect();
        let audio: Vec<&Packet> = packets
            .iter()
            .filter(|p| p.kind == StreamKind::Audio)
            .collect();
        assert_eq!(video.len(), frames.len());
        assert_eq!(audio.len(), frames.len());
        for (packet, frame) in video.iter().zip(&frames) {
            assert_eq!((packet.dts, packet.pts), (frame.dts, frame.pts));
            assert_eq!(packet.data, frame.data);
            assert_eq!(packet.random_access, frame.keyframe);
        }
        assert!(video.iter().any(|p| p.pts != p.dts));
        assert_eq!(
            (audio[3].pts, audio[3].dts),
            (frames[3].dts + 100, frames[3].dts + 100)
        );
        assert_eq!(audio[3].data[7], 3);
        assert_eq!(demuxer.continuity_errors(), 0);
    }

    #[test]
    fn garbage_is_skipped_and_lost_packets_counted() {
        let frames = video_frames();
        let ts = mux(&frames);
        let lost = ts
            .chunks(PACKET_SIZE)
            .position(|p| {
                (u16::from(p[1] & 0x1F) << 8 | u16::from(p[2])) == PID_VIDEO && p[1] & 0x40 == 0
            })
            .unwrap();
        let mut damaged = vec![1, 2, SYNC_BYTE, 3];
        for (i, packet) in ts.chunks(PACKET_SIZE).enumerate() {
            if i != lost {
                damaged.extend_from_slice(packet);
            }
        }
        let mut demuxer = Demuxer::new();
        let mut packets = demuxer.push(&damaged).unwrap();
        packets.extend(demuxer.flush());
        assert_eq!(demuxer.continuity_errors(), 1);
        let video = packets
            .iter()
            .filter(|p| p.kind == StreamKind::Video)
            .count();
        assert_eq!(video, frames.len() - 1);
    }

    #[test]
    fn bad_pat_crc_is_an_error() {
        let mut ts = mux(&video_frames());
        ts[10] ^= 0xFF;
        let mut demuxer = Demuxer::new();
        assert_eq!(demuxer.push(&ts).map(|p| p.len()), Err(TsError::Crc(0)));
    }
}
