//! IORING_OP_WRITEV of up to `IOV_MAX` iovecs at an offset: one on its own
//! (`writev`), or a link chain of them (`write_all`, the batch writer).
//!
//! The iovec array and the `WriteSource` its entries point into are owned
//! by the op until its CQE. In a chain every request points into the same
//! source, so each holds a share of it, and whichever CQE comes last (or
//! the writer, when all came in) is the one that lets it go.
//!
//! Writes "at the current position" do not use the kernel's offset -1 on
//! regular files: see [`CurPos`].

use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use io_uring::{opcode, squeue};

use super::driver::fd;
use super::fsync::fsync_sqe;
use super::op::Op;
use super::Driver;
use crate::errno_result;
use crate::vocabulary::{
    cut_groups, Chain, Cursor, Plan, SyncMode, WriteOutcome, CURRENT_POSITION,
};
use crate::write_source::{IoVecs, WriteSource};

/// A source shared by the requests of a chain (a `Mutex` only because a
/// `WriteSource` is `Send` but not `Sync`; it is locked briefly to read the
/// part list, never while the kernel works).
type SharedSource = Arc<Mutex<WriteSource>>;

fn lock(src: &SharedSource) -> MutexGuard<'_, WriteSource> {
    // Nothing panics while holding it; a poisoned lock is still consistent.
    src.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one request of a chain keeps alive until its CQE: its iovec array
/// (none for the sync) and a share of the source the iovecs point into.
struct ChainRes {
    _iov: Option<IoVecs>,
    _src: SharedSource,
}

/// The SQE for one `pwritev` of `iov` at `offset` (`u64::MAX`: at the file
/// position). `iov`'s array must stay put (it is a heap block) and alive,
/// with the memory it names, until the CQE.
pub(crate) fn writev_sqe(file: RawFd, iov: &IoVecs, offset: u64) -> squeue::Entry {
    // A group never exceeds IOV_MAX (1024) entries, so the count fits.
    opcode::Writev::new(fd(file), iov.0.as_ptr(), iov.0.len() as u32)
        .offset(offset)
        .build()
}

/// How a write at the current position runs on io_uring.
///
/// With offset -1 the kernel takes the position from the open file and
/// stores it back at completion. But when a write to a regular file (or
/// block device) comes up short (a size limit, a full disk), io_uring
/// retries the rest in a worker and completes with the partial count while
/// leaving the position where the write began: measured on Linux 6.18 with
/// a 1 MiB tmpfs, a 900000-byte write followed by one cut at 148576 bytes
/// left the position at 900000, and the next write at -1 overwrote the data.
/// So on those files the engine reads the position, writes at explicit
/// offsets, and moves the position itself, as `write(2)` would have.
pub(crate) enum CurPos {
    /// A regular file or block device: written at explicit offsets from
    /// this position, which is then set to the end of what was written.
    Owned(u64),
    /// The same opened with `O_APPEND`: every write lands at the end of the
    /// file whatever the offset, so -1 is kept; after a short write the
    /// position is moved to the end of the file (where `write(2)` leaves it).
    Append,
    /// Anything else (pipe, socket, character device, or a descriptor the
    /// checks fail on, whose write then reports the error): -1 as is. The
    /// kernel does not retry short writes on these, nor lose the position.
    Kernel,
}

impl CurPos {
    pub(crate) fn of(file: RawFd) -> CurPos {
        // SAFETY: all-zero is a valid stat; fstat writes into the local.
        let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
        // SAFETY: st is a valid, writable stat struct.
        if unsafe { libc::fstat(file, &mut st) } != 0 {
            return CurPos::Kernel;
        }
        let kind = st.st_mode & libc::S_IFMT;
        if kind != libc::S_IFREG && kind != libc::S_IFBLK {
            return CurPos::Kernel;
        }
        // SAFETY: F_GETFL takes no pointer argument.
        let flags = unsafe { libc::fcntl(file, libc::F_GETFL) };
        if flags < 0 {
            return CurPos::Kernel;
        }
        if flags & libc::O_APPEND != 0 {
            return CurPos::Append;
        }
        // SAFETY: lseek takes no pointers.
        match unsafe { libc::lseek(file, 0, libc::SEEK_CUR) } {
            pos if pos >= 0 => CurPos::Owned(pos as u64),
            _ => CurPos::Kernel,
        }
    }

    /// The offset the writes start at.
    pub(crate) fn offset(&self) -> u64 {
        match self {
            CurPos::Owned(pos) => *pos,
            CurPos::Append | CurPos::Kernel => CURRENT_POSITION,
        }
    }

