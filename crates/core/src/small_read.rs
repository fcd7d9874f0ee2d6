//! A small file read whole with one open, one read from offset 0 and a
//! close, without an fstat: a read that comes back shorter than its buffer
//! has reached the end of a regular file (buffered reads of regular files
//! complete in full unless at EOF, through io_uring as through read(2)). A
//! file that fills the buffer, or that cannot be read at an offset (a FIFO:
//! ESPIPE), is left to the general path of [`crate::files`], which sizes its
//! buffer from fstat.
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

/// What the open and the read (kernel-style results: `>= 0` or `-errno`)
/// of one small read amount to: the file's length (all of it is in the
/// block read into), `None` for the general path, or the error.
pub(crate) fn read_len(opened: i32, read: i32) -> Result<Option<usize>, OpError> {
    let failed = |syscall, errno| OpError {
        syscall,
        error: io::Error::from_raw_os_error(errno),
    };
    if opened < 0 {
        return Err(failed(Syscall::Open, -opened));
    }
    match read {
        n if n >= 0 && (n as usize) < FIRST_READ => Ok(Some(n as usize)),
        n if n >= 0 => Ok(None),
        e if e == -libc::ESPIPE || e == -libc::ECANCELED => Ok(None),
        e => Err(failed(Syscall::Read, -e)),
    }
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
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, 0o666) };
    counters.add_op();
    if fd < 0 {
        counters.add_completions(1);
        return read_len(-errno(), 0);
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
    let len = read_len(fd, read)?;
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
