//! Bit-level helpers for H.264 and AAC syntax: an MSB-first bit reader with exp-Golomb
//! codes, and NAL emulation prevention in both directions.

/// The reader ran past the end of its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EndOfData;

/// Reads bits MSB-first from a byte slice.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts reading at the first bit of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Reads one bit.
    pub(crate) fn bit(&mut self) -> Result<bool, EndOfData> {
        let byte = self.data.get(self.pos / 8).ok_or(EndOfData)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` bits (at most 32) as an unsigned integer.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, EndOfData> {
        let mut value: u64 = 0;
        for _ in 0..n.min(32) {
            value = (value << 1) | u64::from(self.bit()?);
        }
        Ok(value as u32)
    }

    /// Reads an unsigned exp-Golomb code `ue(v)`.
    pub(crate) fn ue(&mut self) -> Result<u32, EndOfData> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(EndOfData);
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// Reads a signed exp-Golomb code `se(v)`.
    pub(crate) fn se(&mut self) -> Result<i32, EndOfData> {
        let k = i64::from(self.ue()?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(value as i32)
    }
}

/// Removes emulation prevention bytes (`00 00 03` → `00 00`), turning an EBSP into an RBSP.
pub(crate) fn unescape(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Inserts emulation prevention bytes so no `00 00 0x` (x <= 3) sequence appears.
pub(crate) fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 16);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0, 1, 2, 3, 4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        let values: Vec<u32> = (0..5).map(|_| r.ue().unwrap()).collect();
        assert_eq!(values, vec![0, 1, 2, 3, 4]);
        let mut r = BitReader::new(&[0b0100_1100]);
        assert_eq!(r.se().unwrap(), 1);
        assert_eq!(r.se().unwrap(), -1);
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0]).ue(), Err(EndOfData));
    }

    #[test]
    fn emulation_prevention_round_trip() {
        let rbsp = [0, 0, 1, 0, 0, 0, 0, 0, 3, 5];
        let ebsp = escape(&rbsp);
        assert_eq!(ebsp, vec![0, 0, 3, 1, 0, 0, 3, 0, 0, 3, 0, 3, 5]);
        assert_eq!(unescape(&ebsp), rbsp.to_vec());
    }
}
