//! A viewer's receiving end: startup frames first, then live ones.

use std::sync::Arc;

use rml_rtmp::sessions::StreamMetadata;
use tokio::sync::mpsc;

use super::frame::Frame;
use super::stream::Stream;

/// Frames for one viewer; dropping it leaves the stream.
#[derive(Debug)]
pub struct Subscription {
    pub(crate) rx: mpsc::Receiver<Frame>,
    pub(crate) stream: Arc<Stream>,
    pub(crate) id: u64,
}

impl Subscription {
    /// The next frame; `None` once the stream is gone.
    pub async fn recv(&mut self) -> Option<Frame> {
        self.rx.recv().await
    }

    /// The next frame if one is already queued.
    pub fn try_recv(&mut self) -> Option<Frame> {
        self.rx.try_recv().ok()
    }

    /// The stream key.
    pub fn key(&self) -> &str {
        self.stream.key()
    }

    /// Whether the stream carries (audio, video), from its sequence headers; both are assumed
    /// while neither is known yet.
    pub fn tracks(&self) -> (bool, bool) {
        let state = self.stream.state.lock();
        match (state.audio_header.is_some(), state.video_header.is_some()) {
            (false, false) => (true, true),
            known => known,
        }
    }

    /// The stream's current metadata.
    pub fn metadata(&self) -> Option<Arc<StreamMetadata>> {
        self.stream.metadata()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stream.remove_viewer(self.id);
    }
}
