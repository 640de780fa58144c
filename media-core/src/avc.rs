//! H.264/AVC: the decoder configuration record, SPS parsing, and conversion between
//! length-prefixed (AVCC) and start-code (Annex B) NAL unit framing.

use crate::bits::{unescape, BitReader, EndOfData};
use bytes::Bytes;
use thiserror::Error;

/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of SEI.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// The 4-byte Annex B start code.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Errors from H.264 parsing.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AvcError {
    /// The data ends before the structure does.
    #[error("truncated H.264 data")]
    Truncated,
    /// The configuration record's version byte is not 1.
    #[error("unsupported AVCDecoderConfigurationRecord version {0}")]
    BadVersion(u8),
    /// A NALU length prefix size outside 1..=4.
    #[error("invalid NALU length size {0}")]
    BadLengthSize(u8),
    /// A length-prefixed NALU runs past the end of the frame.
    #[error("NALU length {len} overruns the {remaining} remaining bytes")]
    LengthOverrun {
        /// Declared NALU length.
        len: usize,
        /// Bytes left in the frame.
        remaining: usize,
    },
    /// The NAL unit is not a sequence parameter set.
    #[error("NAL unit type {0} is not an SPS")]
    NotSps(u8),
    /// The SPS holds values outside what the standard allows.
    #[error("invalid SPS: {0}")]
    InvalidSps(&'static str),
}

impl From<EndOfData> for AvcError {
    fn from(_: EndOfData) -> Self {
        AvcError::Truncated
    }
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15), the AVC sequence header.
#[derive(Debug, Clone, PartialEq)]
pub struct AvcConfig {
    /// AVCProfileIndication.
    pub profile: u8,
    /// profile_compatibility.
    pub compatibility: u8,
    /// AVCLevelIndication.
    pub level: u8,
    /// Size in bytes of each NALU length prefix (1, 2 or 4).
    pub nalu_length_size: u8,
    /// Sequence parameter set NAL units.
    pub sps: Vec<Bytes>,
    /// Picture parameter set NAL units.
    pub pps: Vec<Bytes>,
}

impl AvcConfig {
    /// Parses an AVCDecoderConfigurationRecord; trailing high-profile extensions are ignored.
    pub fn parse(record: &[u8]) -> Result<Self, AvcError> {
        let head = record.get(..6).ok_or(AvcError::Truncated)?;
        if head[0] != 1 {
            return Err(AvcError::BadVersion(head[0]));
        }
        let mut rest = &record[6..];
        let sps = read_parameter_sets(&mut rest, usize::from(head[5] & 0x1F))?;
        let (&pps_count, tail) = rest.split_first().ok_or(AvcError::Truncated)?;
        rest = tail;
        let pps = read_parameter_sets(&mut rest, usize::from(pps_count))?;
        Ok(Self {
            profile: head[1],
            compatibility: head[2],
            level: head[3],
            nalu_length_size: (head[4] & 0x03) + 1,
            sps,
            pps,
        })
    }

    /// Serializes the record (at most 31 SPS and 255 PPS are written).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![
            1,
            self.profile,
            self.compatibility,
            self.level,
            0xFC | (self.nalu_length_size.saturating_sub(1) & 0x03),
        ];
        let sps = &self.sps[..self.sps.len().min(31)];
        out.push(0xE0 | sps.len() as u8);
        write_parameter_sets(&mut out, sps);
        let pps = &self.pps[..self.pps.len().min(255)];
        out.push(pps.len() as u8);
        write_parameter_sets(&mut out, pps);
        out
    }

    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile, self.compatibility, self.level
        )
    }

    /// Picture size from the first SPS, if it parses.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        let info = parse_sps(self.sps.first()?).ok()?;
        Some((info.width, info.height))
    }

    /// All SPS then all PPS, each behind a 4-byte start code.
    pub fn annexb_parameter_sets(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for nalu in self.sps.iter().chain(&self.pps) {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nalu);
        }
        out
    }
}

fn read_parameter_sets(rest: &mut &[u8], count: usize) -> Result<Vec<Bytes>, AvcError> {
    let mut sets = Vec::with_capacity(count);
    for _ in 0..count {
        let len_bytes = rest.get(..2).ok_or(AvcError::Truncated)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let nalu = rest.get(2..2 + len).ok_or(AvcError::Truncated)?;
        sets.push(Bytes::copy_from_slice(nalu));
        *rest = &rest[2 + len..];
    }
    Ok(sets)
}

fn write_parameter_sets(out: &mut Vec<u8>, sets: &[Bytes]) {
    for nalu in sets {
        let nalu = &nalu[..nalu.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(nalu.len() as u16).to_be_bytes());
        out.extend_from_slice(nalu);
    }
}

/// What an SPS says about the picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpsInfo {
    /// profile_idc.
    pub profile_idc: u8,
    /// level_idc.
    pub level_idc: u8,
    /// Width in pixels after cropping.
    pub width: u32,
    /// Height in pixels after cropping.
    pub height: u32,
    /// Frame rate from VUI timing info (`time_scale / (2 * num_units_in_tick)`), if present.
    pub fps: Option<f64>,
}

