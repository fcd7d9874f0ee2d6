//! IORING_OP_CLOSE.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types};

use super::op::Op;
use super::Driver;
use crate::errno_result;

impl Driver {
    pub async fn close(&self, file: RawFd) -> io::Result<()> {
        let sqe = opcode::Close::new(types::Fd(file)).build();
        errno_result(Op::submit(&self.shared, sqe, ()).await.result).map(|_| ())
    }
}
