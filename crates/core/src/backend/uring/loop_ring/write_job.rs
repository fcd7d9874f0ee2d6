//! A `write_all` on the loop ring: the write plan ([`crate::vocabulary`])
//! run as linked WRITEV chains, each chain's iovec arrays kept by the job
//! until its last CQE, the source until the job finishes.

use std::io;
use std::os::fd::RawFd;

use io_uring::squeue;

use super::{write_of, Arrived, Done, Job, LoopRing};
use crate::backend::uring::fsync::fsync_sqe;
use crate::backend::uring::writev::{writev_sqe, CurPos};
use crate::vocabulary::{Plan, SyncMode, WriteOutcome, CURRENT_POSITION};
use crate::write_source::{IoVecs, WriteSource};

/// Requests in one job's chain: enough for a batch of 16,384 chunks.
const MAX_CHAIN: usize = 16;

/// One `write_all` on this ring.
pub(super) struct WriteJob {
    /// The id the caller knows it by.
    public: usize,
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
}

impl LoopRing {
    /// Starts writing every byte of `src` at `offset` (as
    /// [`crate::stream::batch_writer::write_all`]: [`CURRENT_POSITION`] for the
    /// file position), then syncing as `sync` says. Returns the job's id,
    /// or the source back when the ring has no room (then write elsewhere).
    pub fn write(
        &mut self,
        fd: RawFd,
        src: WriteSource,
        offset: u64,
        sync: SyncMode,
    ) -> Result<usize, WriteSource> {
        let cur = (offset == CURRENT_POSITION && !src.is_empty()).then(|| CurPos::of(fd));
        let offset = cur.as_ref().map_or(offset, CurPos::offset);
        let public = self.next_public;
        self.next_public += 1;
        let job = WriteJob {
            public,
            fd,
            plan: Plan::new(offset, sync),
            src,
            cur,
            iovs: Vec::new(),
            lens: Vec::new(),
            synced: false,
            results: Vec::new(),
        };
        let id = self.jobs.insert(Job::Write(job));
        match self.advance(id) {
            Ok(()) => Ok(public),
            Err(()) => match self.jobs.remove(id) {
                Some(Job::Write(job)) => Err(job.src),
                // Unreachable: the job is a write with nothing in flight.
                _ => Ok(public),
            },
        }
    }

    /// A CQE of a write job: the request at `arrived.step` of its chain.
    pub(super) fn write_cqe(&mut self, arrived: Arrived, res: i32) {
        let id = arrived.key;
        let index = usize::from(arrived.step);
        let Some(job) = write_of(&mut self.jobs, id) else {
            return;
        };
        if let Some(slot) = job.results.get_mut(index) {
            *slot = res;
        }
        if index < job.lens.len() && res > 0 {
            self.counters.add_bytes_written(res as u64);
        }
        if arrived.left == 0 {
            self.chain_done(id);
        }
    }

    /// A job's chain is in: settle it, then issue the next or finish.
    fn chain_done(&mut self, id: usize) {
        let Some(job) = write_of(&mut self.jobs, id) else {
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
        let key = self.jobs.user_data(id, 0);
        let Some(job) = write_of(&mut self.jobs, id) else {
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
            *sqe = sqe.clone().flags(link).user_data(key | i as u64);
        }
        // Every SQE points into `job.src` (kept in the job until the job
        // finishes, which is after the chain's last CQE) or into an iovec
        // array moved into `job.iovs` right below (a heap block that does
        // not move with it, kept until this chain's last CQE).
        // SAFETY: as just said, what these SQEs point to outlives them.
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
        self.jobs.submitted(id, total as u32);
        self.counters.add_ops(total as u64);
        self.submit();
        Ok(())
    }

    fn finish(&mut self, id: usize, error: Option<io::Error>) {
        if write_of(&mut self.jobs, id).is_none() {
            return;
        }
        // Called only once the job's last chain is in (or before it had
        // one): remove gives it back only then.
        let Some(Job::Write(job)) = self.jobs.remove(id) else {
            return;
        };
        let mut error = error;
        if let Some(cur) = &job.cur {
            if let Err(e) = cur.finish(job.fd, job.plan.written(), job.plan.had_short_write()) {
                error.get_or_insert(e);
            }
        }
        // Called only once the job's last chain is in (or before it had
        // one), so the source is free of the kernel.
        self.finished.push((
            job.public,
            Done::Write(WriteOutcome {
                written: job.plan.written(),
                error,
                source: job.src,
            }),
        ));
        if !self.reaping {
            // Finished without a CQE (nothing to write): the eventfd must
            // still fire for the owner to reap it.
            self.kick();
        }
    }
}
