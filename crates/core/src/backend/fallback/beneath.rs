//! Opening a path confined beneath a directory: the `root` of a file server.
//!
//! On Linux 5.6+ `openat2` with `RESOLVE_BENEATH` makes the kernel refuse,
//! with EXDEV, any resolution that leaves the directory: `..` past it, an
//! absolute path, a symlink whose target lies outside; magic links
//! (`/proc/self/fd/N`) are refused too. The check and the open are one
//! step, so no rename between them can slip a file from outside in.
//! io_uring runs it as OPENAT2 ([`crate::backend::uring`]); this module is the
//! system-call path (the fallback backend, kernels without the opcode).
//!
//! Without `openat2` (older Linux, macOS) the file is opened and its real
//! path then compared with the directory's: a file outside is closed and
//! refused the same way. That check races with a concurrent rename of a
//! parent directory; it is the best those systems allow.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::fd_stat::FileStat;
use crate::stats::Counters;

/// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`.
#[cfg(target_os = "linux")]
pub(crate) const RESOLVE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

/// The kernel's `struct open_how` (libc's is non-exhaustive).
#[cfg(target_os = "linux")]
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(dir, path, {flags | O_CLOEXEC, resolve})`.
#[cfg(target_os = "linux")]
pub(crate) fn openat2(dir: RawFd, path: &CStr, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `path` is NUL-terminated and `how` is a valid open_how of the
    // size passed; both outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// The error for a path that leaves the directory (what `openat2` gives).
fn escapes() -> io::Error {
    io::Error::from_raw_os_error(libc::EXDEV)
}

fn cvt(r: libc::c_int) -> io::Result<RawFd> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens `path` relative to `dir` (`O_CLOEXEC` added), refusing with EXDEV
/// a path that resolves outside `dir`. Blocks: for the thread pool.
pub(crate) fn open_beneath_blocking(dir: RawFd, path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        match openat2(dir, path, flags, RESOLVE) {
            Ok(file) => return Ok(file),
            Err(e) if !matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EXDEV)) => {
                return Err(e)
            }
            Err(_) => {}
        }
    }
    checked_open(dir, path, flags)
}

/// Open, then compare real paths. Also the second chance for what openat2
/// refuses on the way but may end inside `dir`: an absolute symlink whose
/// target lies beneath it, a magic link to a file inside.
fn checked_open(dir: RawFd, path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let root = fd_path(dir)?;
    // Resolved before anything is opened, so no file outside (a device
    // whose open has effects) is ever opened.
    let target = std::fs::canonicalize(root.join(std::ffi::OsStr::from_bytes(path.to_bytes())))?;
    // Component-wise: /srv/www-old does not start with /srv/www.
    if !target.starts_with(&root) {
        return Err(escapes());
    }
    let target = std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(|_| escapes())?;
    // SAFETY: `target` is NUL-terminated and outlives the call.
    let fd = cvt(unsafe {
        libc::open(
            target.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0,
        )
    })?;
    // SAFETY: a fresh descriptor that nothing else owns.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    // Checked again on what was opened: a rename in between cannot slip a
    // file from outside in.
    if fd_path(fd)?.starts_with(&root) {
        Ok(file)
    } else {
        Err(escapes())
    }
}

/// Where an open descriptor really is.
#[cfg(target_os = "linux")]
fn fd_path(fd: RawFd) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
}

#[cfg(target_vendor = "apple")]
fn fd_path(fd: RawFd) -> io::Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: F_GETPATH writes at most PATH_MAX bytes into `buf`.
    if unsafe { libc::fcntl(fd, libc::F_GETPATH, buf.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&buf[..len])))
}

#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
fn fd_path(_: RawFd) -> io::Result<PathBuf> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Opens `path` beneath `dir` and reads its metadata without ever waiting
/// for a disk: the lookup is done from the kernel's dentry cache only
/// (`RESOLVE_CACHED`, Linux 5.12+), and `fstat` of an open local file
/// touches no disk. `Ok(None)` when the lookup would need I/O or the
/// kernel cannot do this: then use the async path
/// ([`crate::Engine::open_beneath`]). Costs a few microseconds, so a caller
/// on an event loop may use it inline, as io_uring itself does for opens.
#[cfg(target_os = "linux")]
pub fn try_open_cached(
    dir: RawFd,
    path: &CStr,
    flags: i32,
) -> io::Result<Option<(OwnedFd, FileStat)>> {
    let file = match openat2(dir, path, flags, RESOLVE | libc::RESOLVE_CACHED) {
        Ok(file) => file,
        Err(e) => {
            return match e.raw_os_error() {
                // Needs I/O; or no openat2 / RESOLVE_CACHED in this kernel; or
                // left the directory on the way (the async path looks closer).
                Some(libc::EAGAIN | libc::ENOSYS | libc::EINVAL | libc::EXDEV) => Ok(None),
                _ => Err(e),
            };
        }
    };
    // SAFETY: all-zero is a valid stat; fstat writes into the local.
    let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
    // SAFETY: `st` is a valid, writable stat struct.
    if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some((file, FileStat::from_stat(&st))))
}

/// Elsewhere there is no cached-only lookup: always the async path.
#[cfg(not(target_os = "linux"))]
pub fn try_open_cached(_: RawFd, _: &CStr, _: i32) -> io::Result<Option<(OwnedFd, FileStat)>> {
    Ok(None)
}

/// [`open_beneath_blocking`] on tokio's blocking pool. The descriptor
/// travels as an `OwnedFd`, so a caller that gives up does not leak it.
pub(crate) async fn open_beneath_on_pool(
    dir: RawFd,
    path: std::ffi::CString,
    flags: i32,
    counters: &Arc<Counters>,
) -> io::Result<RawFd> {
    let (tx, rx) = tokio::sync::oneshot::channel::<io::Result<OwnedFd>>();
    counters.add_op();
    let c = counters.clone();
    tokio::task::spawn_blocking(move || {
        let res = open_beneath_blocking(dir, &path, flags);
        c.add_completions(1);
        let _ = tx.send(res);
    });
    match rx.await {
        Ok(res) => res.map(IntoRawFd::into_raw_fd),
        Err(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
    }
}
