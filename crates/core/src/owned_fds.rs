//! Descriptors that one owner opened through the engine and has not closed
//! yet, closed together when that owner goes away.
//!
//! The binding keeps one per JavaScript environment: a worker thread that
//! is terminated (or calls `process.exit()`) leaves no descriptor of its
//! streams open, as Node closes every descriptor fs opened in a worker when
//! the worker ends. Whoever closes a descriptor of the table itself takes
//! it out first ([`OwnedFds::release`]), so that a number closed and
//! reused elsewhere is never closed a second time by [`OwnedFds::close_all`].

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct Inner {
    /// `close_all` has run: nothing is kept any more.
    closed: bool,
    fds: HashSet<RawFd>,
}

/// The descriptors an owner has open; see the module doc.
#[derive(Default)]
pub struct OwnedFds {
    inner: Mutex<Inner>,
}

impl OwnedFds {
    pub fn new() -> OwnedFds {
        OwnedFds::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `fd` is the owner's, to be closed by [`OwnedFds::close_all`] unless
    /// released first. Once the owner is gone (`close_all` has run), `fd`
    /// is closed now instead and this returns false.
    pub fn adopt(&self, fd: RawFd) -> bool {
        if fd < 0 {
            return false;
        }
        let closed = {
            let mut inner = self.lock();
            if !inner.closed {
                inner.fds.insert(fd);
            }
            inner.closed
        };
        if closed {
            close_quietly(fd);
        }
        !closed
    }

    /// The owner closes `fd` itself (or it was never the table's): the
    /// table forgets it. Returns whether it held it.
    pub fn release(&self, fd: RawFd) -> bool {
        self.lock().fds.remove(&fd)
    }

    /// Whether `fd` is held.
    pub fn holds(&self, fd: RawFd) -> bool {
        self.lock().fds.contains(&fd)
    }

    /// The owner is gone: closes every descriptor held, and any adopted
    /// later at once. Returns how many were closed here.
    pub fn close_all(&self) -> usize {
        let fds: Vec<RawFd> = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.fds.drain().collect()
        };
        for &fd in &fds {
            close_quietly(fd);
        }
        fds.len()
    }

    /// Descriptors held.
    pub fn len(&self) -> usize {
        self.lock().fds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `close(2)`, its result unused: nobody is left to report it to (a
/// failed close still frees the number on Linux).
fn close_quietly(fd: RawFd) {
    // SAFETY: close takes no pointers; `fd` is a descriptor this table
    // held (or was just handed), which nobody else closes (see the module
    // doc).
    unsafe { libc::close(fd) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: fds is an array of two ints, as pipe(2) wants.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    }

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD takes no pointers.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    #[test]
    fn close_all_closes_what_was_not_released() {
        let t = OwnedFds::new();
        let (a, b) = pipe();
        assert!(t.adopt(a));
        assert!(t.adopt(b));
        assert!(t.release(b));
        assert!(!t.release(b));
        assert_eq!(t.close_all(), 1);
        assert!(!is_open(a));
        assert!(is_open(b));
        close_quietly(b);
    }

    #[test]
    fn adopted_after_close_all_is_closed_at_once() {
        let t = OwnedFds::new();
        t.close_all();
        let (a, b) = pipe();
        assert!(!t.adopt(a));
        assert!(!is_open(a));
        assert!(t.is_empty());
        close_quietly(b);
    }
}
