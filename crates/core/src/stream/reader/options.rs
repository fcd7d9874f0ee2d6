//! What a [`Reader`](super::Reader) is given: its range and chunking, and
//! where the buffers its reads fill come from.

use crate::buffer_pool::PoolBuf;

#[derive(Debug, Clone, Copy)]
pub struct ReaderOptions {
    /// First byte to read, or [`CURRENT_POSITION`](crate::CURRENT_POSITION).
    pub start: u64,
    /// One past the last byte to read (`None`: to the end of the file).
    pub end: Option<u64>,
    /// Bytes per chunk (the stream's `highWaterMark`).
    pub chunk_size: usize,
    /// Most reads in flight at once.
    pub max_window: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            start: 0,
            end: None,
            chunk_size: 64 * 1024,
            max_window: 8,
        }
    }
}

/// Where a reader gets the buffers its reads fill, when not from the pool:
/// the read stream has JavaScript allocate them, so that V8 sees ordinary
/// Buffers that die young (an external Buffer over pool memory is held by
/// a weak handle that keeps it alive until a full GC).
pub trait BufferSupply: Send + Sync {
    /// Whether one more read may start now (the reads not yet handed to
    /// the consumer are within its read-ahead).
    fn may_start(&self) -> bool;
    /// A buffer with room for at least `want` bytes, if one is at hand (the
    /// reader takes one from the pool otherwise).
    fn take(&self, want: usize) -> Option<PoolBuf>;
    /// A buffer (from `take` or the pool) whose read gave the consumer
    /// nothing: kept for a later read if it was lent.
    fn give_back(&self, buf: PoolBuf);
    /// At most `n` more reads will start, as far as the reader knows (the
    /// file's size when opened); `None`: no bound known. Buffers beyond
    /// that are not worth lending.
    fn reads_left(&self, _n: Option<usize>) {}
}
