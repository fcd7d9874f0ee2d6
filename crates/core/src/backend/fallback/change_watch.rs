//! The system calls under the open-file cache
//! ([`crate::http::open_file_cache`]): an inotify instance that tells which
//! watched inodes changed, a path walked one directory at a time beneath a
//! root (so that each directory crossed can be watched before the next step
//! is taken), and a small file read whole from the page cache.
//!
//! inotify queues an event inside the system call that makes the change,
//! before that call returns (the VFS calls fsnotify on the way out of
//! write, truncate, rename, unlink, chmod...). So a non-blocking read of
//! the queue, done after a request arrived, sees every such change made
//! before the request was sent: that is what makes a cached answer exact
//! rather than "at most N seconds old". It costs one system call (about
//! 0.4 us here) when nothing changed.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the change signals this process received (see
/// [`ChangeWatch::signal_changes`]): a reader that saw the same count
/// before knows that no watched inode changed since, without a system call.
static CHANGE_SIGNALS: AtomicU64 = AtomicU64::new(0);

/// The number of change signals received so far (a relaxed load: the
/// signal handler runs on the very thread that reads it).
pub fn change_signals() -> u64 {
    CHANGE_SIGNALS.load(Ordering::Relaxed)
}

/// What a directory on a cached path is watched for: its entries appearing,
/// going or changing attributes, and itself moving, going or changing
/// attributes (a chmod that closes the way in).
#[cfg(target_os = "linux")]
const DIR_EVENTS: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_ATTRIB
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR;

/// What a cached file is watched for, whatever name it was changed by (a
/// watch is on the inode: a write through a hard link elsewhere counts):
/// its bytes or size (write, truncate), its attributes and link count
/// (chmod, a rename over it or an unlink drops a link), and itself going.
#[cfg(target_os = "linux")]
const FILE_EVENTS: u32 =
    libc::IN_MODIFY | libc::IN_ATTRIB | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;

/// Which kind of inode a watch is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    Dir,
    File,
}

/// One event off the queue.
#[derive(Debug)]
pub enum Change<'a> {
    /// Something happened to the inode of watch `wd` (`name` empty) or to
    /// its entry `name` (a directory's). A watch the kernel removes (the
    /// inode deleted, its file system unmounted) ends with a nameless
    /// IN_IGNORED event: everything depending on it goes.
    Inode { wd: i32, name: &'a [u8] },
    /// The queue overflowed: events were lost, anything may have changed.
    Overflow,
}

/// An inotify instance, non-blocking.
pub struct ChangeWatch {
    fd: OwnedFd,
}

#[cfg(target_os = "linux")]
impl ChangeWatch {
    pub fn new() -> io::Result<ChangeWatch> {
        // SAFETY: inotify_init1 takes no pointers.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(ChangeWatch { fd })
    }

