//! The engine ring's slots: one op future per SQE (`Op`, in `op.rs`),
//! in an [`InFlight`] slab whose entries say whether the future still waits,
//! the CQE is in, or the future is gone and the slot holds its resources.
//! The rules are the module's above.

use std::any::Any;
use std::task::Waker;

use super::InFlight;

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

/// Every operation of the engine's ring between its SQE and the moment
/// its future collects the result (or, for an ignored one, its CQE).
pub(crate) struct Ops {
    slots: InFlight<Slot>,
}

impl Ops {
    pub(crate) fn new() -> Ops {
        Ops {
            slots: InFlight::with_capacity(256),
        }
    }

    /// A fresh slot for one SQE: its key and the `user_data` the SQE must
    /// carry. The SQE must be pushed (or the slot completed) next.
    pub(crate) fn insert(&mut self, slot: Slot) -> (usize, u64) {
        let key = self.slots.insert(slot);
        self.slots.submitted(key, 1);
        (key, self.slots.user_data(key, 0))
    }

    /// The slot of the op with `key`, while it exists.
    pub(crate) fn slot_mut(&mut self, key: usize) -> Option<&mut Slot> {
        self.slots.get_mut(key)
    }

    /// Frees a slot whose future has collected it (its CQE is in).
    pub(crate) fn remove(&mut self, key: usize) {
        self.slots.remove(key);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The `user_data` of every op still in the kernel (its CQE not in).
    pub(crate) fn in_kernel(&self) -> Vec<u64> {
        self.slots.in_kernel()
    }

    /// Records a result for the op `ud` names; wakes its waiter or frees an
    /// ignored slot. A `ud` whose sequence number no longer matches is stale.
    pub(crate) fn complete(&mut self, ud: u64, res: i32, wakers: &mut Vec<Waker>) {
        let Some(arrived) = self.slots.complete(ud) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(arrived.key) else {
            return;
        };
        match std::mem::replace(slot, Slot::Done(res)) {
            Slot::Waiting(w) => wakers.extend(w),
            Slot::Done(_) => {}
            Slot::Ignored { result_is_fd, .. } => {
                // The future is gone: release the resources now that the kernel
                // is done with them, and close an fd nobody will ever see.
                self.slots.remove(arrived.key);
                if result_is_fd && res >= 0 {
                    // SAFETY: res is a descriptor the kernel just opened for an
                    // abandoned openat; no one else knows its number.
                    unsafe { libc::close(res) };
                }
            }
        }
    }
}
