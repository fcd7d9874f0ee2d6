//! IORING_OP_SEND of a byte slice to a socket. The kernel waits for room
//! in a full socket itself (it arms a poll and retries), so the result is a
//! count or a real error; a count may still be short.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue};

use super::driver::fd;

/// The SQE for `send(sock, buf, len, MSG_NOSIGNAL [| MSG_MORE])`. `buf` must
/// stay alive and in place until the CQE.
pub(crate) fn send_sqe(sock: RawFd, buf: *const u8, len: u32, more: bool) -> squeue::Entry {
    let mut flags = libc::MSG_NOSIGNAL;
    if more {
        flags |= libc::MSG_MORE;
    }
    opcode::Send::new(fd(sock), buf, len).flags(flags).build()
}
