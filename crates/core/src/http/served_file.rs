//! A file opened for an HTTP response: confined beneath the served
//! directory, its metadata read, and closed again unless it is a regular
//! file (a directory, a FIFO or a device is never served as a body).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{OwnedFd, RawFd};

use crate::engine::{self, Engine};
use crate::fd_stat::FileStat;
use crate::op_error::{OpError, Syscall};

/// What [`open_served`] found.
#[derive(Debug)]
pub struct ServedFile {
    /// The open descriptor of a regular file; `None` for anything else,
    /// which was closed again.
    pub fd: Option<RawFd>,
    pub stat: FileStat,
}

/// Opens `path` (relative) beneath the directory `dir_fd` with `flags`
/// (EXDEV when it resolves outside), then reads its metadata.
pub async fn open_served(
    engine: &Engine,
    dir_fd: RawFd,
    path: CString,
    flags: i32,
) -> Result<ServedFile, OpError> {
    let fd = engine
        .open_beneath(dir_fd, path, flags)
        .await
        .map_err(|error| OpError {
            syscall: Syscall::Open,
            error,
        })?;
    let stat = match engine.fstat(fd).await {
        Ok(stat) => stat,
        Err(error) => {
            let _ = engine.close(fd).await;
            return Err(OpError {
                syscall: Syscall::Fstat,
                error,
            });
        }
    };
    if !stat.is_regular() {
        let _ = engine.close(fd).await;
        return Ok(ServedFile { fd: None, stat });
    }
    Ok(ServedFile { fd: Some(fd), stat })
}

/// [`open_served`] on the calling thread when it cannot wait for a disk:
/// the lookup from the kernel's caches only, then `fstat` (a few
/// microseconds, fit for an event loop). `Ok(None)` when it would wait,
/// or the system cannot tell: then use [`open_served`]. The descriptor is
/// the caller's to check (`is_regular`) and close.
pub fn open_served_cached(
    dir_fd: RawFd,
    path: &CStr,
    flags: i32,
) -> io::Result<Option<(OwnedFd, FileStat)>> {
    engine::try_open_beneath_cached(dir_fd, path, flags)
}
