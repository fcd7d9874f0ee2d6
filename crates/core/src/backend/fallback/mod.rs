//! The fallback backend: the same operations as positional system calls on
//! tokio's blocking thread pool. Used where io_uring is unavailable (seccomp,
//! `kernel.io_uring_disabled`, old kernels, non-Linux) or when forced.
//!
//! Every job owns its buffer and path until the system call returns, so a
//! caller that gives up early never leaves a thread writing into freed memory.
//!
//! Beside the positional operations, the system-call versions that both
//! backends use where a ring does not help: opening beneath a root
//! ([`beneath`]), a small file read whole ([`small_file`]), a response body
//! with `sendfile(2)` ([`sendfile_body`]) and its inline start
//! ([`send_inline`]).

pub(crate) mod beneath;
pub(crate) mod change_watch;
pub(crate) mod send_inline;
pub(crate) mod sendfile_body;
pub(crate) mod small_file;

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::buffer_pool::PoolBuf;
use crate::fd_stat::FileStat;
use crate::stats::Counters;
use crate::vocabulary::{
    cut_groups, Cursor, Group, PathStat, Plan, SyncMode, WriteOutcome, CURRENT_POSITION,
};
use crate::write_source::WriteSource;

#[derive(Clone)]
pub struct Fallback {
    pub(crate) counters: Arc<Counters>,
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// One `pwritev` of `group` (`writev` at the file position), kernel style:
/// bytes written or `-errno`. Not retried on EINTR: the caller decides.
fn write_group(fd: RawFd, group: &Group) -> i32 {
    let iov = &group.iov.0;
    // SAFETY: the iovecs name memory of a WriteSource that the calling job
    // owns for the whole call; the array is at most IOV_MAX entries long.
    let n = unsafe {
        if group.offset == CURRENT_POSITION {
            libc::writev(fd, iov.as_ptr(), iov.len() as libc::c_int)
        } else {
            libc::pwritev(
                fd,
                iov.as_ptr(),
                iov.len() as libc::c_int,
                group.offset as libc::off_t,
            )
        }
    };
    if n < 0 {
        -io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        // A group is at most MAX_WRITE_BYTES (1 GiB), so the count fits.
        n as i32
    }
}

/// `fsync(2)` or `fdatasync(2)`, kernel style. Not retried on EINTR.
fn sync_fd(fd: RawFd, datasync: bool) -> i32 {
    // SAFETY: fsync and fdatasync take no pointers.
    let r = unsafe {
        if datasync {
            fdatasync(fd)
        } else {
            libc::fsync(fd)
        }
    };
    if r < 0 {
        -io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        0
    }
}

#[cfg(not(target_vendor = "apple"))]
use libc::fdatasync;

/// macOS's libc has no `fdatasync`; `fsync` does at least as much.
#[cfg(target_vendor = "apple")]
fn fdatasync(fd: RawFd) -> libc::c_int {
    // SAFETY: fsync takes no pointers.
    unsafe { libc::fsync(fd) }
}

impl Fallback {
    async fn run<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> R {
        self.counters.add_op();
        // Counted when the system call returns, on the pool thread: a caller
        // that gave up early must not leave the job counted as pending.
        let counters = self.counters.clone();
        let out = tokio::task::spawn_blocking(move || {
            let r = job();
            counters.add_completions(1);
            r
        })
        .await;
        match out {
            Ok(r) => r,
            // A job cannot panic (plain system calls); if it did, report it
            // as the panic it was rather than inventing a result.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    pub async fn openat(&self, path: CString, flags: i32, mode: u32) -> io::Result<RawFd> {
        // The descriptor travels as an OwnedFd: if the caller gives up, before
        // the send or after it (the value then dies inside the channel), it is
        // closed on drop instead of leaking.
        let (tx, rx) = tokio::sync::oneshot::channel::<io::Result<OwnedFd>>();
        self.counters.add_op();
        let counters = self.counters.clone();
        tokio::task::spawn_blocking(move || {
            // SAFETY: path is a valid NUL-terminated string owned by this job.
            let res = cvt(unsafe {
                libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint)
            })
            // SAFETY: fd was just opened here and is owned by nothing else.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
            // Counted before the result is handed over, so a caller sees its
            // own completion, and on the pool thread, so a caller that gave
            // up early does not leave the job counted as pending.
            counters.add_completions(1);
            // An Err gives the value back; dropping it closes the descriptor.
            let _ = tx.send(res);
        });
        match rx.await {
            Ok(res) => res.map(IntoRawFd::into_raw_fd),
            Err(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
        }
    }

    pub async fn read_at(
        &self,
        fd: RawFd,
        mut buf: PoolBuf,
        offset: u64,
        want: usize,
    ) -> (io::Result<usize>, PoolBuf) {
        let counters = self.counters.clone();
        self.run(move || {
            let filled = buf.len();
            let want = want.min(buf.capacity() - filled);
            let res = loop {
                // SAFETY: the destination lies inside buf's block (filled +
                // want <= capacity) and buf is owned by this job, so the
                // system call writes only memory we own.
                let n = unsafe {
                    let dst = buf.as_mut_ptr().add(filled).cast();
                    if offset == CURRENT_POSITION {
                        libc::read(fd, dst, want)
                    } else {
                        libc::pread(fd, dst, want, offset as libc::off_t)
                    }
                };
                if n >= 0 {
                    break Ok(n as usize);
                }
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    break Err(e);
                }
            };
            if let Ok(n) = res {
                // SAFETY: pread wrote n bytes right after `filled`.
                unsafe { buf.set_len(filled + n) };
                counters.add_bytes(n as u64);
            }
            (res, buf)
        })
        .await
    }

