//! A path's metadata as Node's `fs.Stats` has it, from `statx(2)` or
//! `stat(2)`: what both backends' stats produce.

/// A point in time as the kernel gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

/// A path's metadata: the fields of Node's `fs.Stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathStat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    /// Creation time; zero where the filesystem does not record it (what
    /// libuv reports too), the change time where statx is unavailable.
    pub birthtime: Timespec,
}

/// The statx mask libuv asks for.
#[cfg(target_os = "linux")]
pub(crate) const STATX_MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

/// `AT_SYMLINK_NOFOLLOW` for lstat, 0 (follow) for stat.
#[cfg(target_os = "linux")]
pub(crate) fn statx_flags(follow: bool) -> i32 {
    if follow {
        0
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    }
}

#[cfg(target_os = "linux")]
fn ts(t: &libc::statx_timestamp) -> Timespec {
    Timespec {
        sec: t.tv_sec,
        nsec: t.tv_nsec,
    }
}

impl PathStat {
    #[cfg(target_os = "linux")]
    pub(crate) fn from_statx(s: &libc::statx) -> PathStat {
        PathStat {
            dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor),
            ino: s.stx_ino,
            mode: u32::from(s.stx_mode),
            nlink: u64::from(s.stx_nlink),
            uid: s.stx_uid,
            gid: s.stx_gid,
            rdev: libc::makedev(s.stx_rdev_major, s.stx_rdev_minor),
            size: s.stx_size,
            blksize: u64::from(s.stx_blksize),
            blocks: s.stx_blocks,
            atime: ts(&s.stx_atime),
            mtime: ts(&s.stx_mtime),
            ctime: ts(&s.stx_ctime),
            // Copied whatever the returned mask says, as libuv does: the
            // kernel reports zero when the filesystem has no birth time.
            birthtime: ts(&s.stx_btime),
        }
    }

    /// From `stat(2)`, where statx is unavailable (or not Linux).
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)] // field types differ between targets
    pub(crate) fn from_stat(s: &libc::stat) -> PathStat {
        let at = |sec: libc::time_t, nsec: libc::c_long| Timespec {
            sec: sec as i64,
            nsec: nsec as u32,
        };
        let ctime = at(s.st_ctime, s.st_ctime_nsec);
        #[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
        let birthtime = at(s.st_birthtime, s.st_birthtime_nsec);
        // libuv's choice where no birth time exists.
        #[cfg(not(any(target_vendor = "apple", target_os = "freebsd")))]
        let birthtime = ctime;
        PathStat {
            dev: s.st_dev as u64,
            ino: s.st_ino as u64,
            mode: u32::from(s.st_mode),
            nlink: s.st_nlink as u64,
            uid: s.st_uid,
            gid: s.st_gid,
            rdev: s.st_rdev as u64,
            size: s.st_size as u64,
            blksize: s.st_blksize as u64,
            blocks: s.st_blocks as u64,
            atime: at(s.st_atime, s.st_atime_nsec),
            mtime: at(s.st_mtime, s.st_mtime_nsec),
            ctime,
            birthtime,
        }
    }

    #[allow(clippy::useless_conversion)] // mode_t is u16 off Linux
    fn kind(&self) -> u32 {
        self.mode & u32::from(libc::S_IFMT)
    }

    #[allow(clippy::useless_conversion)]
    pub fn is_file(&self) -> bool {
        self.kind() == u32::from(libc::S_IFREG)
    }

    #[allow(clippy::useless_conversion)]
    pub fn is_dir(&self) -> bool {
        self.kind() == u32::from(libc::S_IFDIR)
    }

    #[allow(clippy::useless_conversion)]
    pub fn is_symlink(&self) -> bool {
        self.kind() == u32::from(libc::S_IFLNK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::io;
    use std::os::unix::fs::MetadataExt;

    /// The stat(2) path (kernels without statx): the same fields as std's,
    /// birth time the change time, as libuv gives it there.
    #[test]
    fn from_stat_matches_std() {
        for (path, follow) in [(".", true), ("/dev/null", true), ("/proc/self", false)] {
            let c = CString::new(path).expect("no NUL");
            // SAFETY: stat is plain old data; all-zero is a valid value.
            let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
            // SAFETY: c is NUL-terminated and st a writable stat struct.
            let r = unsafe {
                if follow {
                    libc::stat(c.as_ptr(), &mut st)
                } else {
                    libc::lstat(c.as_ptr(), &mut st)
                }
            };
            assert_eq!(r, 0, "{path}: {}", io::Error::last_os_error());
            let s = PathStat::from_stat(&st);
            let m = if follow {
                std::fs::metadata(path)
            } else {
                std::fs::symlink_metadata(path)
            }
            .expect("metadata");
            let t = |sec: i64, nsec: i64| Timespec {
                sec,
                nsec: nsec as u32,
            };
            assert_eq!(
                (s.dev, s.ino, s.mode, s.nlink, s.uid, s.gid, s.rdev),
                (
                    m.dev(),
                    m.ino(),
                    m.mode(),
                    m.nlink(),
                    m.uid(),
                    m.gid(),
                    m.rdev()
                )
            );
            assert_eq!(
                (s.size, s.blksize, s.blocks),
                (m.size(), m.blksize(), m.blocks())
            );
            assert_eq!(s.mtime, t(m.mtime(), m.mtime_nsec()));
            assert_eq!(s.ctime, t(m.ctime(), m.ctime_nsec()));
            if cfg!(target_os = "linux") {
                assert_eq!(s.birthtime, s.ctime);
            }
            assert_eq!(s.is_symlink(), m.file_type().is_symlink());
        }
    }
}
