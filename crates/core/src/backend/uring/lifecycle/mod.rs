//! The life of an operation on every io_uring ring of this crate, from
//! its SQE to its CQE, and who owns what the kernel uses meanwhile. This
//! is the memory-safety argument of the package: read it with the op files
//! it names.
//!
//! # The rings
//!
//! - The engine's ring ([`super::driver`]): one tokio task submits and
//!   reaps; each SQE is an [`Op`](super::op::Op) future, one op per file
//!   beside this one (`read.rs`, `writev.rs`, `openat.rs`, ...). Its slots
//!   are [`engine_ops::Ops`].
//! - The JavaScript thread's ring ([`super::loop_ring`]): jobs (a
//!   `write_all` as linked WRITEV chains, a small file read whole) that the
//!   thread submits and reaps itself.
//! - The rings of readFiles' lanes ([`super::lane_ring`]): a window of
//!   OPENAT -> READ -> CLOSE chains a blocking thread submits and waits for.
//!
//! All three keep what is in the kernel in an [`InFlight`] slab and tag
//! each SQE with its [`user_data`]; nothing else decides when memory an
//! SQE names may go.
//!
//! # The rules
//!
//! - **Submission.** An entry is inserted first, and owns (or, for the
//!   engine's ring, its op future owns) everything its SQEs point to: a
//!   buffer, an iovec array, a path, a statx block, an `open_how`. Only
//!   heap blocks, which do not move when their owner does. Only then are
//!   the SQEs pushed, and [`InFlight::submitted`] counts them.
//! - **Completion.** Each CQE is matched by [`InFlight::complete`], which
//!   checks the sequence number in its `user_data` (a late CQE never hits a
//!   reused key) and counts it off. An entry leaves the slab
//!   ([`InFlight::remove`]) only when none of its SQEs is left in the
//!   kernel; only then may its memory be freed or reused.
//! - **Drop before the CQE** (engine ring: an op future dropped). The
//!   future moves its resources into its slot (`Slot::Ignored`) and queues
//!   an `AsyncCancel`; the slot frees them at the CQE, whatever it says. An
//!   `openat` that succeeds anyway has its descriptor closed then. A future
//!   dropped after its CQE but before collecting it frees its resources
//!   itself (and closes such a descriptor).
//! - **Cancel.** `AsyncCancel` only asks: memory stays owned until the CQE
//!   of the op itself, never until the cancel's.
//! - **Shutdown.** The engine's `Driver::shutdown` cancels every op still
//!   in the kernel and waits until each CQE is in. A lane window's `Drop`
//!   waits for every CQE ([`InFlight::drain`]); the loop ring's lets the
//!   kernel finish for a moment ([`InFlight::drain_for`]), then cancels
//!   what is left (a write to a pipe nobody reads) and waits for every CQE.
//!   Its thread's JavaScript environment is being torn down then, and the
//!   JavaScript memory the jobs write from is freed once the wait is over.
//! - **When waiting is impossible** (a runtime torn down abruptly, an
//!   `io_uring_enter` that fails while draining): the [`InFlight`] slab is
//!   dropped with entries still in the kernel, and their memory is leaked,
//!   never freed: the kernel may still write into it.
//! - **Direct descriptors** (the small-file chains): a slot of the ring's
//!   file table belongs to one chain from its OPENAT to its CLOSE's CQE; a
//!   slot whose CLOSE failed after a successful open is never reused.
//!
//! # What the SQEs point to, and who keeps it
//!
//! - Pool memory ([`crate::buffer_pool::PoolBuf`]): moved into the op or
//!   job, so freed (back to the pool) only when the entry leaves the slab.
//! - JavaScript memory: a read stream's chunks, readFile's Buffer and the
//!   Buffers a write is made of are held by napi reference inside a
//!   `PoolBuf` that is *lent* ([`crate::buffer_pool`]) or a
//!   [`crate::write_source::WriteSource`]'s owner, and counted by the
//!   binding's `LentGuard` (`crates/node/src/lent.rs`), whose environment
//!   clean-up waits for every guard before the isolate frees its memory (a
//!   terminated worker). The read-ahead ([`crate::stream::read_ahead`])
//!   holds at most its window of lent Buffers; each is in a read's op until
//!   that op's CQE, as above.
//! - Paths, statx and `open_how` blocks, iovec arrays: boxed in the op or
//!   job, as above. A lane's paths are borrowed from its caller, which
//!   keeps them until `read_small_all` returns, after its window is empty.

