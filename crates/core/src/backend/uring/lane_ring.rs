//! A private ring for one blocking thread of `readFiles`' lanes
//! ([`crate::batch::read_lanes`]): small files read whole as linked chains
//! (OPENAT into a direct descriptor -> READ from 0 -> hard-linked CLOSE),
//! a window of chains in flight, submitted and reaped synchronously on that
//! thread. Each file is stat'ed first, by a plain `stat(2)` on the lane's
//! thread (see [`crate::whole_file::small_file`] for why; io_uring's STATX always goes
//! to an io-wq worker, which measured slower here: 1.88-2.16x
//! `readFileSync` against 2.24-2.30x).
//!
//! Why not the engine's ring: its driver is one task on one runtime thread,
//! and for cached files the kernel does the work of every chain (path
//! lookup, copy, close) inside the `io_uring_enter` that submits it, on the
//! submitting thread. One ring is one core, however many files are batched
//! (10,000 cached 4 KiB files take ~45 ms of kernel time on one ring here,
//! ~20-28 ms split over two). A lane has a ring to itself for its run (rings
//! are kept in a small process-wide list between runs), so lanes never
//! contend, and blocking in `submit_and_wait` is what a blocking thread is
//! for.

use std::ffi::CStr;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use io_uring::IoUring;

use super::small_file_chain::whole_file_chain;
use crate::buffer_pool::PoolBuf;
use crate::stats::Counters;
use crate::whole_file::small_file::{
    chainable, read_len, stat_path_blocking, LaneRead, FIRST_READ,
};

/// Most chains one lane keeps in flight (three SQEs each).
pub(crate) const MAX_WINDOW: usize = 64;
/// Most lane rings in the process: lanes of concurrent batches beyond this
/// use system calls.
const MAX_RINGS: usize = 8;

/// A lane's ring; its direct-descriptor slot `k` belongs to chain `k`.
pub(crate) struct LaneRing {
    ring: IoUring,
}

/// Rings not in use, kept for the next lanes (a ring costs a descriptor and
/// two syscalls to set up), and how many exist in all.
static IDLE: Mutex<Vec<LaneRing>> = Mutex::new(Vec::new());
static CREATED: AtomicUsize = AtomicUsize::new(0);

