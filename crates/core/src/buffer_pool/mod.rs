//! Reusable, page-aligned I/O buffers, and buffers lent by another owner.
//!
//! On the VMs this project is measured on, the first touch of a fresh 4 KiB
//! page costs about 10 us, longer than reading 64 KiB from the page cache. A
//! stream that allocated a fresh buffer per chunk would spend most of its time
//! in page faults, so buffers come from here and go back here when dropped
//! (for buffers handed to JavaScript: when the JS `Buffer` is collected).
//!
//! Buffers smaller than 2 MiB are carved from 2 MiB arenas aligned to 2 MiB
//! and advised `MADV_HUGEPAGE`, so an arena costs one huge-page fault instead
//! of 512 small ones. Larger buffers are their own 2 MiB-aligned allocation.
//! Free buffers are kept per size class up to [`RETAIN_LIMIT`] bytes; past
//! that, a wholly free arena (or a large buffer) is given back to the system.
//! The limit is generous because buffers handed to JavaScript come back only
//! when V8 collects them: a 1 MiB-chunk stream reading into pool memory had
//! 130-230 MiB out at once, and with a 128 MiB limit a pass re-faulted
//! 32-80 MiB of released arenas (huge-page zeroing was 27% of the copy
//! threads' time). Read streams now fill Buffers JavaScript lends them (see
//! [`PoolBuf::lent`]); readFile, readFiles and a stream's first reads still
//! hand out pool memory. What a busy spell leaves free
//! is trimmed to [`IDLE_KEEP`] once no buffer was taken for [`IDLE_TICK`].
//!
//! A [`PoolBuf`] may instead be *lent*: memory that another owner keeps
//! alive (a JS Buffer the read stream allocated, held by reference), which
//! goes back to that owner, not to the pool, when the `PoolBuf` is done.

mod arenas;

use std::any::Any;
use std::ptr::NonNull;

use arenas::pool;
pub(crate) use arenas::LARGE;
pub use arenas::{pool_stats, PoolStats};

const PAGE: usize = 4096;
const ARENA: usize = 2 << 20;
/// Free memory kept for reuse, across all size classes, while in use.
pub const RETAIN_LIMIT: usize = 256 << 20;
/// Free memory kept after a spell with no buffer taken.
pub const IDLE_KEEP: usize = 32 << 20;
/// How long without a buffer taken counts as idle.
const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(2);

/// What keeps a lent buffer's memory alive.
pub type Lender = Box<dyn Any + Send + Sync>;

/// A buffer owned by the pool's client until dropped, or lent memory.
///
/// `len` is how many bytes at the start hold data; the rest of `capacity` is
/// writable space (the kernel reads into it).
pub struct PoolBuf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
    /// `Some` for lent memory: dropping it (not the pool) releases the block.
    lender: Option<Lender>,
}

// SAFETY: a PoolBuf is the unique user of its memory (the pool hands each
// block out to one PoolBuf at a time; lent memory is lent to one PoolBuf,
// and its lender is Send + Sync), so moving it to or sharing it with
// another thread is as safe as for a Vec<u8>.
unsafe impl Send for PoolBuf {}
// SAFETY: shared references only allow reads of initialised bytes.
unsafe impl Sync for PoolBuf {}

impl PoolBuf {
    /// A buffer of at least `size` bytes (rounded up to whole pages), length 0.
    pub fn with_capacity(size: usize) -> PoolBuf {
        let cap = size.max(1).div_ceil(PAGE) * PAGE;
        let ptr = pool().take(cap);
        PoolBuf {
            ptr,
            cap,
            len: 0,
            lender: None,
        }
    }

    /// `cap` bytes at `ptr`, lent by `lender` (length 0).
    ///
    /// # Safety
    /// For as long as `lender` lives, `[ptr, ptr + cap)` must stay allocated,
    /// writable and at the same address, and nothing else may read or write
    /// it until the buffer is handed back by [`PoolBuf::into_lender`] (the
    /// kernel writes into it at any time until its read completes).
    pub unsafe fn lent(lender: Lender, ptr: NonNull<u8>, cap: usize) -> PoolBuf {
        PoolBuf {
            ptr,
            cap,
            len: 0,
            lender: Some(lender),
        }
    }

    /// Whether the memory is lent rather than the pool's.
    pub fn is_lent(&self) -> bool {
        self.lender.is_some()
    }

