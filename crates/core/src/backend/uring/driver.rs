//! The ring and the tokio task that submits and reaps; each operation's
//! life from SQE to CQE is `lifecycle`'s.
//!
//! Any thread may queue an SQE (under the state mutex). Queuing never enters
//! the kernel by itself: it schedules the driver task, which submits every
//! SQE queued since the last submission with one `io_uring_enter`, then reaps
//! the CQ. Completions that the kernel posts later (a read that had to go to
//! disk) signal an eventfd registered with the ring; the driver task waits on
//! it through `AsyncFd`, so no runtime thread ever blocks inside the kernel
//! waiting for a completion.

use std::any::Any;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use super::lifecycle::{Ops, Slot};
use super::ring_setup::{cap_iowq_workers, OptionalOps, NEEDED};
use crate::stats::Counters;

const SQ_ENTRIES: u32 = 512;
/// Registered file table size: direct descriptors for that many small-file
/// reads at once (more wait for the general path).
const FIXED_SLOTS: u32 = 1024;
const CQ_ENTRIES: u32 = 8192;

pub(crate) struct State {
    ring: IoUring,
    /// Every operation from its SQE to its CQE: see `lifecycle`.
    pub(crate) ops: Ops,
    /// SQEs pushed to the SQ but not yet passed to `io_uring_enter`.
    unsubmitted: usize,
    /// The driver task has been told to submit and has not done it yet.
    submit_scheduled: bool,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    kick: Notify,
    eventfd: AsyncFd<OwnedFd>,
    shutting_down: AtomicBool,
    /// How many SQEs the SQ holds: the longest batch `push_batch` takes.
    pub(crate) sq_capacity: usize,
    /// Opcodes used when present, with a system-call path when not.
    pub(crate) optional: OptionalOps,
    /// Free slots of the registered (sparse) file table, for direct
    /// descriptors; empty when the kernel could not register one.
    slots: Mutex<Vec<u32>>,
    pub(crate) counters: Arc<Counters>,
}

/// Handle to a running ring. Cloning shares it.
#[derive(Clone)]
pub struct Driver {
    pub(crate) shared: Arc<Shared>,
}