pub(crate) mod engine_ops;
pub(crate) use engine_ops::{Ops, Slot};

use std::time::{Duration, Instant};

use slab::Slab;

/// Bits of `user_data` for an SQE's place in its entry's chain.
const STEP_BITS: u32 = 8;
/// Bits of `user_data` for the slab key (above the step).
const KEY_BITS: u32 = 32;

/// The `user_data` of step `step` (an SQE's place in its chain, below 256)
/// of the entry with `key` and sequence number `seq`: `seq` in the top 24
/// bits, `key` in the next 32, `step` in the low 8.
pub(crate) fn user_data(key: usize, seq: u32, step: u8) -> u64 {
    (u64::from(seq) << (KEY_BITS + STEP_BITS))
        | ((key as u64 & 0xffff_ffff) << STEP_BITS)
        | u64::from(step)
}

fn decode(ud: u64) -> (usize, u32, u8) {
    (
        ((ud >> STEP_BITS) & 0xffff_ffff) as usize,
        (ud >> (KEY_BITS + STEP_BITS)) as u32,
        (ud & 0xff) as u8,
    )
}

/// The sequence numbers fit in the bits `user_data` has for them.
const SEQ_MASK: u32 = (1 << (64 - KEY_BITS - STEP_BITS)) - 1;

struct Entry<T> {
    seq: u32,
    /// SQEs of this entry whose CQE has not arrived.
    pending: u32,
    value: T,
}

/// What one ring has in the kernel: each entry owns what its SQEs point to
/// and counts those whose CQE is still to come. See the module doc.
pub(crate) struct InFlight<T> {
    slab: Slab<Entry<T>>,
    next_seq: u32,
    pending: usize,
}

/// A CQE matched to its entry.
pub(crate) struct Arrived {
    pub key: usize,
    /// The SQE's place in its chain.
    pub step: u8,
    /// SQEs of the entry still in the kernel after this one.
    pub left: u32,
}

impl<T> InFlight<T> {
    pub(crate) fn with_capacity(capacity: usize) -> InFlight<T> {
        InFlight {
            slab: Slab::with_capacity(capacity),
            next_seq: 0,
            pending: 0,
        }
    }

    /// A new entry, nothing of it in the kernel yet. Returns its key.
    pub(crate) fn insert(&mut self, value: T) -> usize {
        let seq = self.next_seq;
        self.next_seq = (self.next_seq + 1) & SEQ_MASK;
        self.slab.insert(Entry {
            seq,
            pending: 0,
            value,
        })
    }

    /// The `user_data` for step `step` of entry `key` (0 if there is none).
    pub(crate) fn user_data(&self, key: usize, step: u8) -> u64 {
        self.slab
            .get(key)
            .map_or(0, |e| user_data(key, e.seq, step))
    }

    /// `n` SQEs of entry `key` were pushed: it keeps its memory until their
    /// CQEs are in.
    pub(crate) fn submitted(&mut self, key: usize, n: u32) {
        if let Some(e) = self.slab.get_mut(key) {
            e.pending += n;
            self.pending += n as usize;
        }
    }

