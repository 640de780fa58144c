//! A viewer's receiving end: startup frames first, then live ones, taken in batches.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rml_rtmp::sessions::StreamMetadata;

use super::frame::Frame;
use super::stream::Stream;
use super::viewer::Shared;

/// Frames for one viewer; dropping it leaves the stream.
#[derive(Debug)]
pub struct Subscription {
    pub(crate) shared: Arc<Shared>,
    pub(crate) stream: Arc<Stream>,
    pub(crate) id: u64,
    pending: VecDeque<Frame>,
}

impl Subscription {
    pub(crate) fn new(shared: Arc<Shared>, stream: Arc<Stream>, id: u64) -> Self {
        Self {
            shared,
            stream,
            id,
            pending: VecDeque::new(),
        }
    }

    /// Waits until frames are queued; false once the stream is gone with nothing queued.
    async fn ready(&self) -> bool {
        loop {
            if !self.shared.queue.lock().is_empty() {
                return true;
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return !self.shared.queue.lock().is_empty();
            }
            self.shared.ready.notified().await;
        }
    }

    /// Waits until frames are queued and moves all of them to `out`, oldest first. Returns
    /// false once the stream is gone and nothing is left.
    pub async fn recv_batch(&mut self, out: &mut Vec<Frame>) -> bool {
        if self.pending.is_empty() && !self.ready().await {
            return false;
        }
        out.extend(self.pending.drain(..));
        self.shared.queue.lock().drain_into(out);
        true
    }

    /// The next frame; `None` once the stream is gone.
    pub async fn recv(&mut self) -> Option<Frame> {
        if self.pending.is_empty() {
            if !self.ready().await {
                return None;
            }
            self.shared.queue.lock().drain_into(&mut self.pending);
        }
        self.pending.pop_front()
    }

    /// The stream key.
    pub fn key(&self) -> &str {
        self.stream.key()
    }

    /// Whether the stream carries (audio, video), from its sequence headers; both are assumed
    /// while neither is known yet.
    pub fn tracks(&self) -> (bool, bool) {
        match self.stream.state.lock().start.has_headers() {
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
        self.shared.gone.store(true, Ordering::Relaxed);
        self.stream.remove_viewer(self.id);
    }
}