    /// A lent buffer's owner and the length filled; a pool buffer back as
    /// it is.
    pub fn into_lender(self) -> Result<(Lender, usize), PoolBuf> {
        if !self.is_lent() {
            return Err(self);
        }
        // Not dropped: a PoolBuf without its lender would give the memory
        // to the pool.
        let mut this = std::mem::ManuallyDrop::new(self);
        match this.lender.take() {
            Some(lender) => Ok((lender, this.len)),
            None => Err(std::mem::ManuallyDrop::into_inner(this)),
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pointer to the start of the block, for the kernel to read into.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Forgets the bytes held (length 0); the memory stays.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Marks the first `len` bytes as filled.
    ///
    /// # Safety
    /// The first `len` bytes must have been written (by the kernel or by the
    /// caller), and `len <= capacity`.
    pub unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.cap);
        self.len = len;
    }

    /// The same bytes in a buffer no larger than twice their length: a
    /// small file read into a large first-read block is copied out (the
    /// block goes back to the pool), so 10,000 files of 4 KiB do not each
    /// hold a block of 68 KiB.
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn right_sized(self) -> PoolBuf {
        if self.len * 2 >= self.cap {
            return self;
        }
        let mut out = PoolBuf::with_capacity(self.len.max(1));
        // SAFETY: `out` has room for `self.len` bytes and is a different
        // block from `self`'s.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), out.as_mut_ptr(), self.len) };
        // SAFETY: those bytes were just written.
        unsafe { out.set_len(self.len) };
        out
    }

    /// Hands a pool block over as a raw pointer, for memory that another
    /// owner (a JS Buffer) releases later with [`PoolBuf::from_raw`]; a lent
    /// buffer is given back as `Err`.
    pub fn into_raw(self) -> Result<(NonNull<u8>, usize, usize), PoolBuf> {
        if self.is_lent() {
            return Err(self);
        }
        let parts = (self.ptr, self.len, self.cap);
        std::mem::forget(self);
        Ok(parts)
    }

    /// Takes back a block given out by [`PoolBuf::into_raw`].
    ///
    /// # Safety
    /// `ptr`, `len` and `cap` must come from one `into_raw` call, and the
    /// block must not be used by anyone else afterwards.
    pub unsafe fn from_raw(ptr: NonNull<u8>, len: usize, cap: usize) -> PoolBuf {
        PoolBuf {
            ptr,
            cap,
            len,
            lender: None,
        }
    }
}

impl std::ops::Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialised (set_len's contract)
        // and the block is owned by self for its whole lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::fmt::Debug for PoolBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuf")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .finish()
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        // Lent memory goes back to its lender when the field is dropped.
        if self.lender.is_none() {
            pool().give(self.ptr, self.cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_blocks_and_rounds_to_pages() {
        let mut a = PoolBuf::with_capacity(65536);
        assert_eq!(a.capacity(), 65536);
        let p = a.as_mut_ptr();
        drop(a);
        let mut b = PoolBuf::with_capacity(65536);
        assert_eq!(b.as_mut_ptr(), p, "a freed block is handed out again");
        assert_eq!(PoolBuf::with_capacity(1).capacity(), PAGE);
        assert_eq!(PoolBuf::with_capacity(4097).capacity(), 2 * PAGE);
    }

    #[test]
    fn idle_trim_gives_back_free_memory_down_to_idle_keep() {
        let bufs: Vec<PoolBuf> = (0..48).map(|_| PoolBuf::with_capacity(1 << 20)).collect();
        let bigs: Vec<PoolBuf> = (0..4).map(|_| PoolBuf::with_capacity(5 << 20)).collect();
        drop(bufs);
        drop(bigs);
        assert!(pool_stats().retained_bytes as usize >= 48 << 20);
        let released = pool_stats().released_bytes;
        // The first look only notes the takes; a later one with none between
        // trims (other tests in this binary may take buffers meanwhile).
        for _ in 0..50 {
            pool().trim_if_idle();
            if pool_stats().retained_bytes as usize <= IDLE_KEEP {
                break;
            }
        }
        assert!(pool_stats().retained_bytes as usize <= IDLE_KEEP);
        assert!(pool_stats().released_bytes >= released + (36 << 20));
        // What was kept is handed out again.
        let again = PoolBuf::with_capacity(1 << 20);
        assert_eq!(again.capacity(), 1 << 20);
    }

    #[test]
    fn large_buffers_are_aligned_and_writable() {
        let mut big = PoolBuf::with_capacity(3 << 20);
        assert_eq!(big.as_mut_ptr() as usize % ARENA, 0);
        // SAFETY: the block is 3 MiB long and owned by `big`.
        unsafe {
            std::ptr::write_bytes(big.as_mut_ptr(), 7, 3 << 20);
            big.set_len(3 << 20);
        }
        assert!(big.iter().all(|&b| b == 7));
    }
}
