//! The life of one operation on the engine's ring, from its SQE to its
//! CQE, and who owns what the kernel uses meanwhile. Every op of the
//! engine's ring (the files beside this one, through [`super::op::Op`])
//! lives by these rules.
//!
//! - **Submission.** An op gets a slot here and a `user_data` made of the
//!   slot's key and a sequence number (so a late CQE or cancel never hits a
//!   reused key), and only then is its SQE pushed. Everything the SQE
//!   points to (a buffer, an iovec array, a path, a statx block, a
//!   JavaScript Buffer held by reference) is owned by the op's future, in
//!   heap memory that does not move when the future does.
//! - **Completion.** The CQE's result goes into the slot (`Done`) and the
//!   future's waker is woken; the future takes the result and its
//!   resources back and frees the slot. Only then may the resources go.
//! - **Drop before the CQE.** The future moves its resources into the slot
//!   (`Ignored`) and queues an `AsyncCancel`; the slot frees them when the
//!   CQE arrives, whatever it says. An `openat` that succeeds anyway has its
//!   descriptor closed then, since nobody will ever see its number. A
//!   future dropped after its CQE (`Done`, not collected) frees its
//!   resources itself and closes such a descriptor.
//! - **Cancel.** `AsyncCancel` only asks: memory stays owned until the CQE
//!   of the op itself, never until the cancel's.
//! - **Shutdown.** `Driver::shutdown` cancels every op still in the kernel
//!   and waits until each CQE is in; the driver task ends only with no slot
//!   left.
//! - **A ring dropped with ops in flight** (a runtime torn down abruptly,
//!   a worker thread terminated): their resources are leaked, never freed,
//!   since the kernel may still write into them ([`Ops`]'s drop).
//!
//! The JavaScript thread's ring (`loop_ring`) and the rings of readFiles'
//! lanes (`lane_ring`) follow the same rules with slabs of their own: each
//! job owns its memory until the last CQE of its chain, and dropping the
//! ring waits for them.

use std::any::Any;
use std::task::Waker;

use slab::Slab;

/// What the slab knows of one operation, keyed by its `user_data`.
pub(crate) enum Slot {
    /// In the kernel; the future (if it has been polled) waits on this waker.
    Waiting(Option<Waker>),
    /// The CQE arrived; the future has not collected it yet.
    Done(i32),
    /// The future was dropped before the CQE: the slot now owns whatever the
    /// kernel may still touch, and frees it when the CQE arrives.
    Ignored {
        _resources: Box<dyn Any + Send>,
        result_is_fd: bool,
    },
}

/// A slab entry: the slot and the sequence number that makes its
/// `user_data` unique, so a late cancel or CQE never hits a reused key.
struct Entry {
    seq: u32,
    slot: Slot,
}

/// Every operation of one ring between its SQE and the moment its future
/// collects the result (or, for an ignored one, its CQE).
pub(crate) struct Ops {
    slab: Slab<Entry>,
    next_seq: u32,
}

impl Ops {
    pub(crate) fn new() -> Ops {
        Ops {
            slab: Slab::with_capacity(256),
            next_seq: 0,
        }
    }

    /// A fresh slot: its key and the `user_data` its SQE must carry.
    pub(crate) fn insert(&mut self, slot: Slot) -> (usize, u64) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let key = self.slab.insert(Entry { seq, slot });
        (key, user_data(key, seq))
    }

    /// The slot of the op with `key`, while it exists.
    pub(crate) fn slot_mut(&mut self, key: usize) -> Option<&mut Slot> {
        self.slab.get_mut(key).map(|e| &mut e.slot)
    }

    /// Frees a slot whose future has collected it.
    pub(crate) fn remove(&mut self, key: usize) {
        self.slab.try_remove(key);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The `user_data` of every op still in the kernel (its CQE not in).
    pub(crate) fn in_kernel(&self) -> Vec<u64> {
        self.slab
            .iter()
            .filter(|(_, e)| !matches!(e.slot, Slot::Done(_)))
            .map(|(k, e)| user_data(k, e.seq))
            .collect()
    }

    /// Records a result for the op `ud` names; wakes its waiter or frees an
    /// ignored slot. A `ud` whose sequence number no longer matches is stale.
    pub(crate) fn complete(&mut self, ud: u64, res: i32, wakers: &mut Vec<Waker>) {
        let key = (ud & 0xffff_ffff) as usize;
        let Some(entry) = self.slab.get_mut(key) else {
            return;
        };
        if entry.seq != (ud >> 32) as u32 {
            return;
        }
        match std::mem::replace(&mut entry.slot, Slot::Done(res)) {
            Slot::Waiting(w) => wakers.extend(w),
            Slot::Done(_) => {}
            Slot::Ignored { result_is_fd, .. } => {
                // The future is gone: release the resources now that the kernel
                // is done with them, and close an fd nobody will ever see.
                self.slab.remove(key);
                if result_is_fd && res >= 0 {
                    // SAFETY: res is a descriptor the kernel just opened for an
                    // abandoned openat; no one else knows its number.
                    unsafe { libc::close(res) };
                }
            }
        }
    }
}

fn user_data(key: usize, seq: u32) -> u64 {
    (key as u64 & 0xffff_ffff) | ((seq as u64) << 32)
}

impl Drop for Ops {
    fn drop(&mut self) {
        // Dropping the ring while ops are in flight would let the kernel write
        // into freed memory: leak their resources instead. Shutdown drains
        // first, so this only happens if a runtime is torn down abruptly.
        for entry in self.slab.drain() {
            std::mem::forget(entry);
        }
    }
}
