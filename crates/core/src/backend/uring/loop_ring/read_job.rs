//! A small file read whole on the loop ring: a stat of its path (from the
//! kernel's caches on this thread when it can, else a STATX on the ring),
//! then OPENAT into a direct descriptor -> READ -> CLOSE, linked. The path,
//! the statx block and the buffer are the job's until its last CQE.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, types};

use super::{read_of, Arrived, Done, Job, LoopRing};
use crate::backend::uring::small_file_chain::whole_file_chain;
use crate::buffer_pool::PoolBuf;
use crate::op_error::OpError;
use crate::vocabulary::small_file::{read_len, stat_flags, FIRST_READ};

/// The largest file a read job reads (in one READ of its size, into a
/// buffer the kernel faults in as it copies, on its own thread). Larger
/// ones go to the engine, whose buffers that size are faulted in up front.
const MAX_WHOLE_READ: u64 = 8 << 20;

/// One file read whole (as `readFiles`' chains): a stat of its path, then,
/// for a regular file up to MAX_WHOLE_READ bytes, OPENAT into a direct
/// descriptor -> READ from 0 -> CLOSE (see `crate::vocabulary::small_file`).
pub(super) struct ReadJob {
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
}

impl LoopRing {
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
        let public = self.next_public;
        self.next_public += 1;
        let id = self.jobs.insert(Job::Read(ReadJob {
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
        }));
        let key = self.jobs.user_data(id, 0);
        let Some(job) = read_of(&mut self.jobs, id) else {
            return Err(CString::default());
        };
        if let Some((mode, size)) = cached {
            job.stat = false;
            job.size = size;
            self.start_chain(id, whole_readable(mode, size));
            if !self.jobs.contains(id) {
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
        .user_data(key);
        // The path and the statx block are the job's (heap blocks that do
        // not move with it), kept until its last CQE (and by Drop, which
        // waits for them).
        // SAFETY: as just said, what this SQE points to outlives it.
        if unsafe { self.ring.submission().push(&stat) }.is_err() {
            return match self.jobs.remove(id) {
                Some(Job::Read(job)) => Err(job.path),
                _ => Err(CString::default()),
            };
        }
        self.jobs.submitted(id, 1);
        self.counters.add_ops(1);
        self.submit();
        Ok(public)
    }

    /// The stat of read job `id` is in: queue its chain, or finish it.
    fn read_stat_done(&mut self, id: usize, res: i32) {
        let Some(job) = read_of(&mut self.jobs, id) else {
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
        let key = self.jobs.user_data(id, 0);
        let Some(job) = read_of(&mut self.jobs, id) else {
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
        // a larger one in one READ of its size and one byte more (see
        // whole_len).
        let asked = match job.size as usize {
            size if size >= FIRST_READ => size + 1,
            _ => FIRST_READ,
        };
        job.asked = asked;
        let mut buf = PoolBuf::with_capacity(asked);
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
        self.jobs.submitted(id, 3);
        self.counters.add_ops(3);
        self.submit();
    }

    /// Hands out read job `id`, whose requests are all in (remove gives
    /// it back only then).
    fn finish_read(&mut self, id: usize, done: Result<Option<PoolBuf>, OpError>) {
        if read_of(&mut self.jobs, id).is_none() {
            return;
        }
        if let Some(Job::Read(job)) = self.jobs.remove(id) {
            self.finished.push((job.public, Done::Read(done)));
        }
    }

    /// A read job's CQE.
    pub(super) fn read_cqe(&mut self, arrived: Arrived, res: i32) {
        let id = arrived.key;
        let Some(job) = read_of(&mut self.jobs, id) else {
            return;
        };
        if job.stat {
            self.read_stat_done(id, res);
            return;
        }
        if let Some(r) = job.results.get_mut(usize::from(arrived.step)) {
            *r = res;
        }
        if arrived.left > 0 {
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
}

/// Whether a read job reads a file whose stat says `mode` and `size`.
fn whole_readable(mode: u32, size: u64) -> bool {
    mode & libc::S_IFMT == libc::S_IFREG && size <= MAX_WHOLE_READ
}

/// [`read_len`] for a READ that asked for `asked` bytes of a file whose stat
/// said `size`. A file of FIRST_READ bytes or more was asked for its size
/// and one byte more, because the stat was of the path and the open came
/// after it: the file opened may be another one (the path renamed over) or
/// have grown. A read that stops short of the extra byte reached the end of
/// the file opened: that is the file, whatever its size. One that gets the
/// extra byte read a longer file than the stat said: the general path,
/// which stats what it opens as fs.readFile does, reads it instead (taking
/// its first `size` bytes could give a file that never was: a longer
/// file's start at the length of the one the stat saw).
fn whole_len(opened: i32, read: i32, size: u64, asked: usize) -> Result<Option<usize>, OpError> {
    if asked > FIRST_READ && opened >= 0 && read >= 0 {
        let n = read as usize;
        return Ok((n as u64 <= size).then_some(n));
    }
    read_len(opened, read, size)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_read_that_gets_the_extra_byte_is_not_the_file() {
        let size = 100_000u64;
        let asked = size as usize + 1;
        // The whole file, or a shorter file opened in its place.
        assert_eq!(whole_len(3, 100_000, size, asked).ok(), Some(Some(100_000)));
        assert_eq!(whole_len(3, 60_000, size, asked).ok(), Some(Some(60_000)));
        // A longer file than the stat saw: read again the general way,
        // never its first `size` bytes.
        assert_eq!(whole_len(3, 100_001, size, asked).ok(), Some(None));
        // Errors keep their system call.
        assert!(whole_len(-libc::ENOENT, 0, size, asked).is_err());
        assert!(whole_len(3, -libc::EIO, size, asked).is_err());
    }

    #[test]
    fn a_small_read_is_judged_by_read_len() {
        let asked = FIRST_READ;
        assert_eq!(whole_len(3, 10, 10, asked).ok(), Some(Some(10)));
        assert_eq!(whole_len(3, FIRST_READ as i32, 10, asked).ok(), Some(None));
        // A file of exactly FIRST_READ bytes is a large one: asked one more.
        assert_eq!(
            whole_len(3, FIRST_READ as i32, FIRST_READ as u64, FIRST_READ + 1).ok(),
            Some(Some(FIRST_READ))
        );
    }
}
