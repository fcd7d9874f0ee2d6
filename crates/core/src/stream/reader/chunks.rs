//! The reader for callers that let it decide a suspected end of file by
//! reading at once: chunks ([`Reader::next_chunk`]) or bytes
//! ([`tokio::io::AsyncRead`]).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::{Reader, Step};
use crate::buffer_pool::PoolBuf;

impl Reader {
    /// [`Reader::poll_step`] for a caller that lets the reader decide a
    /// suspected end by reading at once: a chunk, or `None` at the end.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<PoolBuf>>> {
        match self.poll_step(cx) {
            Poll::Ready(Ok(Step::Chunk(buf))) => Poll::Ready(Ok(Some(buf))),
            Poll::Ready(Ok(Step::End)) => Poll::Ready(Ok(None)),
            Poll::Ready(Ok(Step::Suspect(_))) => {
                // Only with defer_decisions, whose caller uses poll_step.
                self.resume();
                self.poll_chunk(cx)
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The next chunk in file order; `None` at the end of the range or file.
    pub async fn next_chunk(&mut self) -> io::Result<Option<PoolBuf>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if let Some((buf, pos)) = this.current.as_mut() {
                let n = (buf.len() - *pos).min(out.remaining());
                out.put_slice(&buf[*pos..*pos + n]);
                *pos += n;
                if *pos == buf.len() {
                    this.current = None;
                }
                return Poll::Ready(Ok(()));
            }
            match this.poll_chunk(cx) {
                Poll::Ready(Ok(Some(buf))) => this.current = Some((buf, 0)),
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(())),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
