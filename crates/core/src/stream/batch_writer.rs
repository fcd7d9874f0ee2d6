//! The batch writer: every byte of a [`WriteSource`] written in order at
//! an advancing offset, and a write done only when every completion is in
//! (never a batch that "succeeded" before the kernel wrote anything).
//!
//! On io_uring the parts go out as groups of at most
//! [`IOV_MAX`](crate::IOV_MAX) iovecs, one `IORING_OP_WRITEV` per group,
//! linked with `IOSQE_IO_LINK` (and followed by a linked `IORING_OP_FSYNC`
//! when asked), all pushed at once so that one `io_uring_enter` submits the
//! whole batch. A link makes the kernel run each
//! write only after the previous one wrote everything it was given; a short
//! write ends the chain (the rest complete with ECANCELED, untouched), and
//! the writer resubmits from the first byte not written. The fallback runs
//! the same plan with one `pwritev` at a time.
//!
//! [`WriteOutcome::written`](crate::WriteOutcome::written) is always
//! exactly the length of the prefix of the source that is in the file,
//! which is what `bytesWritten` reports. The plan itself (how the source is
//! cut, how results settle it) is shared with every backend:
//! [`crate::vocabulary`].

use std::os::fd::RawFd;

use crate::engine::Engine;
use crate::vocabulary::{SyncMode, WriteOutcome, CURRENT_POSITION};
use crate::write_source::WriteSource;

/// Writes every byte of `src`, in order, at `offset` ([`CURRENT_POSITION`]:
/// at the descriptor's file position, which it advances, as with
/// `O_APPEND`), then syncs as `sync` says.
///
/// Returns once the kernel is done with every request, with the number of
/// bytes written (the prefix of `src` now in the file) and the error that
/// stopped it, if any. At the current position the descriptor's position
/// ends up after those bytes, as `write(2)` leaves it.
///
/// Dropping the future early is safe: requests still in the kernel keep the
/// source alive and free it when they complete. How much was written is then
/// unknown, and so, at the current position, is where the position is left.
pub async fn write_all(
    engine: &Engine,
    fd: RawFd,
    src: WriteSource,
    offset: u64,
    sync: SyncMode,
) -> WriteOutcome {
    engine.write_all(fd, src, offset, sync).await
}

/// A write of no bytes, as fs makes one for an empty chunk: `pwrite(2)` at
/// `offset`, or `write(2)` at [`CURRENT_POSITION`]. It moves nothing but
/// says what the kernel says of the descriptor (EBADF when it is not open
/// for writing, ESPIPE for an offset on a pipe). Never blocks: no byte is
/// waited for.
pub fn write_nothing(fd: RawFd, offset: u64) -> std::io::Result<()> {
    let buf = [0u8; 1];
    let rc = if offset == CURRENT_POSITION {
        // SAFETY: buf is valid for reads of 0 bytes (and of its one byte).
        unsafe { libc::write(fd, buf.as_ptr().cast(), 0) }
    } else {
        let Ok(at) = libc::off_t::try_from(offset) else {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        };
        // SAFETY: as above; pwrite takes the offset by value.
        unsafe { libc::pwrite(fd, buf.as_ptr().cast(), 0, at) }
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The position of a descriptor that one writer alone uses (a write stream
/// that opened its file): its writes "at the current position" go at
/// offsets tracked here, with no system call per batch to read or move the
/// kernel's position, when the descriptor is a plain file
/// ([`trackable_position`]); anything else is written at the kernel's
/// position. A failed write ends such a stream, so a tracked position that
/// went past what was written is never used again.
#[derive(Debug, Default)]
pub struct OwnPosition {
    /// `None` until the first write; then `Some(None)` when the position
    /// cannot be tracked.
    next: Option<Option<u64>>,
}

impl OwnPosition {
    /// Where a batch of `len` bytes asked at `offset` goes, the position
    /// then moved past it: `offset` itself unless it is
    /// [`CURRENT_POSITION`].
    pub fn place(&mut self, fd: RawFd, offset: u64, len: u64) -> u64 {
        if offset != CURRENT_POSITION {
            return offset;
        }
        match *self.next.get_or_insert_with(|| trackable_position(fd)) {
            Some(pos) => {
                self.next = Some(Some(pos + len));
                pos
            }
            None => CURRENT_POSITION,
        }
    }
}

/// Where writes "at the current position" to `fd` land, for a writer that
/// is the only user of `fd` and so may track the position itself (writing
/// at explicit offsets, with no system call to read or move it per batch):
/// the current position of a regular file or block device opened without
/// `O_APPEND`; `None` for anything else (pipes, sockets, appending files),
/// which must be written at the kernel's position.
pub fn trackable_position(fd: RawFd) -> Option<u64> {
    // SAFETY: all-zero is a valid stat; fstat writes into the local.
    let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
    // SAFETY: st is a valid, writable stat struct.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFBLK {
        return None;
    }
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_APPEND != 0 {
        return None;
    }
    // SAFETY: lseek takes no pointers.
    let pos = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    u64::try_from(pos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;

    #[test]
    fn an_own_position_tracks_plain_files_and_leaves_pipes_to_the_kernel() {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(b"abc").expect("write");
        file.seek(SeekFrom::Start(2)).expect("seek");
        let mut pos = OwnPosition::default();
        let fd = file.as_raw_fd();
        assert_eq!(
            pos.place(fd, CURRENT_POSITION, 10),
            2,
            "from the file's position"
        );
        assert_eq!(pos.place(fd, CURRENT_POSITION, 5), 12);
        assert_eq!(pos.place(fd, 100, 5), 100, "an explicit offset is its own");
        assert_eq!(pos.place(fd, CURRENT_POSITION, 1), 17);

        let mut fds = [0; 2];
        // SAFETY: fds is a writable array of two ints, as pipe(2) wants.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let mut pipe = OwnPosition::default();
        assert_eq!(pipe.place(fds[1], CURRENT_POSITION, 4), CURRENT_POSITION);
        assert_eq!(pipe.place(fds[1], CURRENT_POSITION, 4), CURRENT_POSITION);
        for fd in fds {
            // SAFETY: fd came from pipe(2) above and is closed once.
            unsafe { libc::close(fd) };
        }
    }
}
