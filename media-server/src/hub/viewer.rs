//! The hub's side of a viewer: its protocol and its mailbox (media-core's fan-out queue).

use std::sync::Arc;
use std::time::Instant;

use media_core::fanout::Mailbox;
use serde::Serialize;

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

/// The hub's handle on one viewer; dropping it ends the viewer's stream.
#[derive(Debug)]
pub struct ViewerTx {
    pub(crate) id: u64,
    pub(crate) protocol: Protocol,
    mailbox: Arc<Mailbox<Frame>>,
}

impl ViewerTx {
    pub(crate) fn new(id: u64, protocol: Protocol, mailbox: Arc<Mailbox<Frame>>) -> Self {
        Self {
            id,
            protocol,
            mailbox,
        }
    }

    /// Offers a frame; returns the frames dropped, or `None` once the viewer is gone.
    pub(crate) fn offer(
        &self,
        now: Instant,
        frame: &Frame,
        headers: [Option<&Frame>; 2],
    ) -> Option<u64> {
        self.mailbox.offer(now, frame, headers)
    }
}

impl Drop for ViewerTx {
    fn drop(&mut self) {
        self.mailbox.close();
    }
}
