//! IORING_OP_SPLICE between a file (at an offset) or a pipe and a pipe or a
//! socket. io_uring always runs it in a worker; with SPLICE_F_NONBLOCK and
//! non-blocking descriptors it never waits there, and a full socket comes
//! back as EAGAIN (the opcode is not retried on readiness by the kernel).

use std::os::fd::RawFd;

use io_uring::{opcode, squeue};

use super::driver::fd;

/// Offset for the pipe side of a splice.
pub(crate) const NO_OFFSET: i64 = -1;

/// The SQE for `splice(from @ from_off, to @ to_off, len)`.
pub(crate) fn splice_sqe(
    from: RawFd,
    from_off: i64,
    to: RawFd,
    to_off: i64,
    len: u32,
    more: bool,
) -> squeue::Entry {
    let mut flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    if more {
        flags |= libc::SPLICE_F_MORE;
    }
    opcode::Splice::new(fd(from), from_off, fd(to), to_off, len)
        .flags(flags)
        .build()
}
