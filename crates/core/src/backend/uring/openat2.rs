//! IORING_OP_OPENAT2 confined beneath a directory: see
//! [`crate::backend::fallback::beneath`]. The path and the `open_how` block are owned by the
//! op until its CQE.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types};

use super::op::Op;
use super::Driver;
use crate::errno_result;

impl Driver {
    pub async fn open_beneath(&self, dir: RawFd, path: CString, flags: i32) -> io::Result<RawFd> {
        let how = Box::new(
            types::OpenHow::new()
                .flags((flags | libc::O_CLOEXEC) as u64)
                .resolve(crate::backend::fallback::beneath::RESOLVE),
        );
        let sqe = opcode::OpenAt2::new(types::Fd(dir), path.as_ptr(), &*how).build();
        let done = Op::submit(&self.shared, sqe, (path, how))
            .closes_result_fd()
            .await;
        errno_result(done.result)
    }
}
