//! The wall clock, read at the edges of the sans-I/O packagers to date what they write.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in unix milliseconds (0 before 1970).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
