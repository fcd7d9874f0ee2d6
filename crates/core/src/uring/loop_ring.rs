//! A ring owned by one thread that submits and reaps it itself: the batch
//! writer ([`crate::batch_writer`]) and whole-file reads for a thread that
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

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use std::ffi::{CStr, CString};

use io_uring::{opcode, squeue, types, IoUring};
use slab::Slab;

use super::fsync::fsync_sqe;
use super::small_file_chain::whole_file_chain;
use super::writev::{writev_sqe, CurPos};
use crate::buffer_pool::PoolBuf;
use crate::op_error::OpError;
use crate::small_file::{read_len, stat_flags, FIRST_READ};
use crate::stats::Counters;
use crate::vocabulary::{Plan, SyncMode, WriteOutcome, CURRENT_POSITION};
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
/// Ids (and `user_data` job numbers) of small reads start here, after
/// every possible write job's.
const READ_IDS: usize = 1 << 40;
/// The largest file a read job reads (in one READ of its size, into a
/// buffer the kernel faults in as it copies, on its own thread). Larger
/// ones go to the engine, whose buffers that size are faulted in up front.
const MAX_WHOLE_READ: u64 = 8 << 20;
/// Direct-descriptor slots, so as many small reads at once.
const SLOTS: u32 = 64;

/// One `write_all` on this ring.
struct Job {
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
    pending: usize,
}

/// One file read whole (as `readFiles`' chains): a stat of its path, then,
/// for a regular file up to MAX_WHOLE_READ bytes, OPENAT into a direct
/// descriptor -> READ from 0 -> CLOSE (see `crate::small_file`).
struct ReadJob {
    /// The id the caller knows it by.
    public: usize,
    /// Held for the kernel until the last CQE.
    path: CString,
    flags: i32,
    statx: Box<libc::statx>,
    /// The stat is in flight (else the chain is, or nothing yet).
    stat: bool,
    size: u64,
    /// Bytes the READ asks for.
    asked: usize,
    buf: Option<PoolBuf>,
    slot: u32,
    results: [i32; 3],
    pending: usize,
}

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

