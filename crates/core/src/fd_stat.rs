//! A descriptor's metadata (`fstat(2)`), the part the engine and its callers
//! use, and whether it can be read at an offset. Paths are stat'ed in batches
//! by [`crate::batch::stat_files`].

use std::os::fd::RawFd;

/// Whether `fd` can be read at an offset, as `pread(2)` reads: false for
/// pipes, FIFOs, sockets and terminals, where `lseek(2)` fails with ESPIPE
/// (io_uring reads those whatever the offset it is given). Any other
/// failure (EBADF: not open, or an O_PATH descriptor) is left for the read
/// to report, as pread would.
pub fn seekable(fd: RawFd) -> bool {
    // SAFETY: lseek takes no pointers; on a descriptor that is not open it
    // fails with EBADF.
    let at = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    at >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESPIPE)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    pub mode: u32,
    pub ino: u64,
    pub mtime_ns: i128,
}

impl FileStat {
    // mode_t is u32 on Linux and u16 elsewhere: the conversion is needed
    // off Linux, so clippy's same-type lint does not apply.
    #[allow(clippy::useless_conversion)]
    pub fn is_dir(&self) -> bool {
        self.mode & u32::from(libc::S_IFMT) == u32::from(libc::S_IFDIR)
    }

    #[allow(clippy::useless_conversion)]
    pub fn is_regular(&self) -> bool {
        self.mode & u32::from(libc::S_IFMT) == u32::from(libc::S_IFREG)
    }

    /// Regular files and block devices take positional reads; FIFOs,
    /// sockets and character devices do not.
    #[allow(clippy::useless_conversion)]
    pub fn has_offsets(&self) -> bool {
        let kind = self.mode & u32::from(libc::S_IFMT);
        kind == u32::from(libc::S_IFREG) || kind == u32::from(libc::S_IFBLK)
    }

    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn from_statx(s: &libc::statx) -> FileStat {
        FileStat {
            size: s.stx_size,
            mode: s.stx_mode as u32,
            ino: s.stx_ino,
            mtime_ns: s.stx_mtime.tv_sec as i128 * 1_000_000_000 + s.stx_mtime.tv_nsec as i128,
        }
    }

    #[allow(clippy::unnecessary_cast)] // field types differ between targets
    pub(crate) fn from_stat(s: &libc::stat) -> FileStat {
        FileStat {
            size: s.st_size as u64,
            mode: s.st_mode as u32,
            ino: s.st_ino as u64,
            mtime_ns: s.st_mtime as i128 * 1_000_000_000 + s.st_mtime_nsec as i128,
        }
    }
}

/// `fstat(2)` of `fd`, now, on the calling thread: a few hundred
/// nanoseconds, the inode's attributes as the kernel has them (no data is
/// read). For a decision that must not wait for another thread.
pub fn fstat_now(fd: RawFd) -> std::io::Result<FileStat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a writable stat buffer of the right size for fstat,
    // which fills it on success (checked before it is read).
    let rc = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it initialised the whole buffer.
    Ok(FileStat::from_stat(unsafe { &st.assume_init() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn only_espipe_makes_a_descriptor_unseekable() {
        let mut fds = [0; 2];
        // SAFETY: fds is a writable array of two ints, as pipe(2) wants.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert!(!seekable(fds[0]), "a pipe has no offsets");
        let file = std::fs::File::open("/proc/self/exe").expect("open");
        assert!(seekable(file.as_raw_fd()));
        // Not open at all: the read that follows says EBADF, as pread would.
        assert!(seekable(fds[1] + 1000));
        for fd in fds {
            // SAFETY: fd came from pipe(2) above and is closed once.
            unsafe { libc::close(fd) };
        }
    }
}
