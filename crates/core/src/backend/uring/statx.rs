//! IORING_OP_STATX on an open descriptor (`AT_EMPTY_PATH`).

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types};

use super::driver::fd;
use super::op::Op;
use super::Driver;
use crate::errno_result;
use crate::fd_stat::FileStat;

/// What the kernel writes into: owned by the op until the CQE.
struct StatxBuf(Box<libc::statx>);

impl Driver {
    pub async fn fstat(&self, file: RawFd) -> io::Result<FileStat> {
        // SAFETY: statx is plain old data; all-zero is a valid value.
        let mut buf = StatxBuf(Box::new(unsafe { std::mem::zeroed::<libc::statx>() }));
        let path: &'static [u8] = b"\0";
        let sqe = opcode::Statx::new(
            fd(file),
            path.as_ptr().cast(),
            (&mut *buf.0 as *mut libc::statx).cast::<types::statx>(),
        )
        .flags(libc::AT_EMPTY_PATH)
        .mask(libc::STATX_BASIC_STATS)
        .build();
        let done = Op::submit(&self.shared, sqe, buf).await;
        errno_result(done.result)?;
        Ok(FileStat::from_statx(&done.data.0))
    }
}
