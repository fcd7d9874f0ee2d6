//! A ring owned by one thread that submits and reaps it itself: the batch
//! writer ([`crate::stream::batch_writer`]) and whole-file reads for a thread that
//! has an event loop of its own and can watch [`LoopRing::eventfd`] (Node's
//! JavaScript thread, through libuv).
//!
//! Why: a write stream with backpressure has one write in flight, so its
//! speed is one write's round trip. Through the engine that trip wakes four
//! sleeping threads (the runtime to submit, an io-wq worker, the runtime to
//! reap, the JavaScript thread), and on these VMs a wake of an idle vCPU
//! costs tens of microseconds: 90-128 us per 64 KiB write, against 37-66 us
//! for fs.write (libuv's pool: two wakes). Submitted and reaped by the
//! JavaScript thread itself, with the kernel's SQ-polling thread taking the
//! submission, the trip measured 21-28 us (fs+UV_USE_IO_URING=1: 20-33 us;
//! a probe of 4,096 serial 64 KiB writes into a cached file).
//!
//! Ownership is as on the engine's ring: a job owns its source and the
//! iovec arrays of the chain in flight until every CQE of that chain is in,
//! and dropping the ring waits for them.
//!
//! The two kinds of job live in their own files: [`write_job`] (a
//! `write_all` as linked WRITEV chains) and [`read_job`] (a small file read
//! whole). This file is the ring they share: set-up, submission, reaping
//! (the jobs are an [`InFlight`] slab, a CQE's `user_data` names the job
//! and the request's place in its chain: see [`super::lifecycle`]) and the
//! drop that waits for the kernel.

mod read_job;
mod write_job;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use io_uring::IoUring;

use super::lifecycle::{Arrived, InFlight};
use crate::buffer_pool::PoolBuf;
use crate::op_error::OpError;
use crate::stats::Counters;
use crate::vocabulary::WriteOutcome;
use read_job::ReadJob;
use write_job::WriteJob;

const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 4096;
/// How long the kernel's SQ thread keeps polling after the last submission
/// before it sleeps (and the next submission wakes it with a system call).
/// A backpressured stream submits every few tens of microseconds, so 1 ms
/// keeps it awake for the whole stream (1 and 10 ms measured the same),
/// while occasional writes cost at most 1 ms of polling each.
const SQ_THREAD_IDLE_MS: u32 = 1;
/// Direct-descriptor slots, so as many small reads at once.
const SLOTS: u32 = 64;

/// What a finished job did.
pub enum Done {
    Write(WriteOutcome),
    /// The file's contents; `Ok(None)`: read it the general way (not a
    /// regular file, over MAX_WHOLE_READ, or its stat failed).
    Read(Result<Option<PoolBuf>, OpError>),
}

/// A finished job: its id (as [`LoopRing::write`] or
/// [`LoopRing::read_small`] gave it; never reused) and what it did.
pub type Finished = (usize, Done);

/// A job on the ring: it owns what its requests point to until their CQEs
/// are in (the rules of [`super::lifecycle`]).
enum Job {
    Write(WriteJob),
    Read(ReadJob),
}

pub struct LoopRing {
    ring: IoUring,
    eventfd: OwnedFd,
    jobs: InFlight<Job>,
    /// Free direct-descriptor slots (none if the kernel has no table).
    slots: Vec<u32>,
    /// Jobs that finished without a CQE to report them (nothing to write):
    /// handed out by the next `reap`, which the eventfd is kicked for.
    finished: Vec<Finished>,
    /// Inside `reap`, which hands out what finishes without a kick.
    reaping: bool,
    /// The kernel polls the SQ (submissions need no system call while its
    /// thread is awake).
    sqpoll: bool,
    counters: Arc<Counters>,
    /// The next job's public id. Ids are never reused (slab keys are, as
    /// soon as a job ends, which can be before its caller has reaped it).
    next_public: usize,
}

impl LoopRing {
    /// A ring with a kernel SQ-polling thread, or without one if the kernel
    /// refuses it; its completions signal [`LoopRing::eventfd`].
    pub fn new(counters: Arc<Counters>) -> io::Result<LoopRing> {
        let (ring, sqpoll): (IoUring, bool) = match IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_sqpoll(SQ_THREAD_IDLE_MS)
            .build(SQ_ENTRIES)
        {
            Ok(ring) => (ring, true),
            Err(_) => (
                IoUring::builder()
                    .setup_cqsize(CQ_ENTRIES)
                    .build(SQ_ENTRIES)?,
                false,
            ),
        };
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: efd is a fresh descriptor that nothing else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        ring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        // Direct descriptors (5.19+): optional, only small reads use them.
        let slots = match ring.submitter().register_files_sparse(SLOTS) {
            Ok(()) => (0..SLOTS).rev().collect(),
            Err(_) => Vec::new(),
        };
        Ok(LoopRing {
            ring,
            eventfd,
            jobs: InFlight::with_capacity(64),
            slots,
            finished: Vec::new(),
            reaping: false,
            sqpoll,
            counters,
            next_public: 0,
        })
    }

