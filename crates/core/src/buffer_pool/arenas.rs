//! The pool behind [`PoolBuf`](super::PoolBuf): 2 MiB arenas carved into
//! blocks per size class, large buffers on their own, free memory kept up
//! to [`RETAIN_LIMIT`] and trimmed to [`IDLE_KEEP`] once idle (see the
//! module above for why).

use std::alloc::Layout;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::{Mutex, OnceLock};

use super::{ARENA, IDLE_KEEP, IDLE_TICK, RETAIN_LIMIT};

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

pub(super) struct BufferPool {
    inner: Mutex<Inner>,
}

// SAFETY: the raw pointers inside are only touched under the mutex, and the
// memory they point to is not referenced by anything while it is free.
unsafe impl Send for BufferPool {}
// SAFETY: as above; all access goes through the mutex.
unsafe impl Sync for BufferPool {}

pub(super) fn pool() -> &'static BufferPool {
    static POOL: OnceLock<BufferPool> = OnceLock::new();
    POOL.get_or_init(|| BufferPool {
        inner: Mutex::new(Inner::default()),
    })
}

fn arena_layout(size: usize) -> Layout {
    // ARENA is a power of two and size is a multiple of PAGE, never zero.
    Layout::from_size_align(size, ARENA).unwrap_or_else(|_| std::process::abort())
}

/// Maps `size` bytes (a multiple of the page size) aligned to 2 MiB
/// straight from the kernel, so that giving them back ([`unmap`]) really
/// returns them. Through the global allocator they did not: once glibc has
/// freed one large mapped chunk it raises its mmap threshold and serves
/// later 2 MiB blocks from its heaps, where a free() keeps them resident
/// (the soak grew 322 MiB of RSS in 100,000 streams while the pool counted
/// 34 MiB; with mmap'ed arenas it does not grow).
fn map_aligned(size: usize) -> NonNull<u8> {
    // Over-map by one arena, then unmap the unaligned head and the tail.
    let len = size + ARENA;
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::alloc::handle_alloc_error(arena_layout(size))
    }
    let addr = p as usize;
    let aligned = (addr + ARENA - 1) & !(ARENA - 1);
    let head = aligned - addr;
    let tail = len - head - size;
    // SAFETY: both ranges lie inside the mapping just made and outside the
    // aligned `size` bytes kept; nothing refers to them.
    unsafe {
        if head > 0 {
            libc::munmap(p, head);
        }
        if tail > 0 {
            libc::munmap((aligned + size) as *mut libc::c_void, tail);
        }
    }
    // SAFETY: `aligned` lies inside a successful mapping, so it is not null.
    unsafe { NonNull::new_unchecked(aligned as *mut u8) }
}

/// Returns memory from [`map_aligned`] to the system.
///
/// # Safety
/// `ptr` and `size` are exactly a block `map_aligned` returned, no longer
/// referenced by anything.
unsafe fn unmap(ptr: *mut u8, size: usize) {
    // SAFETY: the caller's contract; a failure (impossible for a whole
    // mapping of ours) would only leave the memory mapped.
    unsafe { libc::munmap(ptr.cast(), size) };
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
    let ptr = map_aligned(size);
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

    pub(super) fn take(&self, cap: usize) -> NonNull<u8> {
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

    pub(super) fn give(&self, ptr: NonNull<u8>, cap: usize) {
        let mut inner = self.lock();
        if cap >= ARENA {
            if inner.free_bytes + cap > RETAIN_LIMIT {
                inner.released_bytes += (cap.div_ceil(ARENA) * ARENA) as u64;
                drop(inner);
                // SAFETY: blocks of this size were mapped by alloc_huge with
                // exactly this rounded size, and the caller gave it up.
                unsafe { unmap(ptr.as_ptr(), cap.div_ceil(ARENA) * ARENA) };
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
            // SAFETY: base is an arena mapped by alloc_huge(ARENA) and none
            // of its blocks is in use (in_use reached 0) or listed as free.
            unsafe { unmap(base as *mut u8, ARENA) };
        }
    }
}

impl BufferPool {
    /// Gives free memory back to the system down to [`IDLE_KEEP`] if no
    /// buffer was taken since the last call: wholly free arenas and free
    /// large blocks.
    pub(super) fn trim_if_idle(&self) {
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
            // listed, mapped by alloc_huge with this rounded size.
            unsafe { unmap(base as *mut u8, size) };
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
