//! `--shard i/N`: which share of every workload this process runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The `index`-th of `count` shards (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl Shard {
    /// The whole run on one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The global indices `0..total` this shard owns: every `count`-th, from `index`.
    pub fn indices(self, total: u64) -> impl Iterator<Item = u64> {
        (self.index..total).step_by(self.count as usize)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `i/N` with `0 <= i < N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?} is not i/N"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("bad shard index {i:?}"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("bad shard count {n:?}"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {s:?}: need 0 <= i < N"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_index() {
        let s: Shard = "1/3".parse().expect("valid");
        assert_eq!(s, Shard { index: 1, count: 3 });
        assert!("3/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!(s.indices(7).collect::<Vec<_>>(), [1, 4]);
    }
}
