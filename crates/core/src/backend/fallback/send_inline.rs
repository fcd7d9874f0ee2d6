//! The start of a response body sent inline, on the caller's own thread,
//! when that cannot wait for a disk: the file range is entirely in the page
//! cache (`cachestat(2)`, Linux 6.5+) and the socket is non-blocking. Then
//! `send(2)` of the head and `sendfile(2)` of the body cost a few
//! microseconds, no more than Node's own writes of a response, and a small
//! file's whole response leaves without a single thread hand-off. What the
//! socket does not take at once (or anything beyond `budget`) is left for
//! [`crate::vocabulary::send_body`], which waits for room asynchronously.
//!
//! Works on the caller's descriptor directly: the caller is the socket's
//! owner and nothing else runs on its thread meanwhile.

use std::io;
use std::os::fd::RawFd;

use crate::op_error::Syscall;
use crate::vocabulary::send_body::SendOutcome;

/// Sends what it can of `head` then `len` bytes of `file` from `offset`
/// (at most `budget` of them) without blocking. Sends nothing when the
/// range is not all cached or the system cannot tell. `error` set: the
/// connection (or the file) failed.
pub fn send_inline(
    sock: RawFd,
    head: &[u8],
    file: RawFd,
    offset: u64,
    len: u64,
    budget: u64,
) -> SendOutcome {
    let mut out = SendOutcome::default();
    imp::send_inline(&mut out, sock, head, file, offset, len, budget);
    out
}

/// Sends what it can of `head` then `body` (bytes in memory: a small file
/// the open-file cache keeps) to the non-blocking socket `sock`, in one
/// `sendmsg(2)` when it takes them at once. What the socket does not take
/// is left to the caller (Node's own write of the rest). `error` set: the
/// connection failed.
pub fn send_bytes_inline(sock: RawFd, head: &[u8], body: &[u8]) -> SendOutcome {
    let mut out = SendOutcome::default();
    while out.head_sent < head.len() || (out.body_sent as usize) < body.len() {
        let h = &head[out.head_sent..];
        let b = &body[out.body_sent as usize..];
        let iov = [
            libc::iovec {
                iov_base: h.as_ptr() as *mut libc::c_void,
                iov_len: h.len(),
            },
            libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            },
        ];
        // SAFETY: all-zero is a valid msghdr; the fields set point at `iov`,
        // which lives across the call.
        let mut msg = unsafe { std::mem::zeroed::<libc::msghdr>() };
        let first = usize::from(h.is_empty());
        msg.msg_iov = iov[first..].as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = (iov.len() - first) as _;
        // SAFETY: `msg` and the buffers its iovecs name are valid for reads
        // for the duration of the call.
        let n = unsafe { libc::sendmsg(sock, &msg, send_flags()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return out,
                _ => {
                    out.fail(Syscall::Write, e);
                    return out;
                }
            }
        }
        let mut n = n as usize;
        let took = n.min(h.len());
        out.head_sent += took;
        n -= took;
        out.body_sent += n as u64;
    }
    out
}

/// Never blocks; a peer that went away is an error, not SIGPIPE.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_flags() -> libc::c_int {
    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_flags() -> libc::c_int {
    libc::MSG_DONTWAIT
}

#[cfg(target_os = "linux")]
pub(crate) mod imp {
    use super::*;
    pub(crate) use crate::backend::fallback::sendfile_body::sendfile_once;
    use crate::vocabulary::send_body::file_ended_early;

    /// `cachestat(2)`'s number: the same on every Linux architecture (it is
    /// past the point where their tables were unified); libc lacks it.
    const SYS_CACHESTAT: libc::c_long = 451;

    #[repr(C)]
    struct CachestatRange {
        off: u64,
        len: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    struct Cachestat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }

    /// Every page of `[offset, offset + len)` is in the page cache.
    pub(crate) fn cached(file: RawFd, offset: u64, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        // SAFETY: sysconf takes no pointers.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        let pages = (offset + len - 1) / page - offset / page + 1;
        let range = CachestatRange { off: offset, len };
        let mut cs = Cachestat::default();
        // SAFETY: both structs are valid for the kernel's reads and writes
        // for the duration of the call; flags must be 0.
        let r = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                file,
                &range as *const CachestatRange,
                &mut cs as *mut Cachestat,
                0,
            )
        };
        r == 0 && cs.nr_cache >= pages
    }

    fn would_block(e: &io::Error) -> bool {
        matches!(e.kind(), io::ErrorKind::WouldBlock)
    }

    pub(super) fn send_inline(
        out: &mut SendOutcome,
        sock: RawFd,
        head: &[u8],
        file: RawFd,
        offset: u64,
        len: u64,
        budget: u64,
    ) {
        let body = len.min(budget);
        if !cached(file, offset, body) {
            return;
        }
        while out.head_sent < head.len() {
            let rest = &head[out.head_sent..];
            let mut flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
            if len > 0 {
                flags |= libc::MSG_MORE;
            }
            // SAFETY: `rest` is valid for reads of its length for the call.
            let n = unsafe { libc::send(sock, rest.as_ptr().cast(), rest.len(), flags) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    _ if would_block(&e) => return,
                    _ => return out.fail(Syscall::Write, e),
                }
            }
            out.head_sent += n as usize;
        }
        while out.body_sent < body {
            match sendfile_once(sock, file, offset + out.body_sent, body - out.body_sent) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(0) => return out.fail(Syscall::Read, file_ended_early()),
                Ok(n) => out.body_sent += n,
                Err(e) if would_block(&e) => return,
                // The file side cannot fail on cached pages except by
                // shrinking; what is left is the socket's.
                Err(e) => return out.fail(Syscall::Write, e),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    /// No way to know here that a read will not wait: leave it all to the
    /// async path.
    pub(super) fn send_inline(
        _: &mut SendOutcome,
        _: RawFd,
        _: &[u8],
        _: RawFd,
        _: u64,
        _: u64,
        _: u64,
    ) {
    }
}
