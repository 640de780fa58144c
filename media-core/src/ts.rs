//! MPEG-TS: a muxer for H.264 + AAC (ADTS) and a demuxer that reassembles PES packets.

mod crc;
mod demux;
mod mux;
mod packet;
mod pes;
mod psi;

pub use crc::crc32_mpeg2;
pub use demux::{Demuxer, Packet, StreamKind};
pub use mux::{Muxer, PCR_DELAY_90K};

use thiserror::Error;

/// Size of every transport stream packet.
pub const PACKET_SIZE: usize = 188;
/// Sync byte at the start of every packet.
pub const SYNC_BYTE: u8 = 0x47;
/// PID of the program association table.
pub const PID_PAT: u16 = 0;
/// PID of the program map table.
pub const PID_PMT: u16 = 0x1000;
/// PID of the H.264 elementary stream.
pub const PID_VIDEO: u16 = 0x100;
/// PID of the AAC elementary stream.
pub const PID_AUDIO: u16 = 0x101;
/// PMT stream type of H.264.
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// PMT stream type of AAC in ADTS.
pub const STREAM_TYPE_AAC: u8 = 0x0F;
/// Timestamps are 33-bit values of a 90 kHz clock.
pub const TIMESTAMP_MASK: u64 = (1 << 33) - 1;

/// Errors from TS demuxing; the offending unit is dropped and demuxing can continue.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TsError {
    /// A PSI section's CRC32 does not match.
    #[error("PSI section CRC mismatch on PID {0:#x}")]
    Crc(u16),
    /// A PSI section is malformed or spans packets.
    #[error("malformed PSI section on PID {0:#x}")]
    BadSection(u16),
    /// An adaptation field longer than its packet.
    #[error("adaptation field overruns packet on PID {0:#x}")]
    BadAdaptationField(u16),
    /// A PES packet with a bad start code or header.
    #[error("malformed PES packet on PID {0:#x}")]
    BadPes(u16),
}
