//! The part of a file's metadata the engine and its callers use.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    pub mode: u32,
    pub ino: u64,
    pub mtime_ns: i128,
}

impl FileStat {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT as u32 == libc::S_IFDIR as u32
    }

    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT as u32 == libc::S_IFREG as u32
    }

    #[cfg(target_os = "linux")]
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
