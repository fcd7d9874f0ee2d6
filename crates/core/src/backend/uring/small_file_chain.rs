//! A small file read whole with a STATX of its path, then one linked
//! chain: OPENAT into a direct descriptor (a slot of the ring's registered
//! file table, no process fd) -> READ of that slot from offset 0 -> CLOSE
//! of the slot, submitted together, one wake-up when all three are done.
//! `readFiles` of a few small files otherwise pays an open, an fstat, a read
//! and a close, each a round trip through the driver.
//!
//! Why the stat, and what the results mean, is [`crate::vocabulary::small_file`]'s,
//! shared with the lanes of [`crate::batch::read_lanes`] and the JavaScript
//! thread's ring.

use std::ffi::{CStr, CString};

use io_uring::{opcode, squeue, types};

use super::op::Op;
use super::Driver;
use crate::buffer_pool::PoolBuf;
use crate::op_error::OpError;
use crate::stats::Counters;
use crate::vocabulary::small_file::{chainable, read_len, FIRST_READ};

/// What a small read found.
pub enum SmallRead {
    /// The whole file.
    Whole(PoolBuf),
    /// Not a small regular file, its stat failed, or no free slot:
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
        // The stat first: see crate::vocabulary::small_file for why.
        let follow = flags & libc::O_NOFOLLOW == 0;
        let size = match self.stat_path(path.clone(), follow).await {
            Ok(st) if chainable(st.mode, st.size) => st.size,
            _ => return SmallRead::General,
        };
        let Some(slot) = self.shared.take_slot() else {
            return SmallRead::General;
        };
        let mut buf = PoolBuf::with_capacity(FIRST_READ);
        // The ops own the path and the block until their CQEs (the user
        // data set here is replaced by the ops' own).
        let Some([open, read, close]) =
            whole_file_chain(&path, flags, slot, buf.as_mut_ptr(), FIRST_READ as u32, 0)
        else {
            self.shared.give_slot(slot);
            return SmallRead::General;
        };
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
        outcome(opened, read, size, buf, &self.shared.counters)
    }
}

/// [`read_len`] for a read into `buf`, which then holds the contents.
fn outcome(
    opened: i32,
    read: i32,
    size: u64,
    buf: Option<PoolBuf>,
    counters: &Counters,
) -> SmallRead {
    match read_len(opened, read, size) {
        Ok(Some(n)) => {
            let Some(mut buf) = buf else {
                return SmallRead::General;
            };
            // SAFETY: the read wrote n bytes at the start of the block.
            unsafe { buf.set_len(n) };
            counters.add_bytes(n as u64);
            SmallRead::Whole(buf.right_sized())
        }
        Ok(None) => SmallRead::General,
        Err(e) => SmallRead::Failed(e),
    }
}

/// The linked requests that read a file whole: OPENAT of `path` (opened
/// with `flags`) into direct-descriptor `slot` -> READ of `len` bytes from
/// offset 0 into `dst` -> CLOSE of the slot (hard-linked: it runs even when
/// the read fails or is short), with user data `key`, `key | 1`, `key | 2`.
/// `None` if `slot` is out of range. Whoever submits them keeps the path,
/// `dst` and the slot for the kernel until the last CQE.
pub(crate) fn whole_file_chain(
    path: &CStr,
    flags: i32,
    slot: u32,
    dst: *mut u8,
    len: u32,
    key: u64,
) -> Option<[squeue::Entry; 3]> {
    let dest = types::DestinationSlot::try_from_slot_target(slot).ok()?;
    let open = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
        // No O_CLOEXEC: a direct descriptor is never in the fd table (the
        // kernel refuses the flag with EINVAL).
        .flags(flags & !libc::O_CLOEXEC)
        // As fs creates files (a flag with O_CREAT): 0o666 less the umask.
        .mode(0o666)
        .file_index(Some(dest))
        .build()
        .flags(squeue::Flags::IO_LINK)
        .user_data(key);
    let read = opcode::Read::new(types::Fixed(slot), dst, len)
        .offset(0)
        .build()
        .flags(squeue::Flags::IO_HARDLINK)
        .user_data(key | 1);
    let close = opcode::Close::new(types::Fixed(slot))
        .build()
        .user_data(key | 2);
    Some([open, read, close])
}
