//! IORING_OP_STATX by path (`AT_FDCWD`): the path and the statx block are
//! owned by the op until its CQE.

use std::ffi::CString;
use std::io;

use io_uring::{opcode, types};

use super::op::Op;
use super::Driver;
use crate::errno_result;
use crate::vocabulary::{statx_flags, PathStat, STATX_MASK};

/// What the kernel reads (the path) and writes (the statx block). Both live
/// on the heap, so moving this into the op does not move what the SQE names.
struct StatxPath {
    path: CString,
    buf: Box<libc::statx>,
}

impl Driver {
    /// `stat(2)` of `path` (`follow`), else `lstat(2)`.
    pub async fn stat_path(&self, path: CString, follow: bool) -> io::Result<PathStat> {
        let mut res = StatxPath {
            path,
            // SAFETY: statx is plain old data; all-zero is a valid value.
            buf: Box::new(unsafe { std::mem::zeroed::<libc::statx>() }),
        };
        let sqe = opcode::Statx::new(
            types::Fd(libc::AT_FDCWD),
            res.path.as_ptr(),
            (&mut *res.buf as *mut libc::statx).cast::<types::statx>(),
        )
        .flags(statx_flags(follow))
        .mask(STATX_MASK)
        .build();
        let done = Op::submit(&self.shared, sqe, res).await;
        errno_result(done.result)?;
        Ok(PathStat::from_statx(&done.data.buf))
    }
}
