//! A private ring for one blocking thread of `readFiles`' lanes
//! ([`crate::batch::read_lanes`]): small files read whole as linked chains
//! (OPENAT into a direct descriptor -> READ from 0 -> hard-linked CLOSE),
//! a window of chains in flight, submitted and reaped synchronously on that
//! thread. Each file is stat'ed first, by a plain `stat(2)` on the lane's
//! thread (see [`crate::vocabulary::small_file`] for why; io_uring's STATX always goes
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

use super::lifecycle::InFlight;
use super::small_file_chain::whole_file_chain;
use crate::backend::fallback::small_file::stat_path_blocking;
use crate::buffer_pool::PoolBuf;
use crate::stats::Counters;
use crate::vocabulary::small_file::{chainable, read_len, LaneRead, FIRST_READ};

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

/// One chain in flight: whose file, the three results (open, read, close)
/// as they arrive, and what the kernel uses until the last of them: the
/// block the READ fills and the direct-descriptor slot.
struct Chain {
    index: usize,
    /// The size the stat saw.
    size: u64,
    res: [i32; 3],
    block: PoolBuf,
    slot: u32,
}

/// The chains in flight (an [`InFlight`] slab: see [`super::lifecycle`]),
/// and the blocks and slots free for the next ones, reused from one file to
/// the next. Dropped with chains still in the kernel (a panic in a
/// callback), it waits for their completions; if even that fails, the slab
/// leaks their blocks rather than free memory the kernel may still write
/// into.
struct Window<'r> {
    ring: &'r mut IoUring,
    chains: InFlight<Chain>,
    blocks: Vec<PoolBuf>,
    slots: Vec<u32>,
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
    /// outcome to `done`. Returns early if the ring itself fails (the
    /// files it had in flight are then reported as `Ok(None)`: read again
    /// the general way) or it has no slot left (a close failed in each);
    /// `next` is then not asked for more, and the caller reads the rest.
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
            chains: InFlight::with_capacity(window),
            blocks: (0..window)
                .map(|_| PoolBuf::with_capacity(FIRST_READ))
                .collect(),
            slots: (0..window as u32).rev().collect(),
        };
        let mut exhausted = false;
        loop {
            let mut pushed = 0u64;
            while !exhausted && !w.blocks.is_empty() && !w.slots.is_empty() {
                let Some((index, path)) = next() else {
                    exhausted = true;
                    break;
                };
                let size = match stat_path_blocking(path, flags) {
                    Some((mode, size)) if chainable(mode, size) => size,
                    // Not opened here: the general path opens it (and
                    // reports the open's own error, as fs does).
                    _ => {
                        done(index, Ok(None));
                        continue;
                    }
                };
                if !w.push_chain(index, path, flags, size) {
                    // Unreachable (the SQ always has room): the general
                    // path reads it.
                    done(index, Ok(None));
                    break;
                }
                pushed += 3;
            }
            if w.chains.pending() == 0 {
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
                    for (_, c) in w.chains.iter() {
                        done(c.index, Ok(None));
                    }
                    return;
                }
            }
            counters.add_enter();
            counters.add_ops(pushed);
            for mut chain in w.reap() {
                counters.add_completions(3);
                match read_len(chain.res[0], chain.res[1], chain.size) {
                    Ok(Some(n)) => {
                        // SAFETY: the read wrote n bytes at the start of
                        // this chain's block, which the kernel is done with
                        // (the chain left the slab with its last CQE).
                        unsafe { chain.block.set_len(n) };
                        counters.add_bytes(n as u64);
                        done(chain.index, Ok(Some(&chain.block[..])));
                    }
                    other => done(chain.index, other.map(|_| None)),
                }
                // The slot is empty again unless a file opened into it and
                // its close failed; such a slot is not reused.
                if chain.res[0] < 0 || chain.res[2] >= 0 {
                    w.slots.push(chain.slot);
                }
                w.blocks.push(chain.block);
            }
        }
    }
}

impl Window<'_> {
    /// Queues a chain for file `index` with a free block and slot; false if
    /// there is none or the SQ had no room.
    fn push_chain(&mut self, index: usize, path: &CStr, flags: i32, size: u64) -> bool {
        let (Some(mut block), Some(slot)) = (self.blocks.pop(), self.slots.pop()) else {
            return false;
        };
        let dst = block.as_mut_ptr();
        let key = self.chains.insert(Chain {
            index,
            size,
            res: [0; 3],
            block,
            slot,
        });
        let ud = self.chains.user_data(key, 0);
        let Some(sqes) = whole_file_chain(path, flags, slot, dst, FIRST_READ as u32, ud) else {
            self.give_back(key);
            return false;
        };
        // The path outlives the chain: the caller keeps every path until
        // read_small_all returns, which is only when no chain is in flight
        // (or after the Window has waited for them). The block (FIRST_READ
        // bytes, a heap block that does not move with the Chain) is the
        // entry's, freed or reused only once it leaves the slab after its
        // last CQE (leaked with the slab if that cannot be waited for), and
        // direct-descriptor `slot` is this chain's alone until then.
        // SAFETY: as just said, all these SQEs point to outlives them.
        let pushed = unsafe {
            let mut sq = self.ring.submission();
            sq.push_multiple(&sqes)
        };
        if pushed.is_err() {
            self.give_back(key);
            return false;
        }
        self.chains.submitted(key, 3);
        true
    }

    /// Returns the block and slot of chain `key`, which never reached the
    /// kernel.
    fn give_back(&mut self, key: usize) {
        if let Some(chain) = self.chains.remove(key) {
            self.blocks.push(chain.block);
            self.slots.push(chain.slot);
        }
    }

    /// Takes every CQE there is; returns the chains whose three have all
    /// arrived (out of the slab: the kernel is done with them).
    fn reap(&mut self) -> Vec<Chain> {
        let mut finished = Vec::new();
        let cqes: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (ud, res) in cqes {
            let Some(arrived) = self.chains.complete(ud) else {
                continue;
            };
            let Some(chain) = self.chains.get_mut(arrived.key) else {
                continue;
            };
            if let Some(r) = chain.res.get_mut(usize::from(arrived.step)) {
                *r = res;
            }
            if arrived.left == 0 {
                finished.extend(self.chains.remove(arrived.key));
            }
        }
        finished
    }
}

impl Drop for Window<'_> {
    /// Waits for the chains still in the kernel; if it cannot, the slab
    /// leaks them with their blocks.
    fn drop(&mut self) {
        let _drained = self.chains.drain(self.ring);
    }
}