/// Parses an SPS NAL unit (including its 1-byte NAL header).
pub fn parse_sps(nalu: &[u8]) -> Result<SpsInfo, AvcError> {
    let header = *nalu.first().ok_or(AvcError::Truncated)?;
    if header & 0x1F != NAL_SPS {
        return Err(AvcError::NotSps(header & 0x1F));
    }
    let rbsp = unescape(&nalu[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    r.bits(8)?;
    let level_idc = r.bits(8)? as u8;
    r.ue()?;
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(AvcError::InvalidSps("chroma_format_idc"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        r.ue()?;
        r.ue()?;
        r.bit()?;
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?;
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(AvcError::InvalidSps(
                    "num_ref_frames_in_pic_order_cnt_cycle",
                ));
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?;
    r.bit()?;
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?;
    }
    r.bit()?;
    let mut crop = [0u64; 4];
    if r.bit()? {
        for c in &mut crop {
            *c = u64::from(r.ue()?);
        }
    }
    let fields = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_x, crop_y) = match chroma_array_type {
        1 => (2, 2 * fields),
        2 => (2, fields),
        _ => (1, fields),
    };
    let width = (width_mbs * 16)
        .checked_sub(crop_x * (crop[0] + crop[1]))
        .ok_or(AvcError::InvalidSps("horizontal cropping"))?;
    let height = (fields * height_units * 16)
        .checked_sub(crop_y * (crop[2] + crop[3]))
        .ok_or(AvcError::InvalidSps("vertical cropping"))?;
    let width = u32::try_from(width).map_err(|_| AvcError::InvalidSps("width"))?;
    let height = u32::try_from(height).map_err(|_| AvcError::InvalidSps("height"))?;
    let fps = match r.bit() {
        Ok(true) => vui_fps(&mut r).ok().flatten(),
        _ => None,
    };
    Ok(SpsInfo {
        profile_idc,
        level_idc,
        width,
        height,
        fps,
    })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), EndOfData> {
    let mut last: i64 = 8;
    let mut next: i64 = 8;
    for _ in 0..size {
        if next != 0 {
            next = (last + i64::from(r.se()?)).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Reads the VUI up to its timing info and returns the frame rate it declares.
fn vui_fps(r: &mut BitReader<'_>) -> Result<Option<f64>, EndOfData> {
    if r.bit()? && r.bits(8)? == 255 {
        r.bits(32)?;
    }
    if r.bit()? {
        r.bit()?;
    }
    if r.bit()? {
        r.bits(4)?;
        if r.bit()? {
            r.bits(24)?;
        }
    }
    if r.bit()? {
        r.ue()?;
        r.ue()?;
    }
    if !r.bit()? {
        return Ok(None);
    }
    let units = r.bits(32)?;
    let scale = r.bits(32)?;
    Ok((units > 0 && scale > 0).then(|| f64::from(scale) / (2.0 * f64::from(units))))
}

/// NAL unit type (low 5 bits of the first byte); 0 for an empty slice.
pub fn nal_type(nalu: &[u8]) -> u8 {
    nalu.first().map_or(0, |b| b & 0x1F)
}

/// Splits a frame of length-prefixed NALUs; empty NALUs are skipped.
pub fn avcc_nalus(data: &[u8], nalu_length_size: u8) -> Result<Vec<&[u8]>, AvcError> {
    let size = usize::from(nalu_length_size);
    if !(1..=4).contains(&size) {
        return Err(AvcError::BadLengthSize(nalu_length_size));
    }
    let mut nalus = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let prefix = rest.get(..size).ok_or(AvcError::Truncated)?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let body = &rest[size..];
        let nalu = body.get(..len).ok_or(AvcError::LengthOverrun {
            len,
            remaining: body.len(),
        })?;
        if !nalu.is_empty() {
            nalus.push(nalu);
        }
        rest = &body[len..];
    }
    Ok(nalus)
}

/// Appends an AVCC frame to `out` as Annex B with 4-byte start codes.
pub fn avcc_to_annexb(
    data: &[u8],
    nalu_length_size: u8,
    out: &mut Vec<u8>,
) -> Result<(), AvcError> {
    for nalu in avcc_nalus(data, nalu_length_size)? {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nalu);
    }
    Ok(())
}

/// Splits an Annex B byte stream on 3- or 4-byte start codes; bytes before the first start code
/// and trailing zero bytes of each NALU are dropped.
pub fn annexb_nalus(data: &[u8]) -> Vec<&[u8]> {
    let mut nalus = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                push_trimmed(&mut nalus, &data[s..i]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push_trimmed(&mut nalus, &data[s..]);
    }
    nalus
}

fn push_trimmed<'a>(nalus: &mut Vec<&'a [u8]>, nalu: &'a [u8]) {
    let end = nalu.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    if end > 0 {
        nalus.push(&nalu[..end]);
    }
}

/// Converts an Annex B byte stream to NALUs with 4-byte big-endian length prefixes.
pub fn annexb_to_avcc(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    for nalu in annexb_nalus(data) {
        out.extend_from_slice(&(nalu.len() as u32).to_be_bytes());
        out.extend_from_slice(nalu);
    }
    out
}

/// True when the AVCC frame contains an IDR slice; false for malformed frames.
pub fn is_keyframe_avcc(data: &[u8], nalu_length_size: u8) -> bool {
    avcc_nalus(data, nalu_length_size)
        .map(|nalus| nalus.iter().any(|n| nal_type(n) == NAL_IDR))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv;
    use crate::test_sample::SPS_720P;

    const SPS_1080P: [u8; 26] = [
        0x67, 0x4d, 0x40, 0x28, 0xec, 0xa0, 0x3c, 0x01, 0x13, 0xf2, 0xe0, 0x22, 0x00, 0x00, 0x03,
        0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x64, 0x1e, 0x30, 0x63, 0x2c,
    ];

    fn sample_config() -> AvcConfig {
        let tags = flv::parse_file(include_bytes!("../../assets/sample.flv")).unwrap();
        let header = tags.iter().find(|t| t.tag_type == flv::TAG_VIDEO).unwrap();
        AvcConfig::parse(&header.data[flv::VIDEO_HEADER_LEN..]).unwrap()
    }

    #[test]
    fn sample_config_and_sps() {
        let config = sample_config();
        assert_eq!(config.codec_string(), "avc1.64001e");
        assert_eq!(config.nalu_length_size, 4);
        assert_eq!(config.dimensions(), Some((640, 360)));
        let sps = parse_sps(&config.sps[0]).unwrap();
        assert_eq!((sps.profile_idc, sps.width, sps.height), (100, 640, 360));
        assert_eq!(sps.fps, Some(30.0));
        assert_eq!(AvcConfig::parse(&config.to_bytes()).unwrap(), config);
        let annexb = config.annexb_parameter_sets();
        assert_eq!(
            annexb_nalus(&annexb),
            vec![&config.sps[0][..], &config.pps[0][..]]
        );
    }

    #[test]
    fn sps_vectors_with_cropping() {
        let hd = parse_sps(&SPS_720P).unwrap();
        assert_eq!(
            (hd.profile_idc, hd.level_idc, hd.width, hd.height),
            (77, 31, 1280, 720)
        );
        assert_eq!(hd.fps, Some(25.0));
        let full = parse_sps(&SPS_1080P).unwrap();
        assert_eq!((full.width, full.height), (1920, 1080));
        assert_eq!(full.fps, Some(25.0));
        assert_eq!(parse_sps(&[0x68, 1, 2]), Err(AvcError::NotSps(8)));
        assert_eq!(parse_sps(&SPS_720P[..6]), Err(AvcError::Truncated));
    }

    #[test]
    fn config_errors() {
        assert_eq!(AvcConfig::parse(&[1, 2, 3]), Err(AvcError::Truncated));
        assert_eq!(
            AvcConfig::parse(&[0, 0, 0, 0, 0, 0]),
            Err(AvcError::BadVersion(0))
        );
        assert_eq!(
            AvcConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 9, 0x67]),
            Err(AvcError::Truncated)
        );
    }

    #[test]
    fn avcc_annexb_round_trip() {
        let avcc = [0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 3, 0x65, 0xAA, 0xBB];
        let mut annexb = Vec::new();
        avcc_to_annexb(&avcc, 4, &mut annexb).unwrap();
        assert_eq!(
            annexb,
            vec![0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x65, 0xAA, 0xBB]
        );
        assert_eq!(annexb_to_avcc(&annexb), avcc.to_vec());
        assert!(is_keyframe_avcc(&avcc, 4));
        assert!(!is_keyframe_avcc(&avcc[..6], 4));
        assert_eq!(
            avcc_nalus(&[0, 5, 1, 2], 2),
            Err(AvcError::LengthOverrun {
                len: 5,
                remaining: 2
            })
        );
        assert_eq!(avcc_nalus(&[], 3), Ok(vec![]));
        assert_eq!(avcc_nalus(&[1], 0), Err(AvcError::BadLengthSize(0)));
        assert_eq!(avcc_nalus(&[2, 0x41, 0x42], 1), Ok(vec![&[0x41, 0x42][..]]));
    }

    #[test]
    fn annexb_split_on_three_and_four_byte_start_codes() {
        let data = [
            9, 0, 0, 1, 0x67, 1, 0, 0, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 3, 0,
        ];
        assert_eq!(
            annexb_nalus(&data),
            vec![&[0x67, 1][..], &[0x68, 2][..], &[0x65, 3][..]]
        );
        assert!(annexb_nalus(&[1, 2, 3]).is_empty());
        assert_eq!(nal_type(&[0x65]), NAL_IDR);
        assert_eq!(nal_type(&[]), 0);
    }
}
