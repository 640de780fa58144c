//! A viewer's bounded queue, shared between the hub (which offers frames and never waits) and
//! the viewer's task (which takes everything queued at once when it can write).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use media_core::fanout::ViewerQueue;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;

use super::frame::Frame;

/// How a viewer watches; counted per protocol in the stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP-FLV viewer.
    HttpFlv,
    /// RTMP play viewer.
    Rtmp,
    /// An output inside the server (HLS segmenter, transcoder), not a viewer.
    Internal,
}

/// The queue and its wake-up, shared by both sides.
#[derive(Debug)]
pub(crate) struct Shared {
    pub queue: Mutex<ViewerQueue<Frame>>,
    pub ready: Notify,
    pub closed: AtomicBool,
    pub gone: AtomicBool,
}

impl Shared {
    pub fn new(queue: ViewerQueue<Frame>) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(queue),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
            gone: AtomicBool::new(false),
        })
    }
}

/// The hub's handle on one viewer; dropping it ends the viewer's stream.
#[derive(Debug)]
pub struct ViewerTx {
    pub(crate) id: u64,
    pub(crate) protocol: Protocol,
    shared: Arc<Shared>,
}

impl ViewerTx {
    pub(crate) fn new(id: u64, protocol: Protocol, shared: Arc<Shared>) -> Self {
        Self {
            id,
            protocol,
            shared,
        }
    }

    /// Offers a frame; returns the frames dropped, or `None` once the viewer is gone.
    pub(crate) fn offer(
        &self,
        now: Instant,
        frame: &Frame,
        headers: [Option<&Frame>; 2],
    ) -> Option<u64> {
        if self.shared.gone.load(Ordering::Relaxed) {
            return None;
        }
        let offer = self.shared.queue.lock().offer(now, frame, headers);
        if offer.wake {
            self.shared.ready.notify_one();
        }
        Some(offer.dropped)
    }
}

impl Drop for ViewerTx {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.ready.notify_one();
    }
}
