//! A viewer's receiving end: startup frames first, then live ones, taken in batches.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;

use media_core::fanout::Mailbox;
use media_core::rtmp::StreamMetadata;

use super::frame::Frame;
use super::stream::Stream;

/// Frames for one viewer; dropping it leaves the stream.
#[derive(Debug)]
pub struct Subscription {
    pub(crate) mailbox: Arc<Mailbox<Frame>>,
    pub(crate) stream: Arc<Stream>,
    pub(crate) id: u64,
    pending: VecDeque<Frame>,
}

impl Subscription {
    pub(crate) fn new(mailbox: Arc<Mailbox<Frame>>, stream: Arc<Stream>, id: u64) -> Self {
        Self {
            mailbox,
            stream,
            id,
            pending: VecDeque::new(),
        }
    }

    /// Waits until frames are queued and moves all of them to `out`, oldest first. Returns
    /// false once the stream is gone and nothing is left.
    pub async fn recv_batch(&mut self, out: &mut Vec<Frame>) -> bool {
        if !self.pending.is_empty() {
            out.extend(self.pending.drain(..));
            return true;
        }
        poll_fn(|cx| self.mailbox.poll_drain(cx, out)).await
    }

    /// The next frame; `None` once the stream is gone.
    pub async fn recv(&mut self) -> Option<Frame> {
        if self.pending.is_empty() {
            let (mailbox, pending) = (&self.mailbox, &mut self.pending);
            if !poll_fn(|cx| mailbox.poll_drain(cx, pending)).await {
                return None;
            }
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
        self.mailbox.leave();
        self.stream.remove_viewer(self.id);
    }
}
