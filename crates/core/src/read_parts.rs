//! One large file read as several parts at once, into one buffer.
//!
//! Reading a cached file into fresh memory is bound by page faults, not by
//! the copy: the first touch of every 4 KiB page of a new 1 GiB buffer is
//! handled on the thread that touches it. One thread reading 1 GiB gets
//! 1.6-1.8 GiB/s here; two threads, each faulting its own half, 3.2-3.7
//! (a pread probe; fs.promises.readFile gave 1.3-1.45 in the same minutes).
//! So a large readFile is split into parts read in parallel, each on a
//! blocking-pool thread: on io_uring through a lane ring of that thread's
//! own (`uring::lane_ring`; the kernel copies inside the enter, on that
//! thread), on the fallback by `pread`. Not io-wq workers (IOSQE_ASYNC on
//! the engine's ring): they reached 1.6-3.3 GiB/s where the threads got
//! 3.0-3.15, as io-wq starts its workers one by one.
//!
//! Every part writes a disjoint range of the same block. The block is
//! shared ([`SharedBlock`]) by every part still in the kernel, so it is
//! freed only after the last one came back, even if the caller gave up.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

use crate::buffer_pool::PoolBuf;
use crate::engine::{Backend, Engine};
use crate::stats::Counters;

/// Files at least this large are read in parts (smaller ones are read in
/// one operation: splitting them costs more hand-offs than it saves). The
/// same bound as the buffer pool's one-off blocks, which are left to fault
/// in 4 KiB pages on the threads that write them.
pub const PARTS_MIN: usize = crate::buffer_pool::LARGE;

/// The block the parts write into, kept alive by each part in flight.
pub(crate) struct SharedBlock {
    buf: PoolBuf,
    /// The block's address, taken while it was still uniquely owned.
    base: usize,
}

impl SharedBlock {
    pub(crate) fn new(mut buf: PoolBuf) -> Arc<SharedBlock> {
        let base = buf.as_mut_ptr() as usize;
        Arc::new(SharedBlock { buf, base })
    }

    /// Where part `range` is written. Callers only write `range` (inside the
    /// block's capacity) through it, and no part's range overlaps another's.
    pub(crate) fn dst(&self, range: (usize, usize)) -> *mut u8 {
        debug_assert!(range.0 + range.1 <= self.buf.capacity());
        (self.base + range.0) as *mut u8
    }

    /// The buffer back, once no part holds it any more.
    pub(crate) fn into_buf(block: Arc<SharedBlock>) -> PoolBuf {
        match Arc::try_unwrap(block) {
            Ok(b) => b.buf,
            // Cannot happen (every part's share was returned with its CQE
            // or its job); if it did, copying is still correct.
            Err(shared) => {
                let mut out = PoolBuf::with_capacity(shared.buf.capacity());
                // SAFETY: both blocks have `capacity` bytes; the source's are
                // written (by the parts) or, past them, never read as data.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        shared.base as *const u8,
                        out.as_mut_ptr(),
                        shared.buf.capacity(),
                    )
                };
                out
            }
        }
    }
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

/// Reads each `(offset, len)` of `fd` into the same range of `buf`, all at
/// once, each on its own blocking-pool thread; one result per range. Short
/// parts are left to the caller; `buf`'s length is not changed.
pub(crate) async fn read_parts(
    engine: &Engine,
    fd: RawFd,
    buf: PoolBuf,
    ranges: &[(usize, usize)],
) -> (PartResults, PoolBuf) {
    let invalid = |r: &(usize, usize)| {
        r.0.checked_add(r.1).is_none_or(|end| end > buf.capacity()) || r.1 > u32::MAX as usize
    };
    if ranges.iter().any(invalid) {
        let einval = || Err(io::Error::from_raw_os_error(libc::EINVAL));
        return (ranges.iter().map(|_| einval()).collect(), buf);
    }
    let ring = engine.backend() == Backend::IoUring;
    let block = SharedBlock::new(buf);
    let jobs: Vec<_> = ranges
        .iter()
        .map(|&range| {
            // The job owns a share of the block: if this future is dropped,
            // the memory stays until the job's system call has returned.
            let (share, counters) = (block.clone(), engine.counters());
            tokio::task::spawn_blocking(move || {
                read_part(fd, &share, range, range.0 as u64, ring, &counters)
            })
        })
        .collect();
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        results.push(match job.await {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("uring-fs: internal error (panic)")),
        });
    }
    (results, SharedBlock::into_buf(block))
}

/// One read on a blocking thread: `range` of the block (offset in it, length)
/// from `offset` in the file.
fn read_part(
    fd: RawFd,
    block: &Arc<SharedBlock>,
    range: (usize, usize),
    offset: u64,
    ring: bool,
    counters: &Counters,
) -> io::Result<usize> {
    let dst = block.dst(range);
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    if ring {
        let read = crate::uring::lane_ring::with_lane_ring(|r| {
            // SAFETY: `dst` is this part's range of the block, which no other
            // part writes; `block` keeps it alive until this returns, and
            // for ever (leaked below) if the ring failed mid-read.
            unsafe { r.read_at(fd, dst, range.1 as u32, offset, counters) }
        });
        match read {
            Ok(Ok(n)) => {
                counters.add_bytes(n as u64);
                return Ok(n);
            }
            Ok(Err(Some(e))) => return Err(e),
            Ok(Err(None)) => {
                std::mem::forget(block.clone());
                return Err(io::Error::other("uring-fs: lane ring failed"));
            }
            // No lane ring free: a plain pread below.
            Err(_) => {}
        }
    }
    let _ = ring;
    counters.add_op();
    let res = loop {
        // SAFETY: as above: this part's range, kept alive by `block`.
        let n = unsafe { libc::pread(fd, dst.cast(), range.1, offset as libc::off_t) };
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
