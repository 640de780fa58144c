//! Writes a queue of shared buffers with as few vectored writes as the socket allows.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Buffers handed to one `writev` (Linux allows 1024).
const MAX_IOV: usize = 1024;
/// Batches up to this many buffers are described on the stack.
const SMALL: usize = 8;

/// Writes every queued buffer, in order, and empties the queue. Each call to the socket takes
/// as many buffers as fit in one vectored write; readiness alone paces the writes.
pub async fn write_all<W: AsyncWrite + Unpin>(
    socket: &mut W,
    queue: &mut VecDeque<Bytes>,
) -> io::Result<()> {
    while !queue.is_empty() {
        // A small batch, the usual case, needs no more than a few slots on the stack.
        let mut small = [IoSlice::new(&[]); SMALL];
        let mut large = Vec::new();
        let slices: &[IoSlice<'_>] = if queue.len() <= SMALL {
            for (slot, b) in small.iter_mut().zip(queue.iter()) {
                *slot = IoSlice::new(b);
            }
            &small[..queue.len()]
        } else {
            large.extend(queue.iter().take(MAX_IOV).map(|b| IoSlice::new(b)));
            &large
        };
        let mut n = socket.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let Some(front) = queue.front_mut() else {
                break;
            };
            if front.len() <= n {
                n -= front.len();
                queue.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
        queue.retain(|b| !b.is_empty());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_everything_in_order_through_short_writes() {
        let (mut a, mut b) = tokio::io::duplex(7);
        let mut queue: VecDeque<Bytes> = (0..600u32)
            .map(|i| Bytes::from(i.to_be_bytes().to_vec()))
            .collect();
        queue.push_back(Bytes::new());
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut b, &mut all)
                .await
                .expect("reads");
            all
        });
        write_all(&mut a, &mut queue).await.expect("writes");
        drop(a);
        let all = reader.await.expect("reader");
        let want: Vec<u8> = (0..600u32).flat_map(|i| i.to_be_bytes()).collect();
        assert_eq!(all, want);
        assert!(queue.is_empty());
    }
}
