//! What a new viewer receives before live frames.

use super::{Class, GopCache, Unit};

/// The latest metadata and sequence headers, and the current GOP.
#[derive(Debug, Clone)]
pub struct StartCache<F> {
    script: Option<F>,
    video_header: Option<F>,
    audio_header: Option<F>,
    gop: GopCache<F>,
}

impl<F: Unit> StartCache<F> {
    /// Empty, with the GOP cache's caps.
    pub fn new(gop_max_frames: usize, gop_max_bytes: usize) -> Self {
        Self {
            script: None,
            video_header: None,
            audio_header: None,
            gop: GopCache::new(gop_max_frames, gop_max_bytes),
        }
    }

    /// Records a unit as it passes.
    pub fn record(&mut self, unit: &F) {
        match unit.class() {
            Class::Script => self.script = Some(unit.clone()),
            Class::VideoHeader => self.video_header = Some(unit.clone()),
            Class::AudioHeader => self.audio_header = Some(unit.clone()),
            Class::Keyframe | Class::Video | Class::Audio => self.gop.push(unit),
        }
    }

    /// Forgets the GOP (a new publish starts; headers stay until replaced).
    pub fn clear_gop(&mut self) {
        self.gop.clear();
    }

    /// The sequence headers a viewer needs again after skipping: video, then audio.
    pub fn headers(&self) -> [Option<&F>; 2] {
        [self.video_header.as_ref(), self.audio_header.as_ref()]
    }

    /// Metadata, headers, then the GOP: what a new viewer gets first.
    pub fn startup(&self) -> Vec<F> {
        [&self.script, &self.video_header, &self.audio_header]
            .into_iter()
            .flatten()
            .chain(self.gop.frames())
            .cloned()
            .collect()
    }

    /// Whether (audio, video) sequence headers have been seen.
    pub fn has_headers(&self) -> (bool, bool) {
        (self.audio_header.is_some(), self.video_header.is_some())
    }

    /// The GOP cache.
    pub fn gop(&self) -> &GopCache<F> {
        &self.gop
    }
}

#[cfg(test)]
mod tests {
    use super::super::gop::tests::U;
    use super::*;

    #[test]
    fn startup_is_metadata_headers_then_gop() {
        let mut c = StartCache::new(100, 1 << 20);
        c.record(&U(Class::Video, 1));
        c.record(&U(Class::AudioHeader, 2));
        c.record(&U(Class::Script, 3));
        c.record(&U(Class::VideoHeader, 4));
        c.record(&U(Class::Keyframe, 5));
        c.record(&U(Class::Video, 6));
        let sizes: Vec<usize> = c.startup().iter().map(|u| u.1).collect();
        assert_eq!(sizes, [3, 4, 2, 5, 6]);
        assert_eq!(c.has_headers(), (true, true));
        c.clear_gop();
        assert_eq!(c.startup().len(), 3);
    }
}