    /// Counts off the CQE with `ud`; `None` for a `user_data` no entry has
    /// (a stale one, whose sequence number no longer matches).
    pub(crate) fn complete(&mut self, ud: u64) -> Option<Arrived> {
        let (key, seq, step) = decode(ud);
        let e = self.slab.get_mut(key)?;
        if e.seq != seq || e.pending == 0 {
            return None;
        }
        e.pending -= 1;
        self.pending -= 1;
        Some(Arrived {
            key,
            step,
            left: e.pending,
        })
    }

    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        self.slab.get(key).map(|e| &e.value)
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.slab.get_mut(key).map(|e| &mut e.value)
    }

    pub(crate) fn contains(&self, key: usize) -> bool {
        self.slab.contains(key)
    }

    /// Takes entry `key` out, when none of its SQEs is in the kernel; `None`
    /// (and it stays) otherwise.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        match self.slab.get(key) {
            Some(e) if e.pending == 0 => Some(self.slab.remove(key).value),
            _ => None,
        }
    }

    /// SQEs in the kernel, over all entries.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The step-0 `user_data` of every entry with an SQE in the kernel.
    pub(crate) fn in_kernel(&self) -> Vec<u64> {
        self.slab
            .iter()
            .filter(|(_, e)| e.pending > 0)
            .map(|(k, e)| user_data(k, e.seq, 0))
            .collect()
    }

    /// Every entry, with its key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slab.iter().map(|(k, e)| (k, &e.value))
    }

    /// [`InFlight::drain`] for at most `grace`: true once the kernel is
    /// done with every entry; false when some are still in at the end (or
    /// the ring cannot be waited on), for the caller to cancel them.
    pub(crate) fn drain_for(&mut self, ring: &mut io_uring::IoUring, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        while self.pending > 0 {
            // Hands over what is queued and runs the ring's pending task
            // work; waits for nothing.
            match ring.submit() {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) => {}
                Err(_) => return false,
            }
            let cqes: Vec<u64> = ring.completion().map(|c| c.user_data()).collect();
            if cqes.is_empty() {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            for ud in cqes {
                self.complete(ud);
            }
        }
        true
    }

    /// Waits on `ring` (where this slab's SQEs went) until the kernel is
    /// done with every entry, counting their CQEs off: what a ring that
    /// its own thread submits and reaps does before its memory may go.
    /// False when the ring cannot be waited on; dropping the slab then
    /// leaks what is still in the kernel.
    pub(crate) fn drain(&mut self, ring: &mut io_uring::IoUring) -> bool {
        while self.pending > 0 {
            match ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(_) => return false,
            }
            let cqes: Vec<u64> = ring.completion().map(|c| c.user_data()).collect();
            for ud in cqes {
                self.complete(ud);
            }
        }
        true
    }
}

impl<T> Drop for InFlight<T> {
    /// Entries still in the kernel are leaked, never freed: it may still
    /// write into their memory. Their rings drain first, so this happens
    /// only when draining failed.
    fn drop(&mut self) {
        for entry in self.slab.drain() {
            if entry.pending > 0 {
                std::mem::forget(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips() {
        let ud = user_data(0xdead_beef, 0x12_3456, 2);
        assert_eq!(decode(ud), (0xdead_beef, 0x12_3456, 2));
    }

    #[test]
    fn an_entry_leaves_only_when_its_cqes_are_in() {
        let mut f = InFlight::with_capacity(4);
        let k = f.insert(String::from("path"));
        f.submitted(k, 2);
        assert!(f.remove(k).is_none());
        let ud = f.user_data(k, 1);
        let a = f.complete(ud).map(|a| (a.key, a.step, a.left));
        assert_eq!(a, Some((k, 1, 1)));
        assert!(f.remove(k).is_none());
        assert!(f.complete(f.user_data(k, 0)).is_some());
        assert_eq!(f.pending(), 0);
        assert_eq!(f.remove(k).as_deref(), Some("path"));
    }

    #[test]
    fn a_stale_cqe_hits_nothing() {
        let mut f = InFlight::with_capacity(4);
        let k = f.insert(1u8);
        f.submitted(k, 1);
        let old = f.user_data(k, 0);
        assert!(f.complete(old).is_some());
        assert_eq!(f.remove(k), Some(1));
        let k2 = f.insert(2u8);
        assert_eq!(k, k2);
        f.submitted(k2, 1);
        assert!(f.complete(old).is_none());
        assert_eq!(f.pending(), 1);
    }

    #[test]
    fn dropped_with_entries_in_the_kernel_it_leaks_them() {
        use std::sync::Arc;
        let held = Arc::new(());
        let mut f = InFlight::with_capacity(4);
        let k = f.insert(held.clone());
        f.submitted(k, 1);
        let free = f.insert(held.clone());
        let _ = free;
        drop(f);
        // The one in the kernel was leaked, the other freed.
        assert_eq!(Arc::strong_count(&held), 2);
    }
}
