//! AAC: the AudioSpecificConfig from the RTMP/FLV sequence header, and ADTS framing for TS.

use crate::bits::{BitReader, EndOfData};
use thiserror::Error;

/// Sampling frequencies indexed by `sampling_frequency_index`.
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];
/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;
/// Samples per channel in one AAC frame.
pub const SAMPLES_PER_FRAME: u32 = 1024;

const OBJECT_TYPE_SBR: u8 = 5;
const OBJECT_TYPE_PS: u8 = 29;
const MAX_ADTS_FRAME_LEN: usize = 0x1FFF;

/// Errors from AAC parsing.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AacError {
    /// The data ends before the structure does.
    #[error("truncated AAC data")]
    Truncated,
    /// An audio object type ADTS cannot carry (0 or above 30).
    #[error("unsupported AAC audio object type {0}")]
    UnsupportedObjectType(u8),
    /// A sampling frequency index or explicit rate outside the standard table.
    #[error("unsupported AAC sampling frequency (index {index}, rate {rate})")]
    UnsupportedSampleRate {
        /// sampling_frequency_index.
        index: u8,
        /// Explicit rate when the index is 15, else 0.
        rate: u32,
    },
    /// An ADTS frame does not start with the 0xFFF syncword.
    #[error("missing ADTS syncword")]
    BadSyncword,
    /// An ADTS frame length shorter than its header.
    #[error("invalid ADTS frame length {0}")]
    BadFrameLength(usize),
}

impl From<EndOfData> for AacError {
    fn from(_: EndOfData) -> Self {
        AacError::Truncated
    }
}

/// The core of an MPEG-4 AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioSpecificConfig {
    /// Audio object type (2 = AAC LC); for explicit SBR/PS signalling, the underlying core type.
    pub object_type: u8,
    /// Index into [`SAMPLE_RATES`].
    pub sampling_index: u8,
    /// Sampling frequency in Hz.
    pub sample_rate: u32,
    /// Channel configuration (2 = stereo).
    pub channels: u8,
}

impl AudioSpecificConfig {
    /// Parses an AudioSpecificConfig. Explicit rates must be in [`SAMPLE_RATES`]; with explicit
    /// SBR/PS signalling the core object type and core sampling rate are returned.
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let mut r = BitReader::new(data);
        let mut object_type = read_object_type(&mut r)?;
        let (sampling_index, sample_rate) = read_sampling(&mut r)?;
        let channels = r.bits(4)? as u8;
        if object_type == OBJECT_TYPE_SBR || object_type == OBJECT_TYPE_PS {
            read_sampling(&mut r)?;
            object_type = read_object_type(&mut r)?;
        }
        if object_type == 0 || object_type > 30 {
            return Err(AacError::UnsupportedObjectType(object_type));
        }
        Ok(Self {
            object_type,
            sampling_index,
            sample_rate,
            channels,
        })
    }

    /// The 7-byte ADTS header (MPEG-4, protection_absent = 1) for a raw frame of `payload_len`
    /// bytes. The frame length field is 13 bits, so `payload_len` must be below 8185.
    pub fn adts_header(&self, payload_len: usize) -> [u8; 7] {
        let frame_len = (payload_len + ADTS_HEADER_LEN) & MAX_ADTS_FRAME_LEN;
        let profile = self.object_type.saturating_sub(1) & 0x03;
        [
            0xFF,
            0xF1,
            (profile << 6) | ((self.sampling_index & 0x0F) << 2) | ((self.channels >> 2) & 0x01),
            ((self.channels & 0x03) << 6) | (frame_len >> 11) as u8,
            (frame_len >> 3) as u8,
            (((frame_len & 0x07) as u8) << 5) | 0x1F,
            0xFC,
        ]
    }

    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Serializes the 2-byte AudioSpecificConfig.
    pub fn to_bytes(&self) -> Vec<u8> {
        let index = self.sampling_index & 0x0F;
        vec![
            (self.object_type << 3) | (index >> 1),
            ((index & 0x01) << 7) | ((self.channels & 0x0F) << 3),
        ]
    }

    /// Duration of one AAC frame in milliseconds.
    pub fn frame_duration_ms(&self) -> f64 {
        f64::from(SAMPLES_PER_FRAME) * 1000.0 / f64::from(self.sample_rate.max(1))
    }
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, AacError> {
    let object_type = r.bits(5)? as u8;
    if object_type == 31 {
        return Ok(32 + r.bits(6)? as u8);
    }
    Ok(object_type)
}