    /// Watches the inode open as `fd` (not whatever its path names now:
    /// through `/proc/self/fd`, which names the open file itself). Adding
    /// a watch on an inode already watched gives the same `wd`.
    pub fn watch(&self, fd: RawFd, kind: Watched) -> io::Result<i32> {
        let path = format!("/proc/self/fd/{fd}\0");
        let mask = match kind {
            Watched::Dir => DIR_EVENTS,
            Watched::File => FILE_EVENTS,
        };
        // SAFETY: `path` is NUL-terminated and outlives the call.
        let wd =
            unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr().cast(), mask) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(wd)
    }

    pub fn unwatch(&self, wd: i32) {
        // SAFETY: no pointers; a wd the kernel already dropped gives EINVAL,
        // which means the same thing here.
        unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), wd) };
    }

    /// Asks the kernel to signal the calling thread (SIGURG) each time an
    /// event is queued, so that [`change_signals`] tells whether the queue
    /// may hold something, without reading it. True when set up.
    ///
    /// Why this is exact: the signal is made pending on this thread within
    /// the system call that queues the event (inotify's handler calls
    /// `kill_fasync`), and a pending signal is handled on the thread's next
    /// return to user space: at the latest on the return of the `read`
    /// that brings it a request sent after the change. So by the time
    /// JavaScript sees that request, the count has moved.
    ///
    /// Refused (false: read the queue each time instead) when SIGURG
    /// already has a handler (someone else's, such as Go's runtime), or
    /// this thread blocks it. SIGURG's default action is to ignore it, so a
    /// stray one (TCP urgent data to a socket owned by this process) only
    /// costs one read of the queue.
    pub fn signal_changes(&self) -> bool {
        install_handler() && !blocked_here() && self.own_signals()
    }

    fn own_signals(&self) -> bool {
        let fd = self.fd.as_raw_fd();
        // SAFETY: gettid takes no arguments.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
        let owner = FOwnerEx {
            kind: F_OWNER_TID,
            pid: tid,
        };
        // SAFETY: fcntl on our own descriptor; `owner` is valid for the call.
        unsafe {
            libc::fcntl(fd, F_SETOWN_EX, &owner as *const FOwnerEx) == 0
                && libc::fcntl(fd, F_SETSIG, libc::SIGURG) == 0
                && libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK | libc::O_ASYNC) == 0
        }
    }

    /// Hands every queued event to `each`, until the queue is empty.
    pub fn drain(&self, each: &mut dyn FnMut(Change<'_>)) -> io::Result<()> {
        // Aligned for `inotify_event`; room for many events per read.
        let mut buf = [0u64; 512];
        loop {
            // SAFETY: `buf` is writable for its whole size during the call.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    std::mem::size_of_val(&buf),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(()),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            // SAFETY: the kernel wrote `n` bytes into `buf`; u64s seen as bytes.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
            let header = std::mem::size_of::<libc::inotify_event>();
            let mut at = 0;
            while at + header <= bytes.len() {
                let ev: libc::inotify_event = {
                    let at = bytes[at..].as_ptr().cast::<libc::inotify_event>();
                    // SAFETY: a whole header lies at `at` (checked above), and
                    // `read_unaligned` needs no alignment.
                    unsafe { std::ptr::read_unaligned(at) }
                };
                let name_at = at + header;
                let name_end = (name_at + ev.len as usize).min(bytes.len());
                let raw = &bytes[name_at..name_end];
                // The name is NUL-padded to an alignment.
                let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
                if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                    each(Change::Overflow);
                } else {
                    each(Change::Inode { wd: ev.wd, name });
                }
                at = name_end;
            }
        }
    }
}

/// The kernel's `struct f_owner_ex` and its fcntl numbers (the same on
/// every Linux architecture; libc lacks some).
#[cfg(target_os = "linux")]
#[repr(C)]
struct FOwnerEx {
    kind: libc::c_int,
    pid: libc::pid_t,
}
#[cfg(target_os = "linux")]
const F_OWNER_TID: libc::c_int = 0;
#[cfg(target_os = "linux")]
const F_SETOWN_EX: libc::c_int = 15;
#[cfg(target_os = "linux")]
const F_SETSIG: libc::c_int = 10;

/// The handler: counts, nothing else (async-signal-safe; no errno use).
#[cfg(target_os = "linux")]
extern "C" fn on_change_signal(_: libc::c_int) {
    CHANGE_SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Installs [`on_change_signal`] for SIGURG once per process, unless
/// SIGURG has a handler already. True when ours is in place.
#[cfg(target_os = "linux")]
fn install_handler() -> bool {
    use std::sync::OnceLock;
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: all-zero is a valid sigaction to be filled by the kernel.
        let mut old = unsafe { std::mem::zeroed::<libc::sigaction>() };
        // SAFETY: a null new action only reads the current one into `old`.
        if unsafe { libc::sigaction(libc::SIGURG, std::ptr::null(), &mut old) } != 0 {
            return false;
        }
        if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
            return false;
        }
        // SAFETY: as above; the handler only does an atomic add.
        let mut act = unsafe { std::mem::zeroed::<libc::sigaction>() };
        act.sa_sigaction = on_change_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // Restarted: an interrupted system call of anyone on this thread
        // carries on as if nothing happened.
        act.sa_flags = libc::SA_RESTART;
        // SAFETY: `act.sa_mask` is a valid sigset to empty.
        unsafe { libc::sigemptyset(&mut act.sa_mask) };
        // SAFETY: `act` is a fully initialised sigaction.
        unsafe { libc::sigaction(libc::SIGURG, &act, std::ptr::null_mut()) == 0 }
    })
}

