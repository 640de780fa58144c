//! A viewer's bounded queue: the hub side never waits, a slow viewer skips to the next keyframe.

use serde::Serialize;
use tokio::sync::mpsc;

use super::frame::Frame;

/// How a viewer watches; counted per protocol in the stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP-FLV viewer.
    HttpFlv,
    /// RTMP play viewer.
    Rtmp,
    /// An output inside the server (HLS segmenter), not a viewer.
    Internal,
}

/// Outcome of offering a frame to one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued.
    Sent,
    /// Dropped because the viewer is behind; counted.
    Dropped,
    /// The viewer is gone.
    Closed,
}

/// The hub's handle on one viewer.
#[derive(Debug)]
pub struct ViewerTx {
    pub(crate) id: u64,
    pub(crate) protocol: Protocol,
    tx: mpsc::Sender<Frame>,
    skipping: bool,
}

impl ViewerTx {
    /// Wraps the sending side of a viewer's queue.
    pub fn new(id: u64, protocol: Protocol, tx: mpsc::Sender<Frame>) -> Self {
        Self {
            id,
            protocol,
            tx,
            skipping: false,
        }
    }

    /// Queues a frame unless the viewer is behind. Once behind, everything is dropped until
    /// a keyframe finds room for itself and the current sequence headers.
    pub fn offer(&mut self, frame: &Frame, headers: [&Option<Frame>; 2]) -> Offer {
        if self.tx.is_closed() {
            return Offer::Closed;
        }
        if self.skipping {
            let known = headers.iter().filter(|h| h.is_some()).count();
            if !frame.is_sync_point() || self.tx.capacity() < known + 1 {
                return Offer::Dropped;
            }
            for h in headers.into_iter().flatten() {
                if self.tx.try_send(h.clone()).is_err() {
                    return Offer::Dropped;
                }
            }
            self.skipping = false;
        }
        match self.tx.try_send(frame.clone()) {
            Ok(()) => Offer::Sent,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.skipping = true;
                Offer::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::FrameKind;
    use bytes::Bytes;

    fn video(keyframe: bool, dts: u64) -> Frame {
        Frame {
            kind: FrameKind::Video,
            dts,
            cts: 0,
            keyframe,
            header: false,
            epoch: 1,
            payload: Bytes::from_static(b"x"),
        }
    }

    #[tokio::test]
    async fn slow_viewer_skips_to_next_keyframe_with_headers() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut viewer = ViewerTx::new(1, Protocol::HttpFlv, tx);
        let mut header = video(true, 0);
        header.header = true;
        let header = Some(header);
        let headers = [&header, &None];
        for dts in 0..4 {
            assert_eq!(viewer.offer(&video(dts == 0, dts), headers), Offer::Sent);
        }
        assert_eq!(viewer.offer(&video(false, 4), headers), Offer::Dropped);
        for _ in 0..4 {
            rx.recv().await.expect("queued frame");
        }
        assert_eq!(viewer.offer(&video(false, 5), headers), Offer::Dropped);
        assert_eq!(viewer.offer(&video(true, 6), headers), Offer::Sent);
        let first = rx.recv().await.expect("header");
        assert!(first.header);
        let next = rx.recv().await.expect("keyframe");
        assert_eq!(next.dts, 6);
        drop(rx);
        assert_eq!(viewer.offer(&video(false, 7), headers), Offer::Closed);
    }
}