    pub async fn fstat(&self, fd: RawFd) -> io::Result<FileStat> {
        self.run(move || {
            // SAFETY: fstat writes into a local stat struct.
            let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
            // SAFETY: st is a valid, writable stat struct.
            cvt(unsafe { libc::fstat(fd, &mut st) })?;
            Ok(FileStat::from_stat(&st))
        })
        .await
    }

    /// `stat(2)` of `path` when `follow`, else `lstat(2)`, by statx where
    /// the kernel has it (for the birth time), as libuv does.
    pub async fn stat_path(&self, path: CString, follow: bool) -> io::Result<PathStat> {
        self.run(move || {
            #[cfg(target_os = "linux")]
            {
                // SAFETY: statx is plain old data; all-zero is a valid value.
                let mut sx = unsafe { std::mem::zeroed::<libc::statx>() };
                // The raw system call: older C libraries (musl before 1.2.5)
                // have no statx wrapper.
                // SAFETY: path is a NUL-terminated string owned by this job
                // and sx a writable statx block on its stack.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_statx,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        crate::vocabulary::statx_flags(follow),
                        crate::vocabulary::STATX_MASK,
                        &mut sx as *mut libc::statx,
                    )
                };
                if r == 0 {
                    return Ok(PathStat::from_statx(&sx));
                }
                let e = io::Error::last_os_error();
                // libuv's list: no statx in this kernel, or a seccomp filter
                // that refuses it; anything else is the path's own error.
                match e.raw_os_error() {
                    Some(libc::ENOSYS | libc::EPERM | libc::EINVAL | libc::EOPNOTSUPP) => {}
                    _ => return Err(e),
                }
            }
            // SAFETY: stat writes into a local stat struct.
            let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
            // SAFETY: path is a NUL-terminated string owned by this job and
            // st a valid, writable stat struct.
            cvt(unsafe {
                if follow {
                    libc::stat(path.as_ptr(), &mut st)
                } else {
                    libc::lstat(path.as_ptr(), &mut st)
                }
            })?;
            Ok(PathStat::from_stat(&st))
        })
        .await
    }

    pub async fn close(&self, fd: RawFd) -> io::Result<()> {
        self.run(move || {
            // SAFETY: the caller owns fd and gives it up here.
            cvt(unsafe { libc::close(fd) }).map(|_| ())
        })
        .await
    }

    /// One `pwritev` (`writev` at the file position) of the start of `src`,
    /// as `Driver::writev`; may write less.
    pub async fn writev(
        &self,
        fd: RawFd,
        src: WriteSource,
        offset: u64,
    ) -> (io::Result<usize>, WriteSource) {
        let counters = self.counters.clone();
        self.run(move || {
            let (mut groups, _) = cut_groups(src.parts(), Cursor::default(), offset, 1);
            let Some(group) = groups.pop() else {
                return (Ok(0), src);
            };
            let res = loop {
                match write_group(fd, &group) {
                    e if -e == libc::EINTR => {}
                    e if e < 0 => break Err(io::Error::from_raw_os_error(-e)),
                    n => break Ok(n as usize),
                }
            };
            if let Ok(n) = res {
                counters.add_bytes_written(n as u64);
            }
            // The iovecs go before the memory they name.
            drop(group);
            (res, src)
        })
        .await
    }

    pub async fn fsync(&self, fd: RawFd, datasync: bool) -> io::Result<()> {
        self.run(move || loop {
            match sync_fd(fd, datasync) {
                e if -e == libc::EINTR => {}
                e if e < 0 => break Err(io::Error::from_raw_os_error(-e)),
                _ => break Ok(()),
            }
        })
        .await
    }

    /// The batch writer on the pool: the same plan as on io_uring, one
    /// system call at a time, all in one job that owns the source (so a
    /// caller that gives up early never frees memory a write still reads).
    pub async fn write_all(
        &self,
        fd: RawFd,
        src: WriteSource,
        offset: u64,
        sync: SyncMode,
    ) -> WriteOutcome {
        let counters = self.counters.clone();
        self.run(move || {
            let mut plan = Plan::new(offset, sync);
            let error = loop {
                // Chains of one request: a write, or the sync after the last
                // write, so nothing runs after a write that fell short.
                let Some(chain) = plan.next_chain(&src, 1) else {
                    break None;
                };
                let (lens, synced) = chain.shape();
                let res = match (chain.groups.first(), chain.fsync) {
                    (Some(group), _) => {
                        let n = write_group(fd, group);
                        if n > 0 {
                            counters.add_bytes_written(n as u64);
                        }
                        n
                    }
                    (None, Some(datasync)) => sync_fd(fd, datasync),
                    (None, None) => break None,
                };
                drop(chain);
                if let Err(e) = plan.settle(&src, &lens, synced, &[res]) {
                    break Some(e);
                }
            };
            WriteOutcome {
                written: plan.written(),
                error,
                source: src,
            }
        })
        .await
    }
}
