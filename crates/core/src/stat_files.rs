//! Batched metadata of many paths: `stat(2)` (or `lstat(2)`) of each, many
//! in flight at once, so that on io_uring the statx SQEs of many paths share
//! each `io_uring_enter`.
//!
//! [`PathStat`] holds every field Node's `fs.Stats` is built from, taken the
//! way libuv takes them (statx with `STATX_BASIC_STATS | STATX_BTIME`, device
//! numbers joined with `makedev`), so that the numbers match `fs.stat`'s.

use std::ffi::CString;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::engine::Engine;

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

/// The system call a batch stands for in errors: `stat` follows a final
/// symbolic link, `lstat` does not.
pub fn syscall_name(follow: bool) -> &'static str {
    if follow {
        "stat"
    } else {
        "lstat"
    }
}

/// Stats every path in `paths` (`follow`: stat, else lstat), at most
/// `concurrency` at a time. Results are in the order of `paths`; one path's
/// failure never fails the others (its error is what the system call said:
/// see [`syscall_name`]).
///
/// A statx runs on the kernel's io-wq threads, whose completions come back a
/// few at a time, more so on a busy machine. Starting a new stat for each as
/// it arrives sent a few SQEs per `io_uring_enter` (with a task per path, as
/// `files::read_files` has, about 30 at best, 10 under load). So all the
/// stats run inside this one future, and freed slots are refilled together
/// once a quarter of them are free: each group's SQEs are queued in one poll
/// and share one enter, at the price of up to a quarter of `concurrency`
/// idle meanwhile.
pub async fn stat_files(
    engine: &Engine,
    paths: Vec<CString>,
    follow: bool,
    concurrency: usize,
) -> Vec<io::Result<PathStat>> {
    run_bounded(paths, concurrency, |path| engine.stat_path(path, follow))
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(io::Error::other("uring-fs: stat never ran"))))
        .collect()
}

/// Runs `start(item)` for every item, at most `limit` at a time, all inside
/// the calling task; the outputs in the order of `items`. Each is Some when
/// this returns: a future that panics unwinds through here instead.
async fn run_bounded<T, F, Fut>(items: Vec<T>, limit: usize, start: F) -> Vec<Option<Fut::Output>>
where
    F: Fn(T) -> Fut,
    Fut: Future,
{
    let total = items.len();
    let limit = limit.max(1).min(total);
    let mut out: Vec<Option<Fut::Output>> = (0..total).map(|_| None).collect();
    let mut pending = items.into_iter().enumerate();
    let ready = Arc::new(Ready::default());
    // Slot k: the item index and future in flight there; wakers[k] marks k
    // ready. Boxed: a future must not move once polled.
    let mut slots: Vec<Option<(usize, Pin<Box<Fut>>)>> = (0..limit).map(|_| None).collect();
    let wakers: Vec<Waker> = (0..limit)
        .map(|slot| {
            Waker::from(Arc::new(SlotWaker {
                ready: ready.clone(),
                slot,
            }))
        })
        .collect();
    let mut free: Vec<usize> = (0..limit).rev().collect();
    let mut running = 0usize;
    let group = (limit / 4).max(1);
    poll_fn(|cx| {
        // Registered before taking the ready list, so a wake after the take
        // polls this future again.
        let woken = {
            let mut st = ready.lock();
            st.parent = Some(cx.waker().clone());
            std::mem::take(&mut st.slots)
        };
        for k in woken {
            let Some((i, fut)) = slots[k].as_mut() else {
                continue; // a second wake of a slot already done
            };
            if let Poll::Ready(res) = fut.as_mut().poll(&mut Context::from_waker(&wakers[k])) {
                out[*i] = Some(res);
                slots[k] = None;
                running -= 1;
                free.push(k);
            }
        }
        // Free slots are refilled a group at a time (a quarter of `limit`),
        // or when nothing else runs: all of a group's futures start in this
        // one poll, so on io_uring their SQEs share one `io_uring_enter`.
        if free.len() >= group || running == 0 {
            while let Some(k) = free.pop() {
                let Some((i, item)) = pending.next() else {
                    free.push(k);
                    break;
                };
                let mut fut = Box::pin(start(item));
                // The first poll registers the slot's waker (on io_uring the
                // SQE is queued already, when the future was made).
                match fut.as_mut().poll(&mut Context::from_waker(&wakers[k])) {
                    Poll::Ready(res) => {
                        out[i] = Some(res);
                        free.push(k);
                    }
                    Poll::Pending => {
                        slots[k] = Some((i, fut));
                        running += 1;
                    }
                }
            }
        }
        if running == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out
}

/// Which slots were woken since the last poll, and who polls them.
#[derive(Default)]
struct Ready(Mutex<ReadyState>);

#[derive(Default)]
struct ReadyState {
    slots: Vec<usize>,
    parent: Option<Waker>,
}

impl Ready {
    fn lock(&self) -> MutexGuard<'_, ReadyState> {
        // The state is a list and a waker, whole at every step: a panic
        // elsewhere while it was held leaves nothing half-done.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One slot's waker: marks the slot ready and wakes the one task.
struct SlotWaker {
    ready: Arc<Ready>,
    slot: usize,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let parent = {
            let mut st = self.ready.lock();
            st.slots.push(self.slot);
            st.parent.take()
        };
        if let Some(w) = parent {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
