//! The engine's operations that run on the calling thread, without its
//! runtime: what a caller on an event loop may do inline because it cannot
//! wait for a disk (a cached-only open, a response sent from cached pages),
//! and what a blocking thread of a batch does with a ring of its own or
//! with system calls. They pick their backend the way [`super::Engine`]
//! does: io_uring where this build and the kernel have it, system calls
//! otherwise.

use std::ffi::CStr;
use std::io;
use std::os::fd::{OwnedFd, RawFd};

use crate::buffer_pool::PoolBuf;
use crate::fd_stat::FileStat;
use crate::op_error::OpError;
use crate::stats::Counters;
use crate::vocabulary::small_file::LaneRead;
use crate::vocabulary::SendOutcome;

/// Opens `path` beneath `dir` from the kernel's caches only, and stats it:
/// `Ok(None)` when that would wait for a disk (then use
/// [`super::Engine::open_beneath`]). See
/// [`crate::backend::fallback::beneath::try_open_cached`].
pub(crate) fn try_open_beneath_cached(
    dir: RawFd,
    path: &CStr,
    flags: i32,
) -> io::Result<Option<(OwnedFd, FileStat)>> {
    crate::backend::fallback::beneath::try_open_cached(dir, path, flags)
}

/// Sends what it can of a response without blocking: see
/// [`crate::http::send_inline`].
pub(crate) fn send_inline(
    sock: RawFd,
    head: &[u8],
    file: RawFd,
    offset: u64,
    len: u64,
    budget: u64,
) -> SendOutcome {
    crate::backend::fallback::send_inline::send_inline(sock, head, file, offset, len, budget)
}

/// A small file read whole with system calls into `block`: its length,
/// `None` for the general path, or the error.
pub(crate) fn read_small_blocking(
    path: &CStr,
    flags: i32,
    block: &mut PoolBuf,
    counters: &Counters,
) -> Result<Option<usize>, OpError> {
    crate::backend::fallback::small_file::read_small_blocking(path, flags, block, counters)
}

/// Reads the files `next` hands out through a ring of the calling
/// (blocking) thread's own, at most `window` chains at once, and gives
/// each outcome to `keep`, while there is such a ring (none without
/// io_uring, or when the kernel refuses one) and it works. Every file it
/// takes from `next` it hands to `keep`; the caller reads the rest.
#[cfg(all(target_os = "linux", feature = "io-uring"))]
pub(crate) fn read_small_on_lane_ring<'p>(
    flags: i32,
    window: usize,
    counters: &Counters,
    next: &mut dyn FnMut() -> Option<(usize, &'p CStr)>,
    keep: &mut dyn FnMut(usize, LaneRead<'_>),
) {
    let _no_ring = crate::backend::uring::lane_ring::with_lane_ring(|ring| {
        ring.read_small_all(flags, window, counters, next, keep)
    });
}

#[cfg(not(all(target_os = "linux", feature = "io-uring")))]
pub(crate) fn read_small_on_lane_ring<'p>(
    _flags: i32,
    _window: usize,
    _counters: &Counters,
    _next: &mut dyn FnMut() -> Option<(usize, &'p CStr)>,
    _keep: &mut dyn FnMut(usize, LaneRead<'_>),
) {
}
