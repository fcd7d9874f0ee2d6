//! IORING_OP_READ at an explicit offset, into a pool buffer's spare capacity.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue};

use super::driver::fd;
use super::op::Op;
use super::Driver;
use crate::buffer_pool::PoolBuf;
use crate::errno_result;

/// Reads at least this large are handed to io-wq workers.
const ASYNC_MIN: usize = 512 << 10;

impl Driver {
    /// Reads up to `want` bytes at `offset` (`u64::MAX`: at the current file
    /// position, which the read advances), appending them to `buf` (which
    /// must have that much spare capacity). Returns the count read, 0 at EOF.
    pub async fn read_at(
        &self,
        file: RawFd,
        mut buf: PoolBuf,
        offset: u64,
        want: usize,
    ) -> (io::Result<usize>, PoolBuf) {
        let filled = buf.len();
        let want = want.min(buf.capacity() - filled);
        // SAFETY: filled <= capacity, so the pointer stays inside the block.
        let dst = unsafe { buf.as_mut_ptr().add(filled) };
        // Reads from ASYNC_MIN go to io-wq workers (IOSQE_ASYNC): several
        // large copies then run at once on several cores, where inline they
        // all run on the driver thread, one after another, whose copy rate
        // capped 1 MiB streams (with a 16 MiB window: 1.33-1.41x fs against
        // 1.16x inline). Smaller reads stay inline: for them the io-wq hop
        // costs more than the copy (64 KiB streams halved).
        let mut sqe = opcode::Read::new(fd(file), dst, want as u32)
            .offset(offset)
            .build();
        if want >= ASYNC_MIN {
            sqe = sqe.flags(squeue::Flags::ASYNC);
        }
        let done = Op::submit(&self.shared, sqe, buf).await;
        let mut buf = done.data;
        let res = errno_result(done.result).map(|n| n as usize);
        if let Ok(n) = res {
            // SAFETY: the kernel wrote n <= want bytes right after `filled`.
            unsafe { buf.set_len(filled + n) };
            self.shared.counters.add_bytes(n as u64);
        }
        (res, buf)
    }
}
