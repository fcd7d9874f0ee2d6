//! A ring owned by one thread that submits and reaps it itself: the batch
//! writer ([`crate::batch_writer`]) for a thread that has an event loop of
//! its own and can watch [`LoopRing::eventfd`] (Node's JavaScript thread,
//! through libuv).
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

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use io_uring::{squeue, IoUring};
use slab::Slab;

use super::fsync::fsync_sqe;
use super::writev::{writev_sqe, CurPos};
use crate::batch_writer::{Plan, Sync, WriteOutcome, CURRENT_POSITION};
use crate::stats::Counters;
use crate::write_source::{IoVecs, WriteSource};

const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 4096;
/// Requests in one job's chain: enough for a batch of 16,384 chunks.
const MAX_CHAIN: usize = 16;
/// How long the kernel's SQ thread keeps polling after the last submission
/// before it sleeps (and the next submission wakes it with a system call).
/// A backpressured stream submits every few tens of microseconds, so 1 ms
/// keeps it awake for the whole stream (1 and 10 ms measured the same),
/// while occasional writes cost at most 1 ms of polling each.
const SQ_THREAD_IDLE_MS: u32 = 1;
/// Bits of `user_data` for the request's place in its chain.
const INDEX_BITS: u32 = 8;

/// One `write_all` on this ring.
struct Job {
    fd: RawFd,
    plan: Plan,
    src: WriteSource,
    cur: Option<CurPos>,
    /// The chain in flight: the iovec arrays its writes point to (kept
    /// until its last CQE), each write's length, whether a sync follows,
    /// and the results as they arrive.
    iovs: Vec<IoVecs>,
    lens: Vec<u64>,
    synced: bool,
    results: Vec<i32>,
    pending: usize,
}

/// A finished job: its id (as [`LoopRing::write`] gave it) and outcome.
pub type Finished = (usize, WriteOutcome);

