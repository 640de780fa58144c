//! Timestamp repair: unwrapping 32-bit RTMP millisecond timestamps and keeping DTS monotonic.

const HALF_RANGE: i64 = 1 << 31;

/// Turns 32-bit RTMP millisecond timestamps into a `u64` timeline that keeps counting across
/// the 2^32 ms wraparound. Each input is placed nearest to the previous one, so a jump back by
/// more than 2^31 is read as a wrap forward.
#[derive(Debug, Clone, Default)]
pub struct Unwrapper {
    last: Option<u64>,
}

impl Unwrapper {
    /// Creates an unwrapper with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps one 32-bit timestamp onto the extended timeline.
    pub fn unwrap(&mut self, ts: u32) -> u64 {
        let value = match self.last {
            None => u64::from(ts),
            Some(last) => {
                let diff = i64::from(ts) - (last & 0xFFFF_FFFF) as i64;
                let step = if diff < -HALF_RANGE {
                    diff + (1 << 32)
                } else if diff > HALF_RANGE {
                    diff - (1 << 32)
                } else {
                    diff
                };
                u64::try_from(last as i128 + i128::from(step)).unwrap_or(u64::from(ts))
            }
        };
        self.last = Some(value);
        value
    }
}

/// Makes a DTS series never go backwards, and continues the timeline across republishing.
#[derive(Debug, Clone, Default)]
pub struct Monotonic {
    last: Option<u64>,
    offset: i128,
    rebase_pending: bool,
}

impl Monotonic {
    /// Creates a filter with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns `max(dts + offset, last output)`; the offset is zero until [`Monotonic::rebase`].
    pub fn fix(&mut self, dts: u64) -> u64 {
        if self.rebase_pending {
            self.rebase_pending = false;
            if let Some(last) = self.last {
                self.offset = i128::from(last) + 1 - i128::from(dts);
            }
        }
        let shifted = u64::try_from((i128::from(dts) + self.offset).max(0)).unwrap_or(u64::MAX);
        let out = self.last.map_or(shifted, |last| shifted.max(last));
        self.last = Some(out);
        out
    }

    /// Makes the next input continue from `last + 1`, e.g. when a new publisher restarts at 0.
    pub fn rebase(&mut self) {
        self.rebase_pending = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_across_2_pow_32() {
        let mut u = Unwrapper::new();
        assert_eq!(u.unwrap(0xFFFF_FF00), 0xFFFF_FF00);
        assert_eq!(u.unwrap(0xFFFF_FFF0), 0xFFFF_FFF0);
        assert_eq!(u.unwrap(0x10), (1 << 32) + 0x10);
        assert_eq!(
            u.unwrap(0xFFFF_FFF8),
            0xFFFF_FFF8,
            "late packet from before the wrap"
        );
        assert_eq!(u.unwrap(0x20), (1 << 32) + 0x20);
        assert_eq!(u.unwrap(0x8000_0010), (1 << 32) + 0x8000_0010);
        assert_eq!(u.unwrap(5), (2 << 32) + 5);
    }

    #[test]
    fn small_jumps_back_are_not_wraps() {
        let mut u = Unwrapper::new();
        assert_eq!(u.unwrap(1000), 1000);
        assert_eq!(u.unwrap(900), 900);
        assert_eq!(u.unwrap(0xFFFF_FFF0), 0xFFFF_FFF0, "never below zero");
    }

    #[test]
    fn monotonic_and_rebase() {
        let mut m = Monotonic::new();
        assert_eq!(m.fix(100), 100);
        assert_eq!(m.fix(90), 100);
        assert_eq!(m.fix(133), 133);
        m.rebase();
        assert_eq!(m.fix(0), 134);
        assert_eq!(m.fix(33), 167);
        assert_eq!(m.fix(20), 167);
        m.rebase();
        assert_eq!(m.fix(5000), 168);
        assert_eq!(m.fix(5010), 178);
    }
}
