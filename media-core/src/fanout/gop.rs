//! GOP cache: the frames since the last keyframe, so a new viewer starts at once.

use std::collections::VecDeque;

use super::{Class, Unit};

/// Frames since the last video keyframe, capped in count and bytes.
///
/// When a cap is hit the cache empties and stays empty until the next keyframe, so a stream
/// that never sends one cannot grow memory.
#[derive(Debug, Clone)]
pub struct GopCache<F> {
    frames: VecDeque<F>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    overflowed: bool,
}

impl<F: Unit> GopCache<F> {
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

    /// Offers a frame (headers and metadata are ignored).
    pub fn push(&mut self, frame: &F) {
        match frame.class() {
            Class::Keyframe => {
                self.clear();
                self.overflowed = false;
            }
            Class::Video | Class::Audio if !self.frames.is_empty() && !self.overflowed => {}
            _ => return,
        }
        if self.frames.len() + 1 > self.max_frames || self.bytes + frame.size() > self.max_bytes {
            self.clear();
            self.overflowed = true;
            return;
        }
        self.bytes += frame.size();
        self.frames.push_back(frame.clone());
    }

    /// Drops every cached frame.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// The cached frames, keyframe first.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = &F> {
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
pub(crate) mod tests {
    use super::*;

    /// A test unit: its class and size.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct U(pub Class, pub usize);

    impl Unit for U {
        fn class(&self) -> Class {
            self.0
        }
        fn size(&self) -> usize {
            self.1
        }
    }

    #[test]
    fn starts_at_keyframe_and_restarts_on_next() {
        let mut gop = GopCache::new(100, 1 << 20);
        gop.push(&U(Class::Video, 10));
        assert!(gop.is_empty(), "nothing before the first keyframe");
        gop.push(&U(Class::Keyframe, 10));
        gop.push(&U(Class::Video, 10));
        gop.push(&U(Class::VideoHeader, 10));
        gop.push(&U(Class::Audio, 10));
        assert_eq!(gop.len(), 3);
        gop.push(&U(Class::Keyframe, 10));
        assert_eq!(gop.len(), 1);
        assert_eq!(gop.frames().next(), Some(&U(Class::Keyframe, 10)));
    }

    #[test]
    fn caps_frames_and_bytes_until_next_keyframe() {
        let mut gop = GopCache::new(3, 1 << 20);
        gop.push(&U(Class::Keyframe, 10));
        for _ in 0..5 {
            gop.push(&U(Class::Video, 10));
        }
        assert!(gop.is_empty());
        assert_eq!(gop.bytes(), 0);
        gop.push(&U(Class::Keyframe, 10));
        assert_eq!(gop.len(), 1);

        let mut gop = GopCache::new(1000, 25);
        gop.push(&U(Class::Keyframe, 10));
        gop.push(&U(Class::Video, 10));
        gop.push(&U(Class::Video, 10));
        assert!(gop.is_empty());
    }
}
