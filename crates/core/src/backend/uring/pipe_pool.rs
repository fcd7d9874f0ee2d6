//! Pipes for splicing, reused: making one costs a `pipe2` and an
//! `F_SETPIPE_SZ`, and the response of a small file is over in a few
//! microseconds. A pipe goes back only when empty, so the next response
//! never sends bytes left over from another.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

/// Asked-for capacity: one splice moves up to this much of a file. 1 MiB is
/// the default `fs.pipe-max-size`, which unprivileged processes may use.
const WANT_CAPACITY: libc::c_int = 1 << 20;
/// Idle pipes kept (two descriptors each).
const MAX_IDLE: usize = 64;

static IDLE: Mutex<Vec<Pipe>> = Mutex::new(Vec::new());

pub(crate) struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    /// What it holds at most, in bytes.
    pub capacity: u32,
}

impl Pipe {
    /// An idle pipe, or a new one.
    pub fn take() -> io::Result<Pipe> {
        let idle = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(p) => Ok(p),
            None => Pipe::create(),
        }
    }

    fn create() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // Non-blocking: a splice that finds the pipe empty or full must
        // return EAGAIN to the engine, never park a kernel worker.
        // SAFETY: `fds` is valid for writes of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A smaller pipe still works (pipe-user-pages limits, a lowered
        // pipe-max-size): then use what it has.
        // SAFETY: F_SETPIPE_SZ / F_GETPIPE_SZ take an int, no pointers.
        let mut capacity =
            unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, WANT_CAPACITY) };
        if capacity <= 0 {
            // SAFETY: as above.
            capacity = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        }
        if capacity <= 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pipe {
            read,
            write,
            capacity: capacity as u32,
        })
    }

    /// Keeps an empty pipe for the next transfer.
    pub fn give_back(self) {
        let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(self);
        }
    }
}
