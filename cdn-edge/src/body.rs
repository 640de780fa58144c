//! A body shared by every waiter of one fetch while it is still arriving from the origin.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::sync::watch;

#[derive(Default)]
struct Progress {
    chunks: Vec<Bytes>,
    done: bool,
    failed: bool,
}

/// Chunks received so far, and whether the body is complete.
pub struct Growing {
    tx: watch::Sender<Progress>,
}

impl Growing {
    /// An empty body still arriving.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            tx: watch::channel(Progress::default()).0,
        })
    }

    /// Appends a received chunk and wakes the readers.
    pub fn push(&self, chunk: Bytes) {
        self.tx.send_modify(|p| p.chunks.push(chunk));
    }

    /// Marks the body complete (`ok`) or broken; later calls change nothing.
    pub fn finish(&self, ok: bool) {
        self.tx.send_if_modified(|p| {
            let first = !p.done;
            if first {
                p.done = true;
                p.failed = !ok;
            }
            first
        });
    }

    /// Every chunk from the start, as they arrive; ends with an error if the body broke.
    pub fn stream(&self) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures::stream::unfold(Some((self.tx.subscribe(), 0)), |state| async move {
            let (mut rx, i) = state?;
            loop {
                {
                    let p = rx.borrow_and_update();
                    if let Some(c) = p.chunks.get(i) {
                        let c = c.clone();
                        drop(p);
                        return Some((Ok(c), Some((rx, i + 1))));
                    }
                    if p.done {
                        return p
                            .failed
                            .then(|| (Err(std::io::Error::other("origin body broke")), None));
                    }
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
    }

    /// The whole body once complete; `None` if it broke.
    pub async fn complete(&self) -> Option<Bytes> {
        let mut rx = self.tx.subscribe();
        let p = rx.wait_for(|p| p.done).await.ok()?;
        if p.failed {
            return None;
        }
        let mut all = BytesMut::with_capacity(p.chunks.iter().map(Bytes::len).sum());
        for c in &p.chunks {
            all.extend_from_slice(c);
        }
        Some(all.freeze())
    }
}

/// Marks a body broken if the task filling it ends without finishing it.
pub struct FinishOnDrop(pub Arc<Growing>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn readers_get_every_chunk_from_the_start() {
        let g = Growing::new();
        g.push(Bytes::from_static(b"ab"));
        let late = g.stream();
        let early = g.stream();
        g.push(Bytes::from_static(b"cd"));
        g.finish(true);
        let a: Vec<_> = early.map(|c| c.expect("chunk")).collect().await;
        let b: Vec<_> = late.map(|c| c.expect("chunk")).collect().await;
        assert_eq!(a, b);
        assert_eq!(a.concat(), b"abcd");
        assert_eq!(g.complete().await.as_deref(), Some(&b"abcd"[..]));
    }

    #[tokio::test]
    async fn a_broken_body_ends_readers_with_an_error() {
        let g = Growing::new();
        g.push(Bytes::from_static(b"ab"));
        drop(FinishOnDrop(g.clone()));
        let items: Vec<_> = g.stream().collect().await;
        assert_eq!(items.len(), 2);
        assert!(items[1].is_err());
        assert!(g.complete().await.is_none());
    }
}
