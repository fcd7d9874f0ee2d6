//! A small file read whole with a stat of its path, then one open, one
//! read from offset 0 and a close (linked on io_uring, so the read cannot
//! be told what the stat found: hence the stat first).
//!
//! The stat decides: only a regular file smaller than the first read is
//! read this way; anything else goes to the general path of
//! [`crate::whole_file::files`] (open, fstat, reads, close) without being opened here.
//! That matters for FIFOs: opening one waits for a writer, and io_uring
//! reads a pipe whatever the offset, so a chain would take whatever part of
//! the stream was there and call it the file. A read that comes back
//! shorter than its buffer has reached the end of a regular file (buffered
//! reads of regular files complete in full unless at EOF), so no fstat is
//! needed after the open. A file the stat saw empty that then reads as
//! non-empty (a procfs or sysfs file, whose size says 0, or one just
//! written) is read the general way too, until EOF. A path swapped for a
//! FIFO between the stat and the open is the one case left to chance.
//!
//! Shared by the io_uring chains (OPENAT -> READ -> CLOSE, linked, on the
//! engine's ring and on the lanes' rings) and the system-call version here,
//! which the lanes use on the fallback backend.

use std::ffi::CStr;
use std::io;

use crate::buffer_pool::PoolBuf;
use crate::op_error::{OpError, Syscall};
use crate::stats::Counters;

/// The first (and for most files only) read's size. A file of this size or
/// more takes the general path.
pub(crate) const FIRST_READ: usize = 68 * 1024;

/// A small file's outcome as a lane reports it: its contents (valid only
/// during the call), `None` for the general path, or the error.
pub(crate) type LaneRead<'b> = Result<Option<&'b [u8]>, OpError>;

/// Whether a path whose stat says `mode` and `size` is read with one chain.
pub(crate) fn chainable(mode: u32, size: u64) -> bool {
    mode & libc::S_IFMT == libc::S_IFREG && size < FIRST_READ as u64
}

/// The statx flags for a path opened with `flags`: no symlink following if
/// the open will not follow one (then the stat sees a symlink, not a
/// regular file, and the general path's open reports ELOOP).
#[cfg(all(target_os = "linux", feature = "io-uring"))]
pub(crate) fn stat_flags(flags: i32) -> i32 {
    match flags & libc::O_NOFOLLOW {
        0 => libc::AT_STATX_SYNC_AS_STAT,
        _ => libc::AT_STATX_SYNC_AS_STAT | libc::AT_SYMLINK_NOFOLLOW,
    }
}

/// What the open and the read (kernel-style results: `>= 0` or `-errno`)
/// of one small read amount to, for a file whose stat said `size`: the
/// file's length (all of it is in the block read into), `None` for the
/// general path, or the error.
pub(crate) fn read_len(opened: i32, read: i32, size: u64) -> Result<Option<usize>, OpError> {
    let failed = |syscall, errno| OpError {
        syscall,
        error: io::Error::from_raw_os_error(errno),
    };
    if opened < 0 {
        return Err(failed(Syscall::Open, -opened));
    }
    match read {
        // Empty by its size, not by its read: a pseudo file, or it grew.
        n if n > 0 && size == 0 => Ok(None),
        n if n >= 0 && (n as usize) < FIRST_READ => Ok(Some(n as usize)),
        n if n >= 0 => Ok(None),
        e if e == -libc::ESPIPE || e == -libc::ECANCELED => Ok(None),
        e => Err(failed(Syscall::Read, -e)),
    }
}

/// `stat(2)` (or `lstat(2)` for `O_NOFOLLOW`) of `path`: its mode and size.
pub(crate) fn stat_path_blocking(path: &CStr, flags: i32) -> Option<(u32, u64)> {
    // SAFETY: all-zero is a valid stat; the call writes into the local.
    let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
    // SAFETY: `path` is NUL-terminated and `st` a writable stat.
    let r = unsafe {
        match flags & libc::O_NOFOLLOW {
            0 => libc::stat(path.as_ptr(), &mut st),
            _ => libc::lstat(path.as_ptr(), &mut st),
        }
    };
    (r == 0).then_some((st.st_mode, st.st_size as u64))
}

/// The same with system calls on the calling (blocking) thread, into
/// `block` (at least [`FIRST_READ`] bytes): the file's length, as
/// [`read_len`].
pub(crate) fn read_small_blocking(
    path: &CStr,
    flags: i32,
    block: &mut PoolBuf,
    counters: &Counters,
) -> Result<Option<usize>, OpError> {
    let stat = stat_path_blocking(path, flags);
    counters.add_op();
    counters.add_completions(1);
    let size = match stat {
        Some((mode, size)) if chainable(mode, size) => size,
        // Not opened here: the general path opens it (and reports the
        // open's own error, as fs does).
        _ => return Ok(None),
    };
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, 0o666) };
    counters.add_op();
    if fd < 0 {
        counters.add_completions(1);
        return read_len(-errno(), 0, size);
    }
    let want = FIRST_READ.min(block.capacity());
    let read = loop {
        // SAFETY: `block` has room for `want` bytes and nothing else uses it
        // while the call writes into it.
        let n = unsafe { libc::pread(fd, block.as_mut_ptr().cast(), want, 0) };
        if n >= 0 {
            break n as i32;
        }
        let e = errno();
        if e != libc::EINTR {
            break -e;
        }
    };
    // SAFETY: `fd` was opened above and is closed once, here.
    unsafe { libc::close(fd) };
    counters.add_ops(2);
    counters.add_completions(3);
    let len = read_len(fd, read, size)?;
    if let Some(n) = len {
        // SAFETY: pread wrote n bytes at the start of the block.
        unsafe { block.set_len(n) };
        counters.add_bytes(n as u64);
    }
    Ok(len)
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