    /// Leaves the file position where `write(2)` would have after writing
    /// `written` bytes; `short`: some write came up short.
    pub(crate) fn finish(&self, file: RawFd, written: u64, short: bool) -> io::Result<()> {
        let (pos, whence) = match self {
            CurPos::Owned(pos) => (pos + written, libc::SEEK_SET),
            CurPos::Append if short => (0, libc::SEEK_END),
            CurPos::Append | CurPos::Kernel => return Ok(()),
        };
        // SAFETY: lseek takes no pointers.
        if unsafe { libc::lseek(file, pos as libc::off_t, whence) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Driver {
    /// One WRITEV of the start of `src` (its first `IOV_MAX` non-empty
    /// parts, at most `MAX_WRITE_BYTES`) at `offset` (`u64::MAX`: at the
    /// file position, which it advances). Like `writev(2)` it may write
    /// less; returns the count and the source.
    pub async fn writev(
        &self,
        file: RawFd,
        src: WriteSource,
        offset: u64,
    ) -> (io::Result<usize>, WriteSource) {
        let (mut groups, _) = cut_groups(src.parts(), Cursor::default(), offset, 1);
        let Some(group) = groups.pop() else {
            return (Ok(0), src);
        };
        let cur = (offset == CURRENT_POSITION).then(|| CurPos::of(file));
        let at = cur.as_ref().map_or(offset, CurPos::offset);
        let len = group.len;
        let sqe = writev_sqe(file, &group.iov, at);
        let done = Op::submit(&self.shared, sqe, (group.iov, src)).await;
        let mut res = errno_result(done.result).map(|n| n as usize);
        if let Ok(n) = res {
            self.shared.counters.add_bytes_written(n as u64);
            if let Some(cur) = cur {
                if let Err(e) = cur.finish(file, n as u64, (n as u64) < len) {
                    res = Err(e);
                }
            }
        }
        (res, done.data.1)
    }

    /// The batch writer on io_uring: see [`crate::stream::batch_writer`].
    pub async fn write_all(
        &self,
        file: RawFd,
        src: WriteSource,
        offset: u64,
        sync: SyncMode,
    ) -> WriteOutcome {
        // With nothing to write there is no position to move.
        let cur = (offset == CURRENT_POSITION && !src.is_empty()).then(|| CurPos::of(file));
        let offset = cur.as_ref().map_or(offset, CurPos::offset);
        let shared_src: SharedSource = Arc::new(Mutex::new(src));
        let mut plan = Plan::new(offset, sync);
        // A chain may be as long as the SQ: push_batch then submits what
        // others queued first and hands the kernel the chain on its own.
        let max = self.shared.sq_capacity;
        let mut error = loop {
            let chain = plan.next_chain(&lock(&shared_src), max);
            let Some(chain) = chain else {
                break None;
            };
            let (lens, synced) = chain.shape();
            let results = self.run_chain(file, &shared_src, chain).await;
            let settled = plan.settle(&lock(&shared_src), &lens, synced, &results);
            if let Err(e) = settled {
                break Some(e);
            }
        };
        if let Some(cur) = cur {
            if let Err(e) = cur.finish(file, plan.written(), plan.had_short_write()) {
                error.get_or_insert(e);
            }
        }
        // Every request completed and dropped its share with its future, so
        // the source is this writer's alone again.
        let source = match Arc::try_unwrap(shared_src) {
            Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
            // Cannot happen; were a share still out, it would free the
            // memory when it goes, so handing back nothing is still safe.
            Err(_) => WriteSource::empty(),
        };
        WriteOutcome {
            written: plan.written(),
            error,
            source,
        }
    }

    /// Submits `chain` as one batch of linked SQEs (each runs only once the
    /// one before completed in full; a short or failed one cancels the rest)
    /// and returns every request's result, in order, once all CQEs are in.
    ///
    /// `push_batch` puts the whole chain in the SQ at once, so one enter
    /// hands it over whole. The one way it could still be cut is the kernel
    /// failing to allocate a request mid-batch (it then consumes only the
    /// SQEs before it, runs that part of the chain, and takes the rest at
    /// the next enter as a chain of its own): both parts write their own
    /// offsets, but if the first then fell short, bytes after the gap could
    /// be in the file beyond the `written` reported.
    async fn run_chain(&self, file: RawFd, src: &SharedSource, chain: Chain) -> Vec<i32> {
        let writes = chain.groups.len();
        let total = writes + usize::from(chain.fsync.is_some());
        let link = |i: usize| {
            if i + 1 < total {
                squeue::Flags::IO_LINK
            } else {
                squeue::Flags::empty()
            }
        };
        let mut reqs = Vec::with_capacity(total);
        for (i, group) in chain.groups.into_iter().enumerate() {
            let sqe = writev_sqe(file, &group.iov, group.offset).flags(link(i));
            let res = ChainRes {
                _iov: Some(group.iov),
                _src: src.clone(),
            };
            reqs.push((sqe, res));
        }
        if let Some(datasync) = chain.fsync {
            let res = ChainRes {
                _iov: None,
                _src: src.clone(),
            };
            reqs.push((fsync_sqe(file, datasync), res));
        }
        let ops = Op::submit_batch(&self.shared, reqs);
        let mut results = Vec::with_capacity(total);
        // All are queued already; awaiting them one by one only collects.
        // If this future is dropped half way, the ops not yet collected are
        // dropped too, which cancels them and parks their shares in the slab.
        for (i, op) in ops.into_iter().enumerate() {
            let res = op.await.result;
            if i < writes && res > 0 {
                self.shared.counters.add_bytes_written(res as u64);
            }
            results.push(res);
        }
        results
    }
}