fn idle() -> MutexGuard<'static, Vec<LaneRing>> {
    // A panic while holding the lock cannot leave the Vec inconsistent.
    IDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` with a lane ring: an idle one, or a new one while there are
/// fewer than [`MAX_RINGS`]. Errs (the lane then uses system calls) when
/// all are busy or the kernel refuses a ring.
pub(crate) fn with_lane_ring<R>(f: impl FnOnce(&mut LaneRing) -> R) -> io::Result<R> {
    let reused = idle().pop();
    let ring = match reused {
        Some(ring) => ring,
        None => {
            if CREATED.fetch_add(1, Ordering::SeqCst) >= MAX_RINGS {
                CREATED.fetch_sub(1, Ordering::SeqCst);
                return Err(io::Error::other("every lane ring is in use"));
            }
            LaneRing::new().inspect_err(|_| {
                CREATED.fetch_sub(1, Ordering::SeqCst);
            })?
        }
    };
    let mut lent = Lent(Some(ring));
    let out = lent.0.as_mut().map(f);
    out.ok_or_else(|| io::Error::other("lane ring missing"))
}

/// A ring out of the idle list: back into it when done; if `f` panicked, it
/// is closed instead (its chains were waited for by their Window).
struct Lent(Option<LaneRing>);

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(ring) = self.0.take() else { return };
        if std::thread::panicking() {
            drop(ring);
            CREATED.fetch_sub(1, Ordering::SeqCst);
        } else {
            idle().push(ring);
        }
    }
}

/// One chain in flight: whose file, and the three results (open, read,
/// close) as they arrive. Its block is `Window::blocks[k]`.
struct Chain {
    index: usize,
    /// The size the stat saw.
    size: u64,
    res: [i32; 3],
    left: u8,
}

/// The chains in flight, and one block per chain slot, reused from one file
/// to the next. Dropped with chains still in the kernel (a panic in a
/// callback), it waits for their completions before the blocks are freed;
/// if even that fails, it leaks the blocks rather than free memory the
/// kernel may still write into.
struct Window<'r> {
    ring: &'r mut IoUring,
    chains: Vec<Option<Chain>>,
    blocks: Vec<PoolBuf>,
    /// SQEs whose CQE has not arrived.
    outstanding: usize,
}

impl LaneRing {
    fn new() -> io::Result<LaneRing> {
        let sq = (3 * MAX_WINDOW).next_power_of_two() as u32;
        let ring: IoUring = IoUring::builder().setup_cqsize(2 * sq).build(sq)?;
        ring.submitter().register_files_sparse(MAX_WINDOW as u32)?;
        Ok(LaneRing { ring })
    }

    /// Reads every file `next` hands out (its index in the batch and its
    /// path, opened with `flags`), at most `window` at once, and gives each
    /// outcome to `done`. Returns early only if the ring itself fails; the
    /// files it had in flight are then reported as `Ok(None)` (read again
    /// the general way) and `next` is not asked for more.
    pub(crate) fn read_small_all<'p>(
        &mut self,
        flags: i32,
        window: usize,
        counters: &Counters,
        next: &mut dyn FnMut() -> Option<(usize, &'p CStr)>,
        done: &mut dyn FnMut(usize, LaneRead<'_>),
    ) {
        let window = window.clamp(1, MAX_WINDOW);
        let mut w = Window {
            ring: &mut self.ring,
            chains: (0..window).map(|_| None).collect(),
            blocks: (0..window)
                .map(|_| PoolBuf::with_capacity(FIRST_READ))
                .collect(),
            outstanding: 0,
        };
        let mut free: Vec<usize> = (0..window).rev().collect();
        let mut exhausted = false;
        loop {
            let mut pushed = 0u64;
            while !exhausted {
                let Some(&k) = free.last() else { break };
                let Some((index, path)) = next() else {
                    exhausted = true;
                    break;
                };
                free.pop();
                let size = match stat_path_blocking(path, flags) {
                    Some((mode, size)) if chainable(mode, size) => size,
                    // Not opened here: the general path opens it (and
                    // reports the open's own error, as fs does).
                    _ => {
                        free.push(k);
                        done(index, Ok(None));
                        continue;
                    }
                };
                if !w.push_chain(k, index, path, flags, size) {
                    // Unreachable (the SQ always has room); a file never
                    // reported is read again by the general path.
                    free.push(k);
                    break;
                }
                pushed += 3;
            }
            if w.outstanding == 0 {
                return;
            }
            match w.ring.submit_and_wait(1) {
                Ok(_) => {}
                // Interrupted, or completions to reap first (the CQ holds
                // every chain's three, so this is only a precaution).
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) => {}
                Err(_) => {
                    // The ring cannot be used: hand the files back. Their
                    // blocks are leaked by the Window (the kernel may still
                    // hold them).
                    for c in w.chains.iter().flatten() {
                        done(c.index, Ok(None));
                    }
                    return;
                }
            }
            counters.add_enter();
            counters.add_ops(pushed);
            for (k, chain) in w.reap() {
                free.push(k);
                counters.add_completions(3);
                match read_len(chain.res[0], chain.res[1], chain.size) {
                    Ok(Some(n)) => {
                        let block = &mut w.blocks[k];
                        // SAFETY: the read wrote n bytes at the start of
                        // this chain's block, which stays untouched until
                        // the slot's next chain is pushed, after `done`.
                        unsafe { block.set_len(n) };
                        counters.add_bytes(n as u64);
                        done(chain.index, Ok(Some(&block[..])));
                    }
                    other => done(chain.index, other.map(|_| None)),
                }
            }
        }
    }
}

impl Window<'_> {
    /// Queues chain `k` for file `index`; false if the SQ had no room.
    fn push_chain(&mut self, k: usize, index: usize, path: &CStr, flags: i32, size: u64) -> bool {
        let slot = k as u32;
        let dst = self.blocks[k].as_mut_ptr();
        let key = (k as u64) << 2;
        let Some(chain) = whole_file_chain(path, flags, slot, dst, FIRST_READ as u32, key) else {
            return false;
        };
        // The path outlives the chain: the caller keeps every path until
        // read_small_all returns, which is only when no chain is in flight
        // (or after the Window has waited for them). Block `k` (FIRST_READ
        // bytes) and direct-descriptor slot `k` are this chain's alone,
        // neither read nor freed until its last CQE (the block is leaked if
        // that cannot be waited for).
        // SAFETY: as just said, all these SQEs point to outlives them.
        let pushed = unsafe {
            let mut sq = self.ring.submission();
            sq.push_multiple(&chain)
        };
        if pushed.is_err() {
            return false;
        }
        self.chains[k] = Some(Chain {
            index,
            size,
            res: [0; 3],
            left: 3,
        });
        self.outstanding += 3;
        true
    }

    /// Takes every CQE there is; returns the chains whose three have all
    /// arrived, with their slot numbers.
    fn reap(&mut self) -> Vec<(usize, Chain)> {
        let mut finished = Vec::new();
        for cqe in self.ring.completion() {
            let k = (cqe.user_data() >> 2) as usize;
            let step = (cqe.user_data() & 3).min(2) as usize;
            let Some(slot) = self.chains.get_mut(k) else {
                continue;
            };
            let Some(chain) = slot.as_mut() else {
                continue;
            };
            chain.res[step] = cqe.result();
            chain.left -= 1;
            self.outstanding -= 1;
            if chain.left == 0 {
                if let Some(chain) = slot.take() {
                    finished.push((k, chain));
                }
            }
        }
        finished
    }
}

impl Drop for Window<'_> {
    fn drop(&mut self) {
        while self.outstanding > 0 {
            match self.ring.submit_and_wait(self.outstanding) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(_) => {
                    for block in self.blocks.drain(..) {
                        std::mem::forget(block);
                    }
                    return;
                }
            }
            let arrived = self.ring.completion().count();
            self.outstanding = self.outstanding.saturating_sub(arrived);
        }
    }
}
