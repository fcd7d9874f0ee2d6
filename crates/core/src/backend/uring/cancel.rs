//! IORING_OP_ASYNC_CANCEL for every request on one descriptor.

use std::os::fd::RawFd;

use io_uring::{opcode, types};

use super::op::Op;
use super::Driver;

impl Driver {
    /// Asks the kernel to cancel all requests on `file` and waits for the
    /// answer (not for the cancelled requests: their own futures see those).
    /// Returns how many were found, or `-errno` (ENOENT: none in flight).
    pub async fn cancel_fd(&self, file: RawFd) -> i32 {
        let sqe =
            opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(file)).all()).build();
        Op::submit(&self.shared, sqe, ()).await.result
    }
}
