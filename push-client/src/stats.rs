//! Live counters of a publisher, readable while it runs.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use serde::Serialize;

/// Where a publisher is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishState {
    /// Connecting or negotiating.
    Connecting,
    /// Sending media.
    Publishing,
    /// Waiting before a reconnect.
    Backoff,
    /// Done.
    Stopped,
}

/// Counters shared between a publisher task and whoever watches it.
#[derive(Debug, Default)]
pub struct PublishStats {
    state: AtomicU8,
    frames: AtomicU64,
    bytes: AtomicU64,
    reconnects: AtomicU64,
}

/// A point-in-time copy of [`PublishStats`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PublishSnapshot {
    /// Current state.
    pub state: PublishState,
    /// Media messages sent.
    pub frames: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Reconnections after a failure.
    pub reconnects: u64,
}

impl PublishStats {
    pub(crate) fn set_state(&self, state: PublishState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub(crate) fn add_frame(&self) {
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Current values.
    pub fn snapshot(&self) -> PublishSnapshot {
        let state = match self.state.load(Ordering::Relaxed) {
            0 => PublishState::Connecting,
            1 => PublishState::Publishing,
            2 => PublishState::Backoff,
            _ => PublishState::Stopped,
        };
        PublishSnapshot {
            state,
            frames: self.frames.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}