pub struct LoopRing {
    ring: IoUring,
    eventfd: OwnedFd,
    jobs: Slab<Job>,
    /// Jobs that finished without a CQE to report them (nothing to write):
    /// handed out by the next `reap`, which the eventfd is kicked for.
    finished: Vec<Finished>,
    /// Inside `reap`, which hands out what finishes without a kick.
    reaping: bool,
    /// The kernel polls the SQ (submissions need no system call while its
    /// thread is awake).
    sqpoll: bool,
    counters: Arc<Counters>,
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
        Ok(LoopRing {
            ring,
            eventfd,
            jobs: Slab::new(),
            finished: Vec::new(),
            reaping: false,
            sqpoll,
            counters,
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

    /// Starts writing every byte of `src` at `offset` (as
    /// [`crate::batch_writer::write_all`]: [`CURRENT_POSITION`] for the
    /// file position), then syncing as `sync` says. Returns the job's id,
    /// or the source back when the ring has no room (then write elsewhere).
    pub fn write(
        &mut self,
        fd: RawFd,
        src: WriteSource,
        offset: u64,
        sync: Sync,
    ) -> Result<usize, WriteSource> {
        let cur = (offset == CURRENT_POSITION && !src.is_empty()).then(|| CurPos::of(fd));
        let offset = cur.as_ref().map_or(offset, CurPos::offset);
        let job = Job {
            fd,
            plan: Plan::new(offset, sync),
            src,
            cur,
            iovs: Vec::new(),
            lens: Vec::new(),
            synced: false,
            results: Vec::new(),
            pending: 0,
        };
        let id = self.jobs.insert(job);
        match self.advance(id) {
            Ok(()) => Ok(id),
            Err(()) => Err(self.jobs.remove(id).src),
        }
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
            let id = (ud >> INDEX_BITS) as usize;
            let index = (ud & ((1 << INDEX_BITS) - 1)) as usize;
            let Some(job) = self.jobs.get_mut(id) else {
                continue;
            };
            if let Some(slot) = job.results.get_mut(index) {
                *slot = res;
            }
            job.pending = job.pending.saturating_sub(1);
            if index < job.lens.len() && res > 0 {
                self.counters.add_bytes_written(res as u64);
            }
            if job.pending == 0 {
                self.chain_done(id);
            }
        }
        self.reaping = false;
        std::mem::take(&mut self.finished)
    }

    /// A job's chain is in: settle it, then issue the next or finish.
    fn chain_done(&mut self, id: usize) {
        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        job.iovs.clear();
        let settled = job
            .plan
            .settle(&job.src, &job.lens, job.synced, &job.results);
        match settled {
            Ok(()) => {
                if self.advance(id).is_err() {
                    self.finish(id, Some(io::Error::from_raw_os_error(libc::EAGAIN)));
                }
            }
            Err(e) => self.finish(id, Some(e)),
        }
    }

    /// Issues the job's next chain, or finishes it when there is none.
    /// Err when the SQ has no room for it.
    fn advance(&mut self, id: usize) -> Result<(), ()> {
        let Some(job) = self.jobs.get_mut(id) else {
            return Ok(());
        };
        let Some(chain) = job.plan.next_chain(&job.src, MAX_CHAIN) else {
            self.finish(id, None);
            return Ok(());
        };
        let (lens, synced) = chain.shape();
        let total = lens.len() + usize::from(synced);
        let mut sqes = Vec::with_capacity(total);
        for group in &chain.groups {
            sqes.push(writev_sqe(job.fd, &group.iov, group.offset));
        }
        if let Some(datasync) = chain.fsync {
            sqes.push(fsync_sqe(job.fd, datasync));
        }
        let last = sqes.len().saturating_sub(1);
        // Without the SQ thread, skip the try inside io_uring_enter: a
        // buffered write to ext4 or tmpfs almost never completes there
        // (pwritev2 RWF_NOWAIT: EOPNOTSUPP), and the way from the failed
        // try to an io-wq worker is slow: 62-78 us per serial 64 KiB write,
        // against 20-46 us with IOSQE_ASYNC (a probe of 8,192 such writes).
        let base = if self.sqpoll {
            squeue::Flags::empty()
        } else {
            squeue::Flags::ASYNC
        };
        for (i, sqe) in sqes.iter_mut().enumerate() {
            let link = if i < last {
                base | squeue::Flags::IO_LINK
            } else {
                base
            };
            *sqe = sqe
                .clone()
                .flags(link)
                .user_data(((id as u64) << INDEX_BITS) | i as u64);
        }
        // SAFETY: every SQE points into `job.src` (kept in the job until the
        // job finishes, which is after the chain's last CQE) or into an iovec
        // array moved into `job.iovs` right below (a heap block, kept until
        // this chain's last CQE).
        let pushed = unsafe {
            let mut sq = self.ring.submission();
            sq.push_multiple(&sqes)
        };
        if pushed.is_err() {
            return Err(());
        }
        job.iovs = chain.groups.into_iter().map(|g| g.iov).collect();
        job.lens = lens;
        job.synced = synced;
        job.results = vec![0; total];
        job.pending = total;
        self.counters.add_ops(total as u64);
        self.submit();
        Ok(())
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

    fn finish(&mut self, id: usize, error: Option<io::Error>) {
        if !self.jobs.contains(id) {
            return;
        }
        let job = self.jobs.remove(id);
        let mut error = error;
        if let Some(cur) = &job.cur {
            if let Err(e) = cur.finish(job.fd, job.plan.written(), job.plan.had_short_write()) {
                error.get_or_insert(e);
            }
        }
        // Called only once the job's last chain is in (or before it had
        // one), so the source is free of the kernel.
        self.finished.push((
            id,
            WriteOutcome {
                written: job.plan.written(),
                error,
                source: job.src,
            },
        ));
        if !self.reaping {
            // Finished without a CQE (nothing to write): the eventfd must
            // still fire for the owner to reap it.
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a local array of 8 bytes.
            unsafe { libc::write(self.eventfd.as_raw_fd(), one.as_ptr().cast(), 8) };
        }
    }
}

impl Drop for LoopRing {
    /// Waits until the kernel is done with every job's memory.
    fn drop(&mut self) {
        while !self.jobs.is_empty() {
            let waiting: usize = self.jobs.iter().map(|(_, j)| j.pending).sum();
            if waiting == 0 {
                break;
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(_) => {
                    // Cannot wait: leak the jobs' memory rather than free
                    // what the kernel may still read.
                    for (_, job) in std::mem::take(&mut self.jobs) {
                        std::mem::forget(job);
                    }
                    return;
                }
            }
            let cqes: Vec<u64> = self.ring.completion().map(|c| c.user_data()).collect();
            for ud in cqes {
                if let Some(job) = self.jobs.get_mut((ud >> INDEX_BITS) as usize) {
                    job.pending = job.pending.saturating_sub(1);
                }
            }
            self.jobs.retain(|_, j| j.pending > 0);
        }
    }
}
