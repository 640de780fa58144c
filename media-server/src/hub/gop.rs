//! GOP cache: the frames since the last keyframe, so a new viewer starts at once.

use std::collections::VecDeque;

use super::frame::{Frame, FrameKind};

/// Frames since the last video keyframe, capped in count and bytes.
///
/// When a cap is hit the cache empties and stays empty until the next keyframe, so
/// a stream that never sends one cannot grow memory.
#[derive(Debug)]
pub struct GopCache {
    frames: VecDeque<Frame>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    overflowed: bool,
}

impl GopCache {
    /// An empty cache with the given caps.
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            max_frames,
            max_bytes,
            overflowed: false,
        }
    }

    /// Offers a live (non-header) frame to the cache.
    pub fn push(&mut self, frame: &Frame) {
        if frame.is_sync_point() {
            self.clear();
            self.overflowed = false;
        } else if self.frames.is_empty() || self.overflowed || frame.kind == FrameKind::Script {
            return;
        }
        if self.frames.len() + 1 > self.max_frames
            || self.bytes + frame.payload.len() > self.max_bytes
        {
            self.clear();
            self.overflowed = true;
            return;
        }
        self.bytes += frame.payload.len();
        self.frames.push_back(frame.clone());
    }

    /// Drops every cached frame.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// The cached frames, keyframe first.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = &Frame> {
        self.frames.iter()
    }

    /// Cached frame count.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Cached payload bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(kind: FrameKind, keyframe: bool, len: usize) -> Frame {
        Frame {
            kind,
            dts: 0,
            cts: 0,
            keyframe,
            header: false,
            epoch: 1,
            payload: Bytes::from(vec![0u8; len]),
        }
    }

    #[test]
    fn starts_at_keyframe_and_restarts_on_next() {
        let mut gop = GopCache::new(100, 1 << 20);
        gop.push(&frame(FrameKind::Audio, false, 10));
        gop.push(&frame(FrameKind::Video, false, 10));
        assert!(gop.is_empty(), "nothing before the first keyframe");
        gop.push(&frame(FrameKind::Video, true, 10));
        gop.push(&frame(FrameKind::Audio, false, 10));
        gop.push(&frame(FrameKind::Video, false, 10));
        assert_eq!(gop.len(), 3);
        gop.push(&frame(FrameKind::Video, true, 10));
        assert_eq!(gop.len(), 1);
        assert!(gop.frames().next().is_some_and(Frame::is_sync_point));
    }

    #[test]
    fn caps_frames_and_bytes_until_next_keyframe() {
        let mut gop = GopCache::new(3, 1 << 20);
        gop.push(&frame(FrameKind::Video, true, 10));
        for _ in 0..5 {
            gop.push(&frame(FrameKind::Video, false, 10));
        }
        assert!(gop.is_empty());
        assert_eq!(gop.bytes(), 0);
        gop.push(&frame(FrameKind::Video, true, 10));
        assert_eq!(gop.len(), 1);

        let mut gop = GopCache::new(1000, 25);
        gop.push(&frame(FrameKind::Video, true, 10));
        gop.push(&frame(FrameKind::Video, false, 10));
        gop.push(&frame(FrameKind::Video, false, 10));
        assert!(gop.is_empty());
    }
}
