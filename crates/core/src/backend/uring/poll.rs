//! IORING_OP_POLL_ADD, one-shot: completes when the descriptor is ready.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue};

use super::driver::fd;

/// The SQE that completes when `sock` can take more bytes, or has failed
/// or been shut down (the next send then reports why).
pub(crate) fn poll_out_sqe(sock: RawFd) -> squeue::Entry {
    opcode::PollAdd::new(fd(sock), libc::POLLOUT as u32).build()
}
