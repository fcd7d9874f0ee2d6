//! A small file read whole with a stat of its path, then one open, one
//! read from offset 0 and a close (linked on io_uring, so the read cannot
//! be told what the stat found: hence the stat first).
//!
//! The stat decides: only a regular file smaller than the first read is
//! read this way; anything else goes to the general path of
//! `whole_file::files` (open, fstat, reads, close) without being opened here.
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
//! These are the rules. The io_uring chains (OPENAT -> READ -> CLOSE,
//! linked, on the engine's ring, the loop ring and the lanes' rings) and the
//! system-call version (`backend::fallback::small_file`, which the lanes use
//! on the fallback backend) both follow them.

use std::io;

use crate::op_error::{OpError, Syscall};

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
