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

use std::alloc::{alloc, dealloc, Layout};
use std::any::Any;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::{Mutex, OnceLock};

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

struct Arena {
    class: usize,
    in_use: usize,
}

#[derive(Default)]
struct Inner {
    /// Bytes obtained from the system (arenas and large blocks) so far.
    fresh_bytes: u64,
    /// Bytes handed back to the system so far.
    released_bytes: u64,
    /// Free blocks by capacity.
    free: HashMap<usize, Vec<NonNull<u8>>>,
    /// Arenas by base address (only for capacities below ARENA).
    arenas: HashMap<usize, Arena>,
    free_bytes: usize,
    /// Buffers taken so far, and that count at the trimmer's last look.
    takes: u64,
    takes_seen: u64,
}

struct BufferPool {
    inner: Mutex<Inner>,
}

// SAFETY: the raw pointers inside are only touched under the mutex, and the
// memory they point to is not referenced by anything while it is free.
unsafe impl Send for BufferPool {}
// SAFETY: as above; all access goes through the mutex.
unsafe impl Sync for BufferPool {}

fn pool() -> &'static BufferPool {
    static POOL: OnceLock<BufferPool> = OnceLock::new();
    POOL.get_or_init(|| BufferPool {
        inner: Mutex::new(Inner::default()),
    })
}

fn arena_layout(size: usize) -> Layout {
    // ARENA is a power of two and size is a multiple of PAGE, never zero.
    Layout::from_size_align(size, ARENA).unwrap_or_else(|_| std::process::abort())
}

/// Blocks this large are one-off (a whole file for readFile), not reused.
pub(crate) const LARGE: usize = 64 << 20;

/// Allocates `size` bytes aligned to 2 MiB. Up to [`LARGE`], advised to use
/// huge pages (arenas are reused, so a huge page is faulted once). A larger,
/// one-off block gets no advice: it is written by several threads at once
/// (`read_parts`), each faulting its own part in 4 KiB pages. Huge pages
/// there made the kernel compact memory on each fault whenever free 2 MiB
/// blocks ran short (0.37-0.8 GiB/s for a 1 GiB readFile, against 9-11
/// when they did not), and populating the block up front
/// (MADV_POPULATE_WRITE) faults it on one thread only.
fn alloc_huge(size: usize) -> NonNull<u8> {
    let layout = arena_layout(size);
    // SAFETY: layout has a non-zero size.
    let ptr = unsafe { alloc(layout) };
    let Some(ptr) = NonNull::new(ptr) else {
        std::alloc::handle_alloc_error(layout)
    };
    #[cfg(target_os = "linux")]
    if size < LARGE {
        // SAFETY: madvise acts on memory we own and just allocated; the
        // advice only changes how its pages are faulted in, and a failure
        // (THP disabled) is harmless.
        unsafe { libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_HUGEPAGE) };
    }
    ptr
}