pub struct LoopRing {
    ring: IoUring,
    eventfd: OwnedFd,
    jobs: Slab<Job>,
    reads: Slab<ReadJob>,
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
            jobs: Slab::new(),
            reads: Slab::new(),
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
        self.jobs.len() + self.reads.len() + self.finished.len()
    }

    /// Starts reading the small file at `path` (opened with `flags`)
    /// whole. Returns the job's id, or the path back when the ring has no
    /// room (then read it elsewhere).
    pub fn read_small(&mut self, path: CString, flags: i32) -> Result<usize, CString> {
        if self.slots.is_empty() {
            return Err(path);
        }
        // A stat from the kernel's caches, on this thread, when it can be
        // had without waiting; else a STATX on the ring (an io-wq worker:
        // one more round trip).
        let cached = cached_stat(&path, flags);
        let entry = self.reads.vacant_entry();
        let id = entry.key();
        let public = self.next_public;
        self.next_public += 1;
        let job = entry.insert(ReadJob {
            public,
            path,
            flags,
            // SAFETY: statx is plain old data; all-zero is a valid value.
            statx: Box::new(unsafe { std::mem::zeroed::<libc::statx>() }),
            stat: true,
            size: 0,
            asked: 0,
            buf: None,
            slot: 0,
            results: [0; 3],
            pending: 1,
        });
        if let Some((mode, size)) = cached {
            job.stat = false;
            job.pending = 0;
            job.size = size;
            self.start_chain(id, whole_readable(mode, size));
            if !self.reads.contains(id) {
                // Finished already (for the general path): say so.
                self.kick();
            }
            return Ok(public);
        }
        let stat = opcode::Statx::new(
            types::Fd(libc::AT_FDCWD),
            job.path.as_ptr(),
            (&mut *job.statx as *mut libc::statx).cast::<types::statx>(),
        )
        .flags(stat_flags(flags))
        .mask(libc::STATX_TYPE | libc::STATX_SIZE)
        .build()
        .user_data(Self::read_key(id));
        // The path and the statx block are the job's (heap blocks that do
        // not move with it), kept until its last CQE (and by Drop, which
        // waits for them).
        // SAFETY: as just said, what this SQE points to outlives it.
        if unsafe { self.ring.submission().push(&stat) }.is_err() {
            return Err(self.reads.remove(id).path);
        }
        self.counters.add_ops(1);
        self.submit();
        Ok(public)
    }

    fn read_key(id: usize) -> u64 {
        ((READ_IDS + id) as u64) << INDEX_BITS
    }

    /// The stat of read job `id` is in: queue its chain, or finish it.
    fn read_stat_done(&mut self, id: usize, res: i32) {
        let Some(job) = self.reads.get_mut(id) else {
            return;
        };
        job.stat = false;
        job.size = job.statx.stx_size;
        let readable = res >= 0 && whole_readable(u32::from(job.statx.stx_mode), job.size);
        self.start_chain(id, readable);
    }

    /// Queues read job `id`'s chain if its file is `readable` that way;
    /// else (or with no room) finishes it for the general path.
    fn start_chain(&mut self, id: usize, readable: bool) {
        let Some(job) = self.reads.get_mut(id) else {
            return;
        };
        // Not opened here: the general path opens it (and reports the
        // open's own error, as fs does).
        let slot = match readable {
            true => self.slots.pop(),
            false => None,
        };
        let Some(slot) = slot else {
            self.finish_read(id, Ok(None));
            return;
        };
        // A small file is read into a block of FIRST_READ bytes (read_len
        // then tells a pseudo file, whose size says 0, from an empty one);
        // a larger one in one READ of its size.
        let asked = (job.size as usize).max(FIRST_READ);
        job.asked = asked;
        let mut buf = PoolBuf::with_capacity(asked);
        let key = Self::read_key(id);
        let Some(chain) = whole_file_chain(
            &job.path,
            job.flags,
            slot,
            buf.as_mut_ptr(),
            asked as u32,
            key,
        ) else {
            self.slots.push(slot);
            self.finish_read(id, Ok(None));
            return;
        };
        // The path is the job's and the block is moved into it just below,
        // both kept until its last CQE (and by Drop, which waits for them);
        // the slot is this job's alone until then.
        // SAFETY: as just said, what these SQEs point to outlives them.
        let pushed = unsafe {
            let mut sq = self.ring.submission();
            sq.push_multiple(&chain)
        };
        if pushed.is_err() {
            self.slots.push(slot);
            self.finish_read(id, Ok(None));
            return;
        }
        job.buf = Some(buf);
        job.slot = slot;
        job.pending = 3;
        self.counters.add_ops(3);
        self.submit();
    }

    fn finish_read(&mut self, id: usize, done: Result<Option<PoolBuf>, OpError>) {
        if self.reads.contains(id) {
            let job = self.reads.remove(id);
            self.finished.push((job.public, Done::Read(done)));
        }
    }

    /// A read job's CQE.
    fn read_cqe(&mut self, id: usize, index: usize, res: i32) {
        let Some(job) = self.reads.get_mut(id) else {
            return;
        };
        if job.stat {
            self.read_stat_done(id, res);
            return;
        }
        if let Some(r) = job.results.get_mut(index) {
            *r = res;
        }
        job.pending = job.pending.saturating_sub(1);
        if job.pending > 0 {
            return;
        }
        let [opened, read, closed] = job.results;
        // The slot is empty again unless a file opened into it and its close
        // failed; such a slot is not reused.
        if opened < 0 || closed >= 0 {
            self.slots.push(job.slot);
        }
        let done = match whole_len(opened, read, job.size, job.asked) {
            Ok(Some(n)) => match job.buf.take() {
                Some(mut buf) => {
                    // SAFETY: the read wrote n bytes at the start of the block.
                    unsafe { buf.set_len(n) };
                    self.counters.add_bytes(n as u64);
                    Ok(Some(buf))
                }
                None => Ok(None),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.finish_read(id, done);
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
        sync: SyncMode,
    ) -> Result<usize, WriteSource> {
        let cur = (offset == CURRENT_POSITION && !src.is_empty()).then(|| CurPos::of(fd));
        let offset = cur.as_ref().map_or(offset, CurPos::offset);
        let public = self.next_public;
        self.next_public += 1;
        let job = Job {
            public,
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
            Ok(()) => Ok(public),
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
            if id >= READ_IDS {
                self.read_cqe(id - READ_IDS, index, res);
                continue;
            }
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

/// Whether a read job reads a file whose stat says `mode` and `size`.
fn whole_readable(mode: u32, size: u64) -> bool {
    mode & libc::S_IFMT == libc::S_IFREG && size <= MAX_WHOLE_READ
}

/// [`read_len`] for a READ that asked for `asked` bytes of a file whose stat
/// said `size`. A file of FIRST_READ bytes or more was asked for exactly its
/// size: what came is the file (fewer bytes if it shrank; if it grew, its
/// first `size` bytes, as fs.readFile reads them).
fn whole_len(opened: i32, read: i32, size: u64, asked: usize) -> Result<Option<usize>, OpError> {
    let exact = asked > FIRST_READ || (asked == FIRST_READ && size == FIRST_READ as u64);
    if exact && opened >= 0 && read >= 0 {
        return Ok(Some(read as usize));
    }
    read_len(opened, read, size)
}

impl LoopRing {
    /// Makes the eventfd readable, for a job that finished without a CQE.
    fn kick(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a local array of 8 bytes.
        unsafe { libc::write(self.eventfd.as_raw_fd(), one.as_ptr().cast(), 8) };
    }
}

/// The mode and size of `path` (not following a final symlink with
/// `O_NOFOLLOW` in `flags`), from the kernel's caches only: an `O_PATH`
/// open with `RESOLVE_CACHED` (never waits for a disk; fails with EAGAIN
/// when the lookup would) and an `fstat` of it. `None` when that cannot be
/// had (then ask the ring); a few microseconds otherwise, like the inline
/// attempt io_uring makes of an open.
fn cached_stat(path: &CStr, flags: i32) -> Option<(u32, u64)> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC | (flags & libc::O_NOFOLLOW)) as u64,
        mode: 0,
        resolve: libc::RESOLVE_CACHED,
    };
    // SAFETY: `path` is NUL-terminated and `how` a valid open_how of the
    // size passed; both outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor that nothing else owns, closed when dropped.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: all-zero is a valid stat; fstat writes into the local.
    let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
    // SAFETY: `st` is a valid, writable stat struct.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return None;
    }
    Some((st.st_mode, st.st_size as u64))
}

impl Drop for LoopRing {
    /// Waits until the kernel is done with every job's memory.
    fn drop(&mut self) {
        loop {
            let waiting: usize = self.jobs.iter().map(|(_, j)| j.pending).sum::<usize>()
                + self.reads.iter().map(|(_, j)| j.pending).sum::<usize>();
            if waiting == 0 {
                return;
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(_) => {
                    // Cannot wait: leak the jobs' memory rather than free
                    // what the kernel may still use.
                    std::mem::forget(std::mem::take(&mut self.jobs));
                    std::mem::forget(std::mem::take(&mut self.reads));
                    return;
                }
            }
            let cqes: Vec<u64> = self.ring.completion().map(|c| c.user_data()).collect();
            for ud in cqes {
                let id = (ud >> INDEX_BITS) as usize;
                if id >= READ_IDS {
                    if let Some(job) = self.reads.get_mut(id - READ_IDS) {
                        job.pending = job.pending.saturating_sub(1);
                    }
                } else if let Some(job) = self.jobs.get_mut(id) {
                    job.pending = job.pending.saturating_sub(1);
                }
            }
        }
    }
}