/// Whether SIGURG still runs our handler (someone may have installed
/// theirs since, `process.on('SIGURG')` for one): if not, the count no
/// longer moves and the caller must read the queue itself.
#[cfg(target_os = "linux")]
pub fn change_signals_work() -> bool {
    // SAFETY: all-zero is a valid sigaction to be filled by the kernel.
    let mut cur = unsafe { std::mem::zeroed::<libc::sigaction>() };
    // SAFETY: a null new action only reads the current one into `cur`.
    if unsafe { libc::sigaction(libc::SIGURG, std::ptr::null(), &mut cur) } != 0 {
        return false;
    }
    cur.sa_sigaction == on_change_signal as extern "C" fn(libc::c_int) as libc::sighandler_t
        && !blocked_here()
}

#[cfg(not(target_os = "linux"))]
pub fn change_signals_work() -> bool {
    false
}

/// Whether the calling thread blocks SIGURG (then it would stay pending
/// and tell nothing).
#[cfg(target_os = "linux")]
fn blocked_here() -> bool {
    // SAFETY: all-zero is a valid sigset; a null new set only reads the mask.
    let mut mask = unsafe { std::mem::zeroed::<libc::sigset_t>() };
    // SAFETY: as above.
    if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask) } != 0 {
        return true;
    }
    // SAFETY: `mask` was filled by pthread_sigmask.
    unsafe { libc::sigismember(&mask, libc::SIGURG) == 1 }
}

#[cfg(not(target_os = "linux"))]
impl ChangeWatch {
    pub fn signal_changes(&self) -> bool {
        false
    }
    pub fn new() -> io::Result<ChangeWatch> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    pub fn watch(&self, _: RawFd, _: Watched) -> io::Result<i32> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    pub fn unwatch(&self, _: i32) {}
    pub fn drain(&self, _: &mut dyn FnMut(Change<'_>)) -> io::Result<()> {
        Ok(())
    }
}

/// Opens one entry `name` (no '/') of the directory `dir` for a cached
/// path: never through a symlink, never onto another mount, never out of
/// `dir`, and only from the kernel's caches (EAGAIN when that would wait).
/// A directory with `O_PATH` (enough to watch it and open beneath it).
#[cfg(target_os = "linux")]
pub fn open_step(dir: RawFd, name: &CStr, flags: i32) -> io::Result<OwnedFd> {
    use super::beneath::openat2;
    openat2(
        dir,
        name,
        flags,
        super::beneath::RESOLVE
            | libc::RESOLVE_NO_SYMLINKS
            | libc::RESOLVE_NO_XDEV
            | libc::RESOLVE_CACHED,
    )
}

#[cfg(not(target_os = "linux"))]
pub fn open_step(_: RawFd, _: &CStr, _: i32) -> io::Result<OwnedFd> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// What identifies one version of a file: fstat's inode and times. Any
/// change through the file system moves ctime (and a write, mtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

/// fstat(2) of `fd` as a [`Version`].
#[allow(clippy::unnecessary_cast)] // field types differ between targets
pub fn version_of(fd: RawFd) -> io::Result<Version> {
    // SAFETY: all-zero is a valid stat; fstat writes into the local.
    let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
    // SAFETY: `st` is a valid, writable stat struct.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Version {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        mode: st.st_mode as u32,
        size: st.st_size as u64,
        mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
        ctime_ns: st.st_ctime as i128 * 1_000_000_000 + st.st_ctime_nsec as i128,
    })
}

/// The whole of the open file `fd` of `size` bytes, when every page of it
/// is in the page cache (else `None`: reading it here could wait for a
/// disk), and it still ends at `size`.
pub fn read_cached_whole(fd: RawFd, size: u64) -> io::Result<Option<Vec<u8>>> {
    if !all_cached(fd, size) {
        return Ok(None);
    }
    let size = size as usize;
    // One byte more, to see the end where it should be.
    let mut body = vec![0u8; size + 1];
    let mut got = 0;
    while got < body.len() {
        // SAFETY: `body[got..]` is writable for its length during the call.
        let n = unsafe {
            libc::pread(
                fd,
                body[got..].as_mut_ptr().cast(),
                body.len() - got,
                got as libc::off_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    if got != size {
        // It changed size meanwhile: the caller's version is not this one.
        return Ok(None);
    }
    body.truncate(size);
    Ok(Some(body))
}

#[cfg(target_os = "linux")]
fn all_cached(fd: RawFd, size: u64) -> bool {
    super::send_inline::imp::cached(fd, 0, size)
}

/// No way to tell elsewhere: never read inline.
#[cfg(not(target_os = "linux"))]
fn all_cached(_: RawFd, _: u64) -> bool {
    false
}
