//! IORING_OP_FSYNC, whole file, full or data-only.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::driver::fd;
use super::op::Op;
use super::Driver;
use crate::errno_result;

/// The SQE for `fsync(2)` (`datasync`: `fdatasync(2)`) of all of `file`.
pub(crate) fn fsync_sqe(file: RawFd, datasync: bool) -> squeue::Entry {
    let flags = if datasync {
        types::FsyncFlags::DATASYNC
    } else {
        types::FsyncFlags::empty()
    };
    opcode::Fsync::new(fd(file)).flags(flags).build()
}

impl Driver {
    pub async fn fsync(&self, file: RawFd, datasync: bool) -> io::Result<()> {
        let done = Op::submit(&self.shared, fsync_sqe(file, datasync), ()).await;
        errno_result(done.result).map(|_| ())
    }
}
