//! The engine's operations that run on the calling thread, without its
//! runtime: what a caller on an event loop may do inline because it cannot
//! wait for a disk (a cached-only open, a response sent from cached pages),
//! and what a blocking thread of a batch does with a ring of its own or
//! with system calls. They pick their backend the way [`super::Engine`]
//! does: io_uring where this build and the kernel have it, system calls
//! otherwise.

use std::ffi::CStr;

use crate::stats::Counters;
use crate::vocabulary::small_file::LaneRead;

/// Opens `path` beneath `dir` from the kernel's caches only, and stats it
/// (`Ok(None)` when that would wait for a disk: then use
/// [`super::Engine::open_beneath`]).
pub(crate) use crate::backend::fallback::beneath::try_open_cached as try_open_beneath_cached;
/// What the open-file cache stands on: an inotify instance, a path walked
/// one confined step at a time, a file's version, a small file read whole
/// from the page cache.
pub(crate) use crate::backend::fallback::change_watch::{
    change_signals, change_signals_work, open_step, read_cached_whole, version_of, Change,
    ChangeWatch, Version, Watched,
};
/// Sends what it can of a response without blocking.
pub use crate::backend::fallback::send_inline::{send_bytes_inline, send_inline};
/// A small file read whole with system calls into a block: its length,
/// `None` for the general path, or the error.
pub(crate) use crate::backend::fallback::small_file::read_small_blocking;

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
