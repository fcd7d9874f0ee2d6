//! One large file read as several parts at once, into one buffer.
//!
//! Reading a cached file into fresh memory is bound by page faults, not by
//! the copy: the first touch of every 4 KiB page of a new 1 GiB buffer is
//! handled on the thread that touches it. One thread reading 1 GiB gets
//! 1.6-1.8 GiB/s here; two threads, each faulting its own half, 3.2-3.7
//! (a pread probe; fs.promises.readFile gave 1.3-1.45 in the same minutes).
//! So a large readFile is split into parts read in parallel, each by one
//! `pread` on a blocking-pool thread, on both backends. Measured (1 GiB,
//! fresh process, one warm-up then two reads): io-wq workers (IOSQE_ASYNC
//! on the engine's ring) 1.6-3.3 GiB/s; a private ring per thread reading
//! inline 0.7-3.4; pread on the threads 2.0-3.5, the steadiest. For one
//! read of hundreds of MiB a ring saves nothing: it is one system call.
//!
//! Every part writes a disjoint range of the same memory ([`ReadTarget`]),
//! shared by every part still reading, so it is freed only after the last
//! one has returned, even if the caller gave up. The memory is a pool
//! buffer, or a JS Buffer: readFile of a large file allocates it in
//! JavaScript, as fs does, so that V8 counts it and collects the previous
//! one before the next is faulted in (a 1 GiB block allocated here, unseen
//! by V8 until wrapped, left the earlier ones alive and made every third
//! read fault in memory the host had not backed: 0.6 GiB/s instead of 3).

use std::any::Any;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

use crate::buffer_pool::PoolBuf;
use crate::engine::Engine;
use crate::stats::Counters;

/// Files at least this large are read in parts (smaller ones are read in
/// one operation: splitting them costs more hand-offs than it saves). The
/// same bound as the buffer pool's one-off blocks, which are left to fault
/// in 4 KiB pages on the threads that write them.
pub const PARTS_MIN: usize = crate::buffer_pool::LARGE;

/// Memory a whole-file read writes into, and what keeps it alive: a pool
/// buffer, or a JS Buffer held by reference (the napi layer's), so that
/// the reader never owns or copies the caller's memory.
pub struct ReadTarget {
    /// Keeps `[base, base + cap)` allocated, writable and in place.
    owner: Box<dyn Any + Send + Sync>,
    base: usize,
    cap: usize,
}

impl ReadTarget {
    /// `cap` bytes at `ptr`, kept alive by `owner`.
    ///
    /// # Safety
    /// For as long as `owner` lives, `[ptr, ptr + cap)` must stay allocated,
    /// writable and at the same address, and nothing else may read or write
    /// it while a read into it is in progress.
    pub unsafe fn from_raw(owner: Box<dyn Any + Send + Sync>, ptr: *mut u8, cap: usize) -> Self {
        ReadTarget {
            owner,
            base: ptr as usize,
            cap,
        }
    }

    /// A pool buffer's whole capacity.
    pub fn from_pool(mut buf: PoolBuf) -> Self {
        let (ptr, cap) = (buf.as_mut_ptr(), buf.capacity());
        // SAFETY: the PoolBuf owns its block, which never moves, and it is
        // reachable only through this target from here on.
        unsafe { ReadTarget::from_raw(Box::new(buf), ptr, cap) }
    }

    /// The pool buffer back (length unchanged), if this target is one.
    pub fn into_pool(self) -> Option<PoolBuf> {
        self.owner.downcast::<PoolBuf>().ok().map(|b| *b)
    }

    /// Where bytes `range.0..range.0 + range.1` go. Callers check the range
    /// against `capacity` and write only inside it.
    fn dst(&self, range: (usize, usize)) -> *mut u8 {
        (self.base + range.0) as *mut u8
    }
}

