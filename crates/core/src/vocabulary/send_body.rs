//! The body of an HTTP response: bytes of an open file sent to a connected
//! stream socket without passing through user memory. On io_uring the file
//! is spliced into a pipe and the pipe into the socket
//! (`uring::splice_body`); on the fallback (and on kernels without SPLICE)
//! `sendfile(2)` does the same on the blocking pool ([`crate::backend::fallback::sendfile_body`]).
//!
//! The socket belongs to Node, which keeps using it (reading the next
//! request) and may close it at any time (a client that went away, a
//! timeout). So a transfer never uses Node's descriptor number: it works on
//! its own duplicate ([`SocketHandle`]), which no close by Node can turn
//! into someone else's file while a request is in the kernel. Node stops a
//! transfer by [`SocketHandle::abort`], which shuts the connection down;
//! every pending operation on it then fails promptly and the transfer ends.
//!
//! A client that stops reading would keep a transfer waiting for room, and
//! with it the duplicate, the file and (on io_uring) a pipe: descriptors a
//! server runs out of long before sockets. With `stall_after`, a transfer
//! that waited that long for room with nothing of its own in flight ends
//! instead, `stalled`, holding nothing; the caller waits for room its own
//! way (Node: its own write of the next bytes) and starts another for the
//! rest.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::op_error::{OpError, Syscall};

/// This engine's duplicate of a caller's socket descriptor.
pub struct SocketHandle {
    /// `None` once the transfer has closed it.
    fd: Mutex<Option<OwnedFd>>,
}

impl SocketHandle {
    /// Duplicates `fd`, which must be a connected stream socket (TCP or a
    /// Unix stream socket); EINVAL for any other socket, ENOTSOCK for a
    /// descriptor that is not one.
    pub fn dup(fd: RawFd) -> io::Result<Arc<SocketHandle>> {
        let mut kind: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `kind` and `len` are valid for writes of the sizes given.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&mut kind as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if kind != libc::SOCK_STREAM {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes no pointers.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` is a fresh descriptor that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(dup) };
        Ok(Arc::new(SocketHandle {
            fd: Mutex::new(Some(owned)),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Option<OwnedFd>> {
        self.fd.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the transfer early: shuts the connection down in both
    /// directions, which fails the operations in flight on it. For a socket
    /// its owner has closed or is closing; a no-op once the transfer ended.
    pub fn abort(&self) {
        if let Some(fd) = self.lock().as_ref() {
            // SAFETY: shutdown takes no pointers; the descriptor is ours and
            // open (the lock keeps `close` from running meanwhile).
            unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }

    /// The descriptor number, valid until [`SocketHandle::close`]: only the
    /// transfer closes it, after its last operation.
    pub(crate) fn raw(&self) -> Option<RawFd> {
        self.lock().as_ref().map(AsRawFd::as_raw_fd)
    }

    pub(crate) fn close(&self) {
        drop(self.lock().take());
    }
}

/// What to send: `head` (the response head, possibly empty), then `len`
/// bytes of `file` from `offset`.
pub struct BodyRequest {
    pub head: Vec<u8>,
    pub file: OwnedFd,
    pub offset: u64,
    pub len: u64,
    /// Stop, `stalled`, after waiting this long for room in the socket
    /// (once the head is out); `None`: wait as long as it takes.
    pub stall_after: Option<Duration>,
}

/// How far a transfer got.
#[derive(Debug, Default)]
pub struct SendOutcome {
    /// Bytes of the head that reached the socket.
    pub head_sent: usize,
    /// Bytes of the file that reached the socket.
    pub body_sent: u64,
    /// Why it stopped early: `write` for the socket (EPIPE, ECONNRESET...),
    /// `read` for the file (EIO; also when the file ended before `len`).
    pub error: Option<OpError>,
    /// It stopped without an error after waiting `stall_after` for room:
    /// the head is out, the body up to `body_sent`, and nothing is held.
    pub stalled: bool,
}

impl SendOutcome {
    pub(crate) fn fail(&mut self, syscall: Syscall, error: io::Error) {
        self.error.get_or_insert(OpError { syscall, error });
    }
}

/// The error for a file that ended before the promised length (it shrank
/// after its size was read): the response cannot be completed.
pub(crate) fn file_ended_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file ended before the length announced",
    )
}