    /// Readable when [`LoopRing::reap`] has something to hand out.
    pub fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// Jobs not yet handed out by `reap`.
    pub fn active(&self) -> usize {
        self.jobs.len() + self.finished.len()
    }

    /// Takes in every completion: jobs whose chain is done go on with their
    /// next chain or finish. Returns the finished ones.
    pub fn reap(&mut self) -> Vec<Finished> {
        let mut buf = [0u8; 8];
        // SAFETY: reads 8 bytes into a local buffer of 8 bytes. The count is
        // not needed: the CQ says what completed. EAGAIN (nothing) is fine.
        unsafe { libc::read(self.eventfd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        let cqes: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        self.counters.add_completions(cqes.len() as u64);
        self.reaping = true;
        for (ud, res) in cqes {
            let Some(arrived) = self.jobs.complete(ud) else {
                continue;
            };
            match self.jobs.get(arrived.key) {
                Some(Job::Write(_)) => self.write_cqe(arrived, res),
                Some(Job::Read(_)) => self.read_cqe(arrived, res),
                None => {}
            }
        }
        self.reaping = false;
        std::mem::take(&mut self.finished)
    }

    /// Hands the SQ to the kernel (with SQ polling, only if its thread went
    /// to sleep).
    fn submit(&mut self) {
        let enters = !self.sqpoll || self.ring.submission().need_wakeup();
        loop {
            match self.ring.submit() {
                Ok(_) => {
                    if enters {
                        self.counters.add_enter();
                    }
                    return;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // EBUSY/EAGAIN: the CQ is full or the kernel is short of
                // memory; the SQEs stay queued and go with the next submit
                // (after the pending completions are reaped).
                Err(_) => return,
            }
        }
    }

    /// Makes the eventfd readable, for a job that finished without a CQE.
    fn kick(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a local array of 8 bytes.
        unsafe { libc::write(self.eventfd.as_raw_fd(), one.as_ptr().cast(), 8) };
    }
}

impl Drop for LoopRing {
    /// Waits until the kernel is done with every job's memory; if it
    /// cannot, the jobs still in the kernel are leaked with the slab.
    ///
    /// The ring is dropped when its thread's environment goes away
    /// (`process.exit()` in a worker, `worker.terminate()`): what is in the
    /// kernel then is given [`DRAIN_GRACE`] to finish (a write stream's
    /// last batch lands, as fs's write in progress would), then cancelled,
    /// so that a request that may never complete (a write to a pipe nobody
    /// reads) cannot hold the thread, and its whole process, forever.
    fn drop(&mut self) {
        if self.jobs.drain_for(&mut self.ring, DRAIN_GRACE) {
            return;
        }
        self.cancel_everything();
        let _drained = self.jobs.drain(&mut self.ring);
    }
}

/// How long a dropped ring lets the kernel finish before cancelling.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The `user_data` of the cancel at drop: no job's (its key is beyond any
/// slab's), so its CQE is counted off nowhere.
const CANCEL_ALL_USER_DATA: u64 = u64::MAX;

impl LoopRing {
    /// Asks the kernel to cancel every request of the ring (Linux 5.19+;
    /// an older kernel refuses, and the requests run their course). A
    /// request in progress on a regular file is not interrupted: it
    /// completes. Memory stays owned until each request's own CQE.
    fn cancel_everything(&mut self) {
        let sqe = io_uring::opcode::AsyncCancel2::new(io_uring::types::CancelBuilder::any())
            .build()
            .user_data(CANCEL_ALL_USER_DATA);
        for _ in 0..2 {
            // SAFETY: the cancel points to no memory.
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                break;
            }
            // The SQ is full: hand it over to make room, then try again.
            let _ = self.ring.submit();
        }
        let _ = self.ring.submit();
    }
}

/// The write job `key`, if it is one.
fn write_of(jobs: &mut InFlight<Job>, key: usize) -> Option<&mut WriteJob> {
    match jobs.get_mut(key) {
        Some(Job::Write(j)) => Some(j),
        _ => None,
    }
}

/// The read job `key`, if it is one.
fn read_of(jobs: &mut InFlight<Job>, key: usize) -> Option<&mut ReadJob> {
    match jobs.get_mut(key) {
        Some(Job::Read(j)) => Some(j),
        _ => None,
    }
}
