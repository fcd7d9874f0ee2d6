//! A future for one submitted SQE.
//!
//! The future owns the operation's resources (`T`: a buffer, a path, a statx
//! block) while the kernel uses them. If it is dropped before the CQE, the
//! resources move into the slab slot, an `AsyncCancel` is queued, and the
//! slot frees them when the CQE finally arrives.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use io_uring::{opcode, squeue};

use super::driver::Shared;
use super::lifecycle::Slot;

pub(crate) struct Op<T: Send + 'static> {
    shared: Arc<Shared>,
    key: usize,
    user_data: u64,
    data: Option<T>,
    result_is_fd: bool,
    finished: bool,
}

/// The CQE result (`>= 0` on success, `-errno` on failure) and the resources.
pub(crate) struct Completion<T> {
    pub result: i32,
    pub data: T,
}

impl<T: Send + 'static> Op<T> {
    /// Queues `sqe`, which points into `data`'s heap memory only (moving
    /// `data` into the future must not move what the kernel sees).
    pub(crate) fn submit(shared: &Arc<Shared>, sqe: squeue::Entry, data: T) -> Op<T> {
        let (key, user_data) = shared.push(sqe);
        Op::of(shared, key, user_data, data)
    }

    /// The future of the op in slot `key`, owning `data`.
    fn of(shared: &Arc<Shared>, key: usize, user_data: u64, data: T) -> Op<T> {
        Op {
            shared: shared.clone(),
            key,
            user_data,
            data: Some(data),
            result_is_fd: false,
            finished: false,
        }
    }

    /// Queues several SQEs as one batch (`Shared::push_batch`: one
    /// `io_uring_enter` submits them all, a link chain among them stays
    /// whole), one future per SQE, in order. Each SQE points into its own
    /// `data`'s heap memory only, as for `submit`. At most
    /// `Shared::sq_capacity` SQEs.
    pub(crate) fn submit_batch(shared: &Arc<Shared>, ops: Vec<(squeue::Entry, T)>) -> Vec<Op<T>> {
        let (sqes, data): (Vec<_>, Vec<_>) = ops.into_iter().unzip();
        let keys = shared.push_batch(sqes);
        keys.into_iter()
            .zip(data)
            .map(|((key, user_data), data)| Op::of(shared, key, user_data, data))
            .collect()
    }

    /// For openat: if the future is dropped, a descriptor opened anyway is closed.
    pub(crate) fn closes_result_fd(mut self) -> Self {
        self.result_is_fd = true;
        self
    }
}

impl<T: Send + Unpin + 'static> Future for Op<T> {
    type Output = Completion<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completion<T>> {
        let this = &mut *self;
        let mut st = this.shared.lock();
        let Some(slot) = st.ops.slot_mut(this.key) else {
            // Unreachable: the slot lives until this future collects it.
            return Poll::Ready(Completion {
                result: -libc::EIO,
                data: this.data.take().unwrap_or_else(|| unreachable!()),
            });
        };
        match slot {
            Slot::Done(res) => {
                let result = *res;
                st.ops.remove(this.key);
                drop(st);
                this.finished = true;
                match this.data.take() {
                    Some(data) => Poll::Ready(Completion { result, data }),
                    None => Poll::Pending,
                }
            }
            Slot::Waiting(w) => {
                match w {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Slot::Ignored { .. } => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> Drop for Op<T> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut st = self.shared.lock();
        let Some(slot) = st.ops.slot_mut(self.key) else {
            return;
        };
        match slot {
            Slot::Done(res) => {
                // Completed but never collected: the kernel is done with the
                // resources, which drop with self; close an unseen fd.
                if self.result_is_fd && *res >= 0 {
                    // SAFETY: the descriptor was opened for this op and its
                    // number was never handed to anyone.
                    unsafe { libc::close(*res) };
                }
                st.ops.remove(self.key);
            }
            Slot::Waiting(_) => {
                let data = self.data.take();
                *slot = Slot::Ignored {
                    _resources: Box::new(data),
                    result_is_fd: self.result_is_fd,
                };
                drop(st);
                let cancel = opcode::AsyncCancel::new(self.user_data).build();
                self.shared.push_ignored(cancel, Box::new(()), false);
            }
            Slot::Ignored { .. } => {}
        }
    }
}