impl Driver {
    /// Sets up a ring and spawns its driver task on the current tokio runtime.
    ///
    /// Fails with the kernel's error when io_uring is unavailable (EPERM under
    /// a seccomp filter or `kernel.io_uring_disabled`, ENOSYS on old kernels)
    /// and with `Unsupported` when an opcode the engine needs is missing.
    pub fn start(counters: Arc<Counters>) -> io::Result<Driver> {
        let ring: IoUring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_clamp()
            .build(SQ_ENTRIES)?;
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for (code, name) in NEEDED {
            if !probe.is_supported(*code) {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("io_uring lacks IORING_OP_{}", name.to_uppercase()),
                ));
            }
        }
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: efd is a fresh descriptor that nothing else owns.
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        ring.submitter().register_eventfd(efd.as_raw_fd())?;
        // SAFETY: the OwnedFd is moved into the AsyncFd and stays open,
        // referring to the same eventfd, until the AsyncFd drops it.
        let eventfd = unsafe { AsyncFd::register(efd) }.map_err(io::Error::from)?;
        let sq_capacity = ring.params().sq_entries() as usize;
        cap_iowq_workers(&ring);
        // Direct descriptors (5.19+): optional, the small-file chain uses them.
        let slots = match ring.submitter().register_files_sparse(FIXED_SLOTS) {
            Ok(()) => (0..FIXED_SLOTS).rev().collect(),
            Err(_) => Vec::new(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ring,
                ops: Ops::new(),
                unsubmitted: 0,
                submit_scheduled: false,
            }),
            kick: Notify::new(),
            eventfd,
            shutting_down: AtomicBool::new(false),
            sq_capacity,
            optional: OptionalOps::of(&probe),
            slots: Mutex::new(slots),
            counters,
        });
        tokio::spawn(drive(shared.clone()));
        Ok(Driver { shared })
    }

    /// Cancels every operation in flight and waits until the kernel has
    /// returned all of them, so no memory it could write into is freed early.
    ///
    /// Only operations still in the kernel (`Waiting`, `Ignored`) are waited
    /// for. A `Done` slot is one whose CQE has arrived but whose future has
    /// not been polled since: the kernel is finished with its memory, and its
    /// future may belong to a task that is parked (a paused pump) or to the
    /// very task awaiting this, so waiting for it to be collected could hang
    /// forever.
    pub async fn shutdown(&self) {
        let pending: Vec<u64> = {
            let st = self.shared.lock();
            st.ops.in_kernel()
        };
        for key in pending {
            self.shared
                .push_ignored(opcode::AsyncCancel::new(key).build(), Box::new(()), false);
        }
        // Only now may the driver task stop (it does once the slab is empty).
        // Set before the cancels were queued, the flag let the driver see an
        // empty slab in between, exit, and leave the cancels unsubmitted
        // while this loop waited for them forever.
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        loop {
            let in_kernel = {
                let st = self.shared.lock();
                !st.ops.in_kernel().is_empty()
            };
            if !in_kernel {
                break;
            }
            // Submit and reap from here too: the driver task exits once the
            // slab is empty, and an op that another task queued after that
            // would otherwise never reach the kernel.
            self.shared.submit_and_reap();
            self.shared.kick.notify_one();
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}

impl Shared {
    /// A free direct-descriptor slot, if any.
    pub(crate) fn take_slot(&self) -> Option<u32> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Returns an empty slot.
    pub(crate) fn give_slot(&self, slot: u32) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a waker (wakers are
        // called after the lock is released), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `sqe` under a fresh slab key and returns `(key, user_data)`.
    ///
    /// The caller keeps everything the SQE points to alive until the slot is
    /// completed or turned into `Slot::Ignored` holding those resources.
    pub(crate) fn push(&self, sqe: squeue::Entry) -> (usize, u64) {
        let mut st = self.lock();
        let (key, ud) = st.ops.insert(Slot::Waiting(None));
        let wakers = self.push_locked(&mut st, &[sqe.user_data(ud)]);
        drop(st);
        wakers.into_iter().for_each(Waker::wake);
        (key, ud)
    }

    /// Queues an SQE whose completion nobody waits for (a cancel, or an op
    /// whose future is gone): the slot owns `resources` until the CQE.
    pub(crate) fn push_ignored(
        &self,
        sqe: squeue::Entry,
        resources: Box<dyn Any + Send>,
        result_is_fd: bool,
    ) {
        let mut st = self.lock();
        let (_, ud) = st.ops.insert(Slot::Ignored {
            _resources: resources,
            result_is_fd,
        });
        let wakers = self.push_locked(&mut st, &[sqe.user_data(ud)]);
        drop(st);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Queues `sqes` as one unit: each under a fresh slab key, all pushed
    /// to the SQ together and back to back, so that one `io_uring_enter`
    /// submits the whole batch and an `IOSQE_IO_LINK` chain inside it
    /// reaches the kernel in one piece. Returns `(key, user_data)` per SQE,
    /// in order. The contract is `push`'s, for every SQE.
    ///
    /// A batch longer than the SQ (`sq_capacity`) can never be queued whole:
    /// its slots complete at once with EINVAL and nothing is submitted, so
    /// callers split longer work into batches that fit.
    pub(crate) fn push_batch(&self, sqes: Vec<squeue::Entry>) -> Vec<(usize, u64)> {
        let mut st = self.lock();
        let keys: Vec<(usize, u64)> = sqes
            .iter()
            .map(|_| st.ops.insert(Slot::Waiting(None)))
            .collect();
        let sqes: Vec<squeue::Entry> = sqes
            .into_iter()
            .zip(&keys)
            .map(|(sqe, &(_, ud))| sqe.user_data(ud))
            .collect();
        let wakers = self.push_locked(&mut st, &sqes);
        drop(st);
        wakers.into_iter().for_each(Waker::wake);
        keys
    }

    /// Pushes `sqes` (whose slots exist) to the SQ, all or none.
    fn push_locked(&self, st: &mut State, sqes: &[squeue::Entry]) -> Vec<Waker> {
        let mut wakers = Vec::new();
        let fail = |st: &mut State, errno: i32, wakers: &mut Vec<Waker>| {
            for sqe in sqes {
                st.ops.complete(sqe.get_user_data(), -errno, wakers);
            }
        };
        if sqes.len() > self.sq_capacity {
            fail(st, libc::EINVAL, &mut wakers);
            return wakers;
        }
        loop {
            // SAFETY: the entries' pointers refer to memory owned by the op
            // futures or by their slots until the CQEs arrive (push's
            // contract). push_multiple copies all of them or none.
            let pushed = unsafe { st.ring.submission().push_multiple(sqes) };
            if pushed.is_ok() {
                break;
            }
            // Not enough room for the whole batch: submit what is queued
            // now (which empties the SQ), then push the batch in one piece.
            // Pushing part of it now and the rest after a submission would
            // cut a link chain in two, and the kernel runs the two halves
            // independently.
            if let Err(e) = self.submit_locked(st, &mut wakers) {
                // Nothing can be queued; fail these ops (and keep the others).
                fail(st, e.raw_os_error().unwrap_or(libc::EIO), &mut wakers);
                return wakers;
            }
        }
        st.unsubmitted += sqes.len();
        self.counters.add_ops(sqes.len() as u64);
        if !st.submit_scheduled {
            st.submit_scheduled = true;
            self.kick.notify_one();
        }
        wakers
    }

    /// One `io_uring_enter` for everything queued, then a reap.
    fn submit_locked(&self, st: &mut State, wakers: &mut Vec<Waker>) -> io::Result<()> {
        while st.unsubmitted > 0 {
            self.counters.add_enter();
            match st.ring.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                // The CQ overflowed (EBUSY) or the kernel is short of memory
                // for the request (EAGAIN): reap, then retry.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EAGAIN)) => {
                    if self.reap(st, wakers) == 0 {
                        std::thread::yield_now();
                    }
                }
                Err(e) => return Err(e),
            }
            // What the kernel has not consumed from the SQ is still queued.
            st.unsubmitted = st.ring.submission().len();
        }
        self.reap(st, wakers);
        Ok(())
    }

    fn submit_and_reap(self: &Arc<Self>) {
        let mut wakers = Vec::new();
        let mut st = self.lock();
        st.submit_scheduled = false;
        if self.submit_locked(&mut st, &mut wakers).is_err() {
            // The SQEs stay queued (their slots must not be completed while
            // the kernel may still consume them): try again shortly.
            st.submit_scheduled = true;
            let shared = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                shared.kick.notify_one();
            });
        }
        drop(st);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Drains the CQ; returns how many CQEs were seen.
    fn reap(&self, st: &mut State, wakers: &mut Vec<Waker>) -> usize {
        let entries: Vec<cqueue::Entry> = st.ring.completion().collect();
        for cqe in &entries {
            st.ops.complete(cqe.user_data(), cqe.result(), wakers);
        }
        self.counters.add_completions(entries.len() as u64);
        entries.len()
    }

    fn drain_eventfd(&self) {
        let mut val = 0u64;
        loop {
            // SAFETY: reads 8 bytes into a local u64 from our own eventfd.
            let n = unsafe {
                libc::read(
                    self.eventfd.as_raw_fd(),
                    (&mut val as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n != 8 {
                break;
            }
        }
    }
}

async fn drive(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            biased;
            _ = shared.kick.notified() => {}
            ready = shared.eventfd.readable() => match ready {
                Ok(mut guard) => {
                    shared.drain_eventfd();
                    guard.clear_ready();
                }
                Err(_) => {
                    // The eventfd cannot fail while we own it; if it ever
                    // does, fall back to polling so completions still arrive.
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        }
        shared.counters.add_wakeup();
        // Let every task that is ready run first, so that the SQEs they
        // queue go to the kernel in this same io_uring_enter. Woken by a
        // task that just queued an op, this task would otherwise run right
        // after it (tokio's LIFO slot) and submit one SQE per enter.
        tokio::task::yield_now().await;
        shared.submit_and_reap();
        if shared.shutting_down.load(Ordering::SeqCst) && shared.lock().ops.is_empty() {
            break;
        }
    }
}

pub(crate) fn fd(fd: RawFd) -> types::Fd {
    types::Fd(fd)
}