fn read_sampling(r: &mut BitReader<'_>) -> Result<(u8, u32), AacError> {
    let index = r.bits(4)? as u8;
    if index == 15 {
        let rate = r.bits(24)?;
        let position = SAMPLE_RATES.iter().position(|&x| x == rate);
        let position = position.ok_or(AacError::UnsupportedSampleRate { index, rate })?;
        return Ok((position as u8, rate));
    }
    SAMPLE_RATES
        .get(usize::from(index))
        .map(|&rate| (index, rate))
        .ok_or(AacError::UnsupportedSampleRate { index, rate: 0 })
}

/// Splits a buffer of ADTS frames into each frame's configuration and raw payload.
pub fn parse_adts(data: &[u8]) -> Result<Vec<(AudioSpecificConfig, &[u8])>, AacError> {
    let mut frames = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let h = rest.get(..ADTS_HEADER_LEN).ok_or(AacError::Truncated)?;
        if h[0] != 0xFF || h[1] & 0xF0 != 0xF0 {
            return Err(AacError::BadSyncword);
        }
        let header_len = if h[1] & 0x01 == 1 { 7 } else { 9 };
        let index = (h[2] >> 2) & 0x0F;
        let sample_rate = *SAMPLE_RATES
            .get(usize::from(index))
            .ok_or(AacError::UnsupportedSampleRate { index, rate: 0 })?;
        let frame_len =
            (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        if frame_len < header_len {
            return Err(AacError::BadFrameLength(frame_len));
        }
        let payload = rest.get(header_len..frame_len).ok_or(AacError::Truncated)?;
        let config = AudioSpecificConfig {
            object_type: (h[2] >> 6) + 1,
            sampling_index: index,
            sample_rate,
            channels: ((h[2] & 0x01) << 2) | (h[3] >> 6),
        };
        frames.push((config, payload));
        rest = &rest[frame_len..];
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LC_44100_STEREO: AudioSpecificConfig = AudioSpecificConfig {
        object_type: 2,
        sampling_index: 4,
        sample_rate: 44100,
        channels: 2,
    };

    #[test]
    fn parse_lc_stereo() {
        let config = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(config, LC_44100_STEREO);
        assert_eq!(config.codec_string(), "mp4a.40.2");
        assert_eq!(config.to_bytes(), vec![0x12, 0x10]);
    }

    #[test]
    fn adts_header_bytes() {
        assert_eq!(
            LC_44100_STEREO.adts_header(100),
            [0xFF, 0xF1, 0x50, 0x80, 0x0D, 0x7F, 0xFC]
        );
    }

    #[test]
    fn explicit_sbr_and_explicit_rate() {
        // HE-AAC: object type 5, 24 kHz core, stereo, extension 48 kHz, core object type 2.
        let he = AudioSpecificConfig::parse(&[0x2B, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!((he.object_type, he.sample_rate, he.channels), (2, 24000, 2));
        // Index 15 with an explicit 48000 Hz.
        let explicit = AudioSpecificConfig::parse(&[0x17, 0x80, 0x5D, 0xC0, 0x10]).unwrap();
        assert_eq!(
            (
                explicit.sampling_index,
                explicit.sample_rate,
                explicit.channels
            ),
            (3, 48000, 2)
        );
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            AudioSpecificConfig::parse(&[0x12]),
            Err(AacError::Truncated)
        );
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x90]),
            Err(AacError::UnsupportedSampleRate { index: 13, rate: 0 })
        );
        assert_eq!(
            AudioSpecificConfig::parse(&[0x02, 0x10]),
            Err(AacError::UnsupportedObjectType(0))
        );
    }

    #[test]
    fn adts_round_trip() {
        let mut stream = Vec::new();
        for payload in [&[1u8, 2, 3][..], &[4u8; 300][..]] {
            stream.extend_from_slice(&LC_44100_STEREO.adts_header(payload.len()));
            stream.extend_from_slice(payload);
        }
        let frames = parse_adts(&stream).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], (LC_44100_STEREO, &[1u8, 2, 3][..]));
        assert_eq!(frames[1].1.len(), 300);
        assert_eq!(
            parse_adts(&stream[..stream.len() - 1]),
            Err(AacError::Truncated)
        );
        assert_eq!(
            parse_adts(&[0xFF, 0x01, 0, 0, 0, 0, 0]),
            Err(AacError::BadSyncword)
        );
        assert_eq!(
            parse_adts(&[0xFF, 0xF1, 0x50, 0x80, 0x00, 0x1F, 0xFC]),
            Err(AacError::BadFrameLength(0))
        );
    }
}