impl BufferPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave Inner half-updated in a
        // way that matters more than a leaked block, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, cap: usize) -> NonNull<u8> {
        let mut inner = self.lock();
        inner.takes += 1;
        if let Some(ptr) = inner.free.get_mut(&cap).and_then(Vec::pop) {
            inner.free_bytes -= cap;
            if cap < ARENA {
                let base = ptr.as_ptr() as usize & !(ARENA - 1);
                if let Some(a) = inner.arenas.get_mut(&base) {
                    a.in_use += 1;
                }
            }
            return ptr;
        }
        start_trimmer();
        if cap >= ARENA {
            inner.fresh_bytes += (cap.div_ceil(ARENA) * ARENA) as u64;
            drop(inner);
            return alloc_huge(cap.div_ceil(ARENA) * ARENA);
        }
        inner.fresh_bytes += ARENA as u64;
        // Carve a new arena into blocks of this class; hand out the first.
        let base = alloc_huge(ARENA);
        let count = ARENA / cap;
        let list = inner.free.entry(cap).or_default();
        for i in (1..count).rev() {
            // SAFETY: i * cap < ARENA, so the offset stays inside the arena.
            list.push(unsafe { NonNull::new_unchecked(base.as_ptr().add(i * cap)) });
        }
        inner.free_bytes += (count - 1) * cap;
        inner.arenas.insert(
            base.as_ptr() as usize,
            Arena {
                class: cap,
                in_use: 1,
            },
        );
        base
    }

    fn give(&self, ptr: NonNull<u8>, cap: usize) {
        let mut inner = self.lock();
        if cap >= ARENA {
            if inner.free_bytes + cap > RETAIN_LIMIT {
                inner.released_bytes += (cap.div_ceil(ARENA) * ARENA) as u64;
                drop(inner);
                // SAFETY: blocks of this size were allocated by alloc_huge
                // with exactly this rounded layout.
                unsafe { dealloc(ptr.as_ptr(), arena_layout(cap.div_ceil(ARENA) * ARENA)) };
                return;
            }
            inner.free.entry(cap).or_default().push(ptr);
            inner.free_bytes += cap;
            return;
        }
        let base = ptr.as_ptr() as usize & !(ARENA - 1);
        inner.free.entry(cap).or_default().push(ptr);
        inner.free_bytes += cap;
        let now_idle = match inner.arenas.get_mut(&base) {
            Some(a) => {
                a.in_use -= 1;
                a.in_use == 0
            }
            None => false,
        };
        if now_idle && inner.free_bytes > RETAIN_LIMIT {
            // Give the whole arena back: drop its blocks from the free list.
            let class = inner.arenas.remove(&base).map_or(cap, |a| a.class);
            if let Some(list) = inner.free.get_mut(&class) {
                list.retain(|p| (p.as_ptr() as usize & !(ARENA - 1)) != base);
            }
            inner.free_bytes -= (ARENA / class) * class;
            inner.released_bytes += ARENA as u64;
            drop(inner);
            // SAFETY: base is an arena allocated by alloc_huge(ARENA) and none
            // of its blocks is in use (in_use reached 0) or listed as free.
            unsafe { dealloc(base as *mut u8, arena_layout(ARENA)) };
        }
    }
}

impl BufferPool {
    /// Gives free memory back to the system down to [`IDLE_KEEP`] if no
    /// buffer was taken since the last call: wholly free arenas and free
    /// large blocks.
    fn trim_if_idle(&self) {
        let mut release: Vec<(usize, usize)> = Vec::new();
        {
            let mut inner = self.lock();
            let idle = inner.takes == inner.takes_seen;
            inner.takes_seen = inner.takes;
            if !idle || inner.free_bytes <= IDLE_KEEP {
                return;
            }
            let idle_arenas: Vec<(usize, usize)> = inner
                .arenas
                .iter()
                .filter(|(_, a)| a.in_use == 0)
                .map(|(&base, a)| (base, a.class))
                .collect();
            for (base, class) in idle_arenas {
                if inner.free_bytes <= IDLE_KEEP {
                    break;
                }
                inner.arenas.remove(&base);
                if let Some(list) = inner.free.get_mut(&class) {
                    list.retain(|p| (p.as_ptr() as usize & !(ARENA - 1)) != base);
                }
                inner.free_bytes -= (ARENA / class) * class;
                inner.released_bytes += ARENA as u64;
                release.push((base, ARENA));
            }
            let large: Vec<usize> = inner.free.keys().copied().filter(|&c| c >= ARENA).collect();
            for cap in large {
                while inner.free_bytes > IDLE_KEEP {
                    let Some(p) = inner.free.get_mut(&cap).and_then(Vec::pop) else {
                        break;
                    };
                    let size = cap.div_ceil(ARENA) * ARENA;
                    inner.free_bytes -= cap;
                    inner.released_bytes += size as u64;
                    release.push((p.as_ptr() as usize, size));
                }
            }
        }
        for (base, size) in release {
            // SAFETY: each is an arena none of whose blocks is in use or
            // listed as free any more, or a free large block no longer
            // listed, allocated by alloc_huge with this rounded size.
            unsafe { dealloc(base as *mut u8, arena_layout(size)) };
        }
    }
}

/// Starts, once, the thread that trims the pool after idle spells.
fn start_trimmer() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("uring-fs-pool".into())
            .spawn(|| loop {
                std::thread::sleep(IDLE_TICK);
                pool().trim_if_idle();
            });
        // Without the thread the pool only keeps more memory than it would.
        drop(spawned);
    });
}

/// What the pool has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes obtained from the system (each costs page faults on first use).
    pub fresh_bytes: u64,
    /// Bytes given back to the system.
    pub released_bytes: u64,
    /// Bytes kept free for reuse right now.
    pub retained_bytes: u64,
}

pub fn pool_stats() -> PoolStats {
    let inner = pool().lock();
    PoolStats {
        fresh_bytes: inner.fresh_bytes,
        released_bytes: inner.released_bytes,
        retained_bytes: inner.free_bytes as u64,
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
