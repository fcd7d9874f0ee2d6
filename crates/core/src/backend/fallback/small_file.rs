//! A small file read whole with system calls on the calling (blocking)
//! thread, by the rules of [`crate::vocabulary::small_file`]: a lane's
//! reads on the fallback backend, and a lane's stats on io_uring (a plain
//! `stat(2)` there beats io_uring's STATX, which always goes to io-wq).

use std::ffi::CStr;
use std::io;

use crate::buffer_pool::PoolBuf;
use crate::op_error::OpError;
use crate::stats::Counters;
use crate::vocabulary::small_file::{chainable, read_len, FIRST_READ};

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
