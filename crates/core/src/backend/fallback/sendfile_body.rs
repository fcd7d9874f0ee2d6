//! [`crate::vocabulary::send_body`] with `sendfile(2)`: the fallback backend's way, and
//! io_uring's on kernels without SPLICE. The head goes out with `send(2)`
//! from the runtime thread (a non-blocking socket never blocks it); each
//! `sendfile` call runs on the blocking pool, as it may have to read the
//! file from disk; waiting for room in the socket is async (the socket's
//! own duplicate registered with tokio, distinct from Node's registration).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::op_error::Syscall;
use crate::stats::Counters;
use crate::vocabulary::send_body::{file_ended_early, SendOutcome, SocketHandle};

/// One call moves at most this much (a socket takes far less at a time).
const MAX_CALL: u64 = 1 << 30;

/// A descriptor number for `AsyncFd`, which must not close it: the
/// `SocketHandle` owns it and outlives the registration.
struct Registered(RawFd);

impl AsRawFd for Registered {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

#[cfg(target_os = "linux")]
const HEAD_FLAGS: libc::c_int = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT | libc::MSG_MORE;
// Elsewhere SIGPIPE is ignored by Node itself; MSG_MORE does not exist.
#[cfg(not(target_os = "linux"))]
const HEAD_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

/// One `sendfile` of up to `count` bytes at `offset`: bytes sent or the
/// error (EAGAIN from a full non-blocking socket, EINTR: the caller decides).
#[cfg(target_os = "linux")]
pub(crate) fn sendfile_once(sock: RawFd, file: RawFd, offset: u64, count: u64) -> io::Result<u64> {
    let mut off = offset as libc::off_t;
    // SAFETY: `off` is a valid, writable off_t; sendfile reads the file and
    // writes the socket, both descriptors held open by the caller's Arcs.
    let n = unsafe { libc::sendfile(sock, file, &mut off, count as usize) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as u64)
    }
}

#[cfg(target_vendor = "apple")]
pub(crate) fn sendfile_once(sock: RawFd, file: RawFd, offset: u64, count: u64) -> io::Result<u64> {
    let mut len = count as libc::off_t;
    // SAFETY: `len` is a valid, writable off_t; no header/trailer vectors.
    let r = unsafe {
        libc::sendfile(
            file,
            sock,
            offset as libc::off_t,
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    // On EAGAIN/EINTR, macOS still reports the bytes it sent in `len`.
    if r == 0 || len > 0 {
        Ok(len as u64)
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
pub(crate) fn sendfile_once(_: RawFd, _: RawFd, _: u64, _: u64) -> io::Result<u64> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Waits until the socket may take more bytes.
async fn writable(afd: &AsyncFd<Registered>) -> io::Result<()> {
    afd.writable().await?.clear_ready();
    Ok(())
}

/// As [`writable`], giving up after `stall_after`: `Ok(false)`.
async fn room(afd: &AsyncFd<Registered>, stall_after: Option<Duration>) -> io::Result<bool> {
    match stall_after {
        None => writable(afd).await.map(|()| true),
        Some(d) => match tokio::time::timeout(d, writable(afd)).await {
            Ok(r) => r.map(|()| true),
            Err(_) => Ok(false),
        },
    }
}

pub(crate) async fn send_body(
    socket: &Arc<SocketHandle>,
    head: &[u8],
    file: &Arc<OwnedFd>,
    offset: u64,
    len: u64,
    stall_after: Option<Duration>,
    counters: &Counters,
) -> SendOutcome {
    let mut out = SendOutcome::default();
    let Some(sock) = socket.raw() else {
        out.fail(Syscall::Write, io::Error::from_raw_os_error(libc::EBADF));
        return out;
    };
    // SAFETY: `sock` is the SocketHandle's descriptor, which stays open
    // (only `SocketHandle::close`, after this function, closes it) for the
    // whole life of `afd`, a local of this function.
    let afd = match unsafe { AsyncFd::register_with_interest(Registered(sock), Interest::WRITABLE) }
    {
        Ok(afd) => afd,
        Err(e) => {
            out.fail(Syscall::Write, e.into());
            return out;
        }
    };
    while out.head_sent < head.len() {
        let rest = &head[out.head_sent..];
        let flags = if len > 0 {
            HEAD_FLAGS
        } else {
            HEAD_FLAGS & !more()
        };
        // SAFETY: `rest` is valid for reads of its length for the call.
        let n = unsafe { libc::send(sock, rest.as_ptr().cast(), rest.len(), flags) };
        if n >= 0 {
            out.head_sent += n as usize;
            continue;
        }
        let e = io::Error::last_os_error();
        let waited = match e.kind() {
            io::ErrorKind::WouldBlock => writable(&afd).await,
            io::ErrorKind::Interrupted => Ok(()),
            _ => Err(e),
        };
        if let Err(e) = waited {
            out.fail(Syscall::Write, e);
            return out;
        }
    }
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let count = (end - at).min(MAX_CALL);
        // The job holds the socket and the file open, so neither number can
        // be reused by another open while it runs, even if this future is
        // dropped before the job ends.
        let (s, f) = (socket.clone(), file.clone());
        counters.add_op();
        let job = tokio::task::spawn_blocking(move || {
            let r = sendfile_once(sock, f.as_raw_fd(), at, count);
            drop(s);
            r
        });
        let res = match job.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e.to_string())),
        };
        counters.add_completions(1);
        match res {
            Ok(0) => {
                out.fail(Syscall::Read, file_ended_early());
                break;
            }
            Ok(n) => {
                at += n;
                out.body_sent += n;
            }
            Err(e) => {
                let waited = match e.kind() {
                    io::ErrorKind::WouldBlock => match room(&afd, stall_after).await {
                        Ok(true) => Ok(()),
                        Ok(false) => {
                            // The job that got EAGAIN has returned: nothing
                            // of this transfer is in flight.
                            out.stalled = true;
                            break;
                        }
                        Err(e) => Err(e),
                    },
                    io::ErrorKind::Interrupted => Ok(()),
                    _ => Err(e),
                };
                if let Err(e) = waited {
                    // sendfile reports the socket's errors and the file's
                    // alike; EPIPE and the connection errors are the socket.
                    out.fail(syscall_of(&e), e);
                    break;
                }
            }
        }
    }
    out
}

#[cfg(target_os = "linux")]
fn more() -> libc::c_int {
    libc::MSG_MORE
}

#[cfg(not(target_os = "linux"))]
fn more() -> libc::c_int {
    0
}

/// Which side a `sendfile` error came from.
fn syscall_of(e: &io::Error) -> Syscall {
    match e.raw_os_error() {
        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::ETIMEDOUT) => Syscall::Write,
        _ => Syscall::Read,
    }
}
