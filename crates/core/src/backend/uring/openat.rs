//! IORING_OP_OPENAT. The path `CString` is owned by the op until its CQE.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types};

use super::op::Op;
use super::Driver;
use crate::errno_result;

impl Driver {
    pub async fn openat(&self, path: CString, flags: i32, mode: u32) -> io::Result<RawFd> {
        let sqe = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            .flags(flags | libc::O_CLOEXEC)
            .mode(mode)
            .build();
        let done = Op::submit(&self.shared, sqe, path).closes_result_fd().await;
        errno_result(done.result)
    }
}
