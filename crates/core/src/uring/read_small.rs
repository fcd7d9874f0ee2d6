//! A small file read whole in one linked chain: OPENAT into a direct
//! descriptor (a slot of the ring's registered file table, no process fd)
//! -> READ of that slot from offset 0 -> CLOSE of the slot, submitted
//! together, one wake-up when all three are done. `readFiles` of many small
//! files otherwise pays an open, an fstat, a read and a close, each a round
//! trip through the driver.
//!
//! There is no fstat: a read that comes back shorter than its buffer has
//! reached the end of a regular file (io_uring completes buffered reads of
//! regular files in full unless at EOF). A file that fills the buffer, or
//! that cannot be read at an offset (a FIFO: ESPIPE), is left to the
//! general path, which sizes its buffer from fstat.

use std::ffi::CString;

use io_uring::{opcode, squeue, types};

use super::op::Op;
use super::Driver;
use crate::buffer_pool::PoolBuf;
use crate::op_error::{OpError, Syscall};

/// The first (and for most files only) read's size. A file of this size or
/// more takes the general path.
pub(crate) const FIRST_READ: usize = 68 * 1024;

/// What the chain found.
pub enum SmallRead {
    /// The whole file.
    Whole(PoolBuf),
    /// Too large for one read, not readable at an offset, or no free slot:
    /// read it the general way.
    General,
    Failed(OpError),
}

/// What each request of the chain keeps alive until its CQE.
enum Res {
    // Held for the kernel, never read back.
    #[allow(dead_code)]
    Path(CString),
    Buf(PoolBuf),
    Nothing,
}

impl Driver {
    pub(crate) async fn read_small(&self, path: CString, flags: i32) -> SmallRead {
        let Some(slot) = self.shared.take_slot() else {
            return SmallRead::General;
        };
        let Ok(dest) = types::DestinationSlot::try_from_slot_target(slot) else {
            return SmallRead::General;
        };
        let mut buf = PoolBuf::with_capacity(FIRST_READ);
        let dst = buf.as_mut_ptr();
        let open = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            // No O_CLOEXEC: a direct descriptor is never in the fd table
            // (the kernel refuses the flag with EINVAL).
            .flags(flags & !libc::O_CLOEXEC)
            .file_index(Some(dest))
            .build()
            .flags(squeue::Flags::IO_LINK);
        let read = opcode::Read::new(types::Fixed(slot), dst, FIRST_READ as u32)
            .offset(0)
            .build()
            // Hard: the close runs even when the read fails or is short.
            .flags(squeue::Flags::IO_HARDLINK);
        let close = opcode::Close::new(types::Fixed(slot)).build();
        let ops = Op::submit_batch(
            &self.shared,
            vec![
                (open, Res::Path(path)),
                (read, Res::Buf(buf)),
                (close, Res::Nothing),
            ],
        );
        let mut results = [0i32; 3];
        let mut buf = None;
        for (i, op) in ops.into_iter().enumerate() {
            let done = op.await;
            results[i] = done.result;
            if let Res::Buf(b) = done.data {
                buf = Some(b);
            }
        }
        let [opened, read, closed] = results;
        // The slot is empty again unless a file opened into it and its close
        // failed; such a slot is not reused.
        if opened < 0 || closed >= 0 {
            self.shared.give_slot(slot);
        }
        if opened < 0 {
            return SmallRead::Failed(OpError {
                syscall: Syscall::Open,
                error: std::io::Error::from_raw_os_error(-opened),
            });
        }
        match read {
            n if n >= 0 && (n as usize) < FIRST_READ => {
                let Some(mut buf) = buf else {
                    return SmallRead::General;
                };
                // SAFETY: the kernel wrote n bytes at the start of the block.
                unsafe { buf.set_len(n as usize) };
                self.shared.counters.add_bytes(n as u64);
                SmallRead::Whole(right_sized(buf))
            }
            n if n >= 0 => SmallRead::General,
            e if e == -libc::ESPIPE || e == -libc::ECANCELED => SmallRead::General,
            e => SmallRead::Failed(OpError {
                syscall: Syscall::Read,
                error: std::io::Error::from_raw_os_error(-e),
            }),
        }
    }
}

/// A buffer no larger than twice its content: small files are copied out
/// of the first-read block (which goes back to the pool), so 10,000 files
/// of 4 KiB do not hold 10,000 blocks of 68 KiB.
fn right_sized(buf: PoolBuf) -> PoolBuf {
    if buf.len() * 2 >= buf.capacity() {
        return buf;
    }
    let mut out = PoolBuf::with_capacity(buf.len().max(1));
    // SAFETY: `out` has room for `buf.len()` bytes and does not overlap it.
    unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), out.as_mut_ptr(), buf.len()) };
    // SAFETY: those bytes were just written.
    unsafe { out.set_len(buf.len()) };
    out
}