/// Advises huge pages for the 2 MiB-aligned interior of `[base, base + len)`
/// when the system has at least twice that much free memory in blocks of a
/// huge page or more (`/proc/buddyinfo`). Fresh memory faulted in 2 MiB at a
/// time reads a cached 1 GiB file at 6.2-6.9 GiB/s here, against 2.4-3.0 in
/// 4 KiB pages; but when free blocks that large run short, each fault of an
/// advised range compacts memory first (0.4-0.8 GiB/s measured), so the
/// advice is only given when they are plentiful.
#[cfg(target_os = "linux")]
fn advise_huge_pages(base: usize, len: usize) {
    let Some(huge) = huge_page_size() else { return };
    let start = base.next_multiple_of(huge);
    let end = (base + len) & !(huge - 1);
    if end <= start || free_in_huge_blocks(huge).unwrap_or(0) < 2 * (end - start) as u64 {
        return;
    }
    // SAFETY: the range lies inside memory the caller may write (the read
    // target); the advice only changes how its pages are faulted in.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: usize, _: usize) {}

/// The transparent huge page size, if THP can be used on request.
#[cfg(target_os = "linux")]
fn huge_page_size() -> Option<usize> {
    let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    if mode.contains("[never]") {
        return None;
    }
    let size =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size").ok()?;
    let size: usize = size.trim().parse().ok()?;
    size.is_power_of_two().then_some(size)
}

/// Free bytes in blocks of at least `huge` bytes, over every zone.
#[cfg(target_os = "linux")]
fn free_in_huge_blocks(huge: usize) -> Option<u64> {
    // SAFETY: sysconf takes no pointers.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page).ok().filter(|p| p.is_power_of_two())?;
    let min_order = (huge as u64 / page).trailing_zeros() as usize;
    let info = std::fs::read_to_string("/proc/buddyinfo").ok()?;
    let mut total = 0u64;
    // "Node 0, zone   Normal   15933   9419 ...": free blocks per order.
    for line in info.lines() {
        for (order, count) in line.split_whitespace().skip(4).enumerate() {
            if order >= min_order {
                total += count.parse::<u64>().ok()? * (page << order);
            }
        }
    }
    Some(total)
}

/// `size` bytes split into `parts` page-aligned ranges `(offset, len)`.
pub fn split(size: usize, parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.max(1);
    let step = size.div_ceil(parts).div_ceil(4096) * 4096;
    (0..parts)
        .map(|i| i * step)
        .filter(|&at| at < size)
        .map(|at| (at, step.min(size - at)))
        .collect()
}

/// How many parts for this machine: one per core (the faults are what is
/// parallel), at least two, at most eight.
pub fn part_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

/// What each part got: its byte count or its error, in range order.
pub type PartResults = Vec<io::Result<usize>>;

/// Reads each `(offset, len)` of `fd` into the same range of `target`, all
/// at once, each on its own blocking-pool thread; one result per range.
/// Short parts are left to the caller. The target is shared by every part
/// still reading, so it outlives them even if this future is dropped.
pub(crate) async fn read_parts(
    engine: &Engine,
    fd: RawFd,
    target: ReadTarget,
    ranges: &[(usize, usize)],
) -> (PartResults, ReadTarget) {
    let invalid = |r: &(usize, usize)| r.0.checked_add(r.1).is_none_or(|end| end > target.cap);
    if ranges.iter().any(invalid) {
        let einval = || Err(io::Error::from_raw_os_error(libc::EINVAL));
        return (ranges.iter().map(|_| einval()).collect(), target);
    }
    let target = Arc::new(target);
    let jobs: Vec<_> = ranges
        .iter()
        .map(|&range| {
            let (share, counters) = (target.clone(), engine.counters());
            tokio::task::spawn_blocking(move || read_part(fd, &share, range, &counters))
        })
        .collect();
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        results.push(match job.await {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("uring-fs: internal error (panic)")),
        });
    }
    // Every job has returned, so its share is dropped; should one still be
    // on its way out, wait for it rather than fail.
    let mut target = target;
    let target = loop {
        match Arc::try_unwrap(target) {
            Ok(t) => break t,
            Err(shared) => {
                target = shared;
                tokio::task::yield_now().await;
            }
        }
    };
    (results, target)
}

/// Reads `size` bytes of `fd` from offset 0 into `target` (at least `size`
/// bytes): parts in parallel, then whatever a short part left, from where
/// it stopped. Returns how many bytes are there (fewer at end of file).
pub async fn read_whole(
    engine: &Engine,
    fd: RawFd,
    target: ReadTarget,
    size: usize,
) -> (io::Result<usize>, ReadTarget) {
    let size = size.min(target.cap);
    advise_huge_pages(target.base, size);
    let ranges = split(size, part_count());
    let (results, mut target) = read_parts(engine, fd, target, &ranges).await;
    // The prefix the parts filled: up to the first short part.
    let mut filled = 0;
    for (range, res) in ranges.iter().zip(results) {
        match res {
            Ok(n) => {
                filled = range.0 + n;
                if n < range.1 {
                    break;
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => break,
            Err(e) => return (Err(e), target),
        }
    }
    while filled < size {
        let rest = [(filled, size - filled)];
        let (mut res, t) = read_parts(engine, fd, target, &rest).await;
        target = t;
        match res.pop() {
            Some(Ok(0)) => break,
            Some(Ok(n)) => filled += n,
            Some(Err(e)) if e.raw_os_error() == Some(libc::EINTR) => {}
            Some(Err(e)) => return (Err(e), target),
            None => break,
        }
    }
    (Ok(filled), target)
}

/// One part, on a blocking thread: `range` (offset, length) of the file
/// into the same range of the block.
fn read_part(
    fd: RawFd,
    target: &ReadTarget,
    range: (usize, usize),
    counters: &Counters,
) -> io::Result<usize> {
    let dst = target.dst(range);
    counters.add_op();
    let res = loop {
        // SAFETY: `dst` is this part's range of the target (checked against
        // its capacity by read_parts; no other part writes it), kept alive
        // by the caller's share until pread has returned.
        let n = unsafe { libc::pread(fd, dst.cast(), range.1, range.0 as libc::off_t) };
        if n >= 0 {
            counters.add_bytes(n as u64);
            break Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            break Err(e);
        }
    };
    counters.add_completions(1);
    res
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn split_covers_the_size_with_page_aligned_parts() {
        for (size, parts) in [
            (1, 2),
            (4096, 2),
            (4097, 2),
            (100 << 20, 3),
            ((1 << 30) + 5, 8),
        ] {
            let r = split(size, parts);
            assert!(r.len() <= parts);
            assert_eq!(r[0].0, 0);
            for w in r.windows(2) {
                assert_eq!(w[0].0 + w[0].1, w[1].0);
                assert_eq!(w[1].0 % 4096, 0);
            }
            let last = r[r.len() - 1];
            assert_eq!(last.0 + last.1, size);
        }
    }
}
