//! The backend-neutral engine: one of io_uring or the thread-pool fallback,
//! chosen at start-up, behind one set of async operations.

mod on_thread;

pub(crate) use on_thread::{
    change_signals, change_signals_work, open_step, read_cached_whole, version_of, Change,
    ChangeWatch, Version, Watched,
};
pub(crate) use on_thread::{read_small_blocking, read_small_on_lane_ring, try_open_beneath_cached};
pub use on_thread::{send_bytes_inline, send_inline};

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

use crate::backend::fallback::Fallback;
use crate::buffer_pool::PoolBuf;
use crate::fd_stat::FileStat;
use crate::stats::{Counters, Stats};
use crate::vocabulary::send_body::{BodyRequest, SendOutcome, SocketHandle};
use crate::vocabulary::{PathStat, SyncMode, WriteOutcome};
use crate::write_source::WriteSource;

/// A ring of the calling thread's own (the JavaScript thread's), which it
/// submits to and reaps itself: [`Engine::loop_ring`].
#[cfg(all(target_os = "linux", feature = "io-uring"))]
pub use crate::backend::uring::loop_ring::{Done as LoopDone, LoopRing};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    IoUring,
    Fallback,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::IoUring => "io_uring",
            Backend::Fallback => "fallback",
        }
    }
}

/// Which backend to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// io_uring when the kernel allows it and has every opcode needed.
    Auto,
    /// io_uring or an error.
    IoUring,
    Fallback,
}

impl Choice {
    /// Reads `URING_FS_BACKEND` (`io_uring`, `fallback`, unset or `auto`).
    pub fn from_env() -> io::Result<Choice> {
        match std::env::var("URING_FS_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("auto") => Ok(Choice::Auto),
            Ok("io_uring") | Ok("io-uring") | Ok("uring") => Ok(Choice::IoUring),
            Ok("fallback") => Ok(Choice::Fallback),
            Ok(other) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("URING_FS_BACKEND must be 'io_uring' or 'fallback', not '{other}'"),
            )),
        }
    }
}

#[derive(Clone)]
enum Imp {
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    Uring(crate::backend::uring::Driver),
    Fallback(Fallback),
}

/// Handle to the running engine; clones share it.
#[derive(Clone)]
pub struct Engine {
    imp: Imp,
    counters: Arc<Counters>,
    /// Why io_uring is not in use, when it is not.
    why_fallback: Option<Arc<str>>,
}

impl Engine {
    /// Starts the engine on the current tokio runtime.
    pub fn start(choice: Choice) -> io::Result<Engine> {
        let counters = Arc::new(Counters::default());
        let fallback = |why: String| Engine {
            imp: Imp::Fallback(Fallback {
                counters: counters.clone(),
            }),
            counters: counters.clone(),
            why_fallback: Some(why.into()),
        };
        if choice == Choice::Fallback {
            return Ok(fallback("forced by URING_FS_BACKEND=fallback".into()));
        }
        #[cfg(all(target_os = "linux", feature = "io-uring"))]
        match crate::backend::uring::Driver::start(counters.clone()) {
            Ok(d) => Ok(Engine {
                imp: Imp::Uring(d),
                counters: counters.clone(),
                why_fallback: None,
            }),
            Err(e) if choice == Choice::IoUring => Err(e),
            // Out of descriptors for the moment (the ring needs one): an
            // error the caller can retry, as fs's EMFILE is, not a reason
            // to give up io_uring for the life of the process.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => Err(e),
            Err(e) => Ok(fallback(format!("io_uring unavailable: {e}"))),
        }
        #[cfg(not(all(target_os = "linux", feature = "io-uring")))]
        match choice {
            Choice::IoUring => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this build has no io_uring backend",
            )),
            _ => Ok(fallback("this build has no io_uring backend".into())),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(_) => Backend::IoUring,
            Imp::Fallback(_) => Backend::Fallback,
        }
    }

    /// Why the fallback is in use (None on io_uring).
    pub fn fallback_reason(&self) -> Option<&str> {
        self.why_fallback.as_deref()
    }

    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// A ring for the calling thread to submit and reap itself, counted in
    /// this engine's stats; `Unsupported` on the fallback backend.
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub fn loop_ring(&self) -> io::Result<LoopRing> {
        match self.imp {
            Imp::Uring(_) => LoopRing::new(self.counters.clone()),
            Imp::Fallback(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "fallback backend",
            )),
        }
    }

    /// The counters behind [`Engine::stats`], for work done off the engine's
    /// own ring (the lanes of `readFiles`).
    pub(crate) fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// open(2) semantics; `O_CLOEXEC` is always added.
    pub async fn open(&self, path: CString, flags: i32, mode: u32) -> io::Result<RawFd> {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => d.openat(path, flags, mode).await,
            Imp::Fallback(f) => f.openat(path, flags, mode).await,
        }
    }

    /// Opens `path` relative to the directory `dir`, refusing (EXDEV) any
    /// path that resolves outside it: see [`crate::backend::fallback::beneath`].
    pub async fn open_beneath(&self, dir: RawFd, path: CString, flags: i32) -> io::Result<RawFd> {
        #[cfg(all(target_os = "linux", feature = "io-uring"))]
        if let Imp::Uring(d) = &self.imp {
            if d.shared.optional.openat2 {
                match d.open_beneath(dir, path.clone(), flags).await {
                    // Refused on the way; the pool's open looks closer
                    // (an absolute symlink may still end inside `dir`).
                    Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
                    other => return other,
                }
            }
        }
        use crate::backend::fallback::beneath::open_beneath_on_pool;
        open_beneath_on_pool(dir, path, flags, &self.counters).await
    }

    /// Sends `req` (a head, then a range of a file) to `socket` without the
    /// file's bytes passing through user memory, then closes the engine's
    /// duplicate of the socket and the file: see [`crate::vocabulary::send_body`].
    pub async fn send_body(&self, socket: Arc<SocketHandle>, req: BodyRequest) -> SendOutcome {
        let file = Arc::new(req.file);
        let out = match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) if d.shared.optional.splice_body => {
                d.splice_body(
                    &socket,
                    req.head,
                    &file,
                    req.offset,
                    req.len,
                    req.stall_after,
                )
                .await
            }
            _ => {
                crate::backend::fallback::sendfile_body::send_body(
                    &socket,
                    &req.head,
                    &file,
                    req.offset,
                    req.len,
                    req.stall_after,
                    &self.counters,
                )
                .await
            }
        };
        socket.close();
        out
    }

    /// A small file read whole in one linked chain (io_uring with direct
    /// descriptors), or `None`: use the general path ([`crate::whole_file::files`]).
    pub(crate) async fn read_small(
        &self,
        path: &CString,
        flags: i32,
    ) -> Option<Result<PoolBuf, crate::OpError>> {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => {
                use crate::backend::uring::small_file_chain::SmallRead;
                match d.read_small(path.clone(), flags).await {
                    SmallRead::Whole(buf) => Some(Ok(buf)),
                    SmallRead::Failed(e) => Some(Err(e)),
                    SmallRead::General => None,
                }
            }
            _ => {
                let _ = (path, flags);
                None
            }
        }
    }

    /// Reads up to `want` bytes at `offset` into `buf`'s spare capacity.
    pub async fn read_at(
        &self,
        fd: RawFd,
        buf: PoolBuf,
        offset: u64,
        want: usize,
    ) -> (io::Result<usize>, PoolBuf) {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => d.read_at(fd, buf, offset, want).await,
            Imp::Fallback(f) => f.read_at(fd, buf, offset, want).await,
        }
    }

    pub async fn fstat(&self, fd: RawFd) -> io::Result<FileStat> {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => d.fstat(fd).await,
            Imp::Fallback(f) => f.fstat(fd).await,
        }
    }

    /// `stat(2)` of `path` when `follow`, else `lstat(2)`: every field
    /// Node's `fs.Stats` has. See [`crate::batch::stat_files`].
    pub async fn stat_path(&self, path: CString, follow: bool) -> io::Result<PathStat> {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => d.stat_path(path, follow).await,
            Imp::Fallback(f) => f.stat_path(path, follow).await,
        }
    }

    /// One `writev(2)` of the start of `src` (its first `IOV_MAX` non-empty
    /// parts, at most 1 GiB) at `offset` (`CURRENT_POSITION`: at the file
    /// position, which it advances). May write less; returns the count and
    /// the source. [`Engine::write_all`] writes everything.
    pub async fn writev(
        &self,
        fd: RawFd,
        src: WriteSource,
        offset: u64,
    ) -> (io::Result<usize>, WriteSource) {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => d.writev(fd, src, offset).await,
            Imp::Fallback(f) => f.writev(fd, src, offset).await,
        }
    }

    /// Writes all of `src` at `offset`, then syncs: see
    /// [`crate::stream::batch_writer::write_all`].
    pub async fn write_all(
        &self,
        fd: RawFd,
        src: WriteSource,
        offset: u64,
        sync: SyncMode,
    ) -> WriteOutcome {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => d.write_all(fd, src, offset, sync).await,
            Imp::Fallback(f) => f.write_all(fd, src, offset, sync).await,
        }
    }

    /// `fsync(2)`, or `fdatasync(2)` when `datasync`.
    pub async fn fsync(&self, fd: RawFd, datasync: bool) -> io::Result<()> {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => d.fsync(fd, datasync).await,
            Imp::Fallback(f) => f.fsync(fd, datasync).await,
        }
    }

    pub async fn close(&self, fd: RawFd) -> io::Result<()> {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => d.close(fd).await,
            Imp::Fallback(f) => f.close(fd).await,
        }
    }

    /// Asks the kernel to cancel every request in flight on `fd`. The
    /// requests' own futures still complete (with ECANCELED or their data);
    /// on the fallback this is a no-op, its jobs finish on their own.
    pub async fn cancel_fd(&self, fd: RawFd) {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => {
                d.cancel_fd(fd).await;
            }
            Imp::Fallback(_) => {
                let _ = fd;
            }
        }
    }

    /// Cancels and drains everything in flight (io_uring); tests call this
    /// before dropping their runtime.
    pub async fn shutdown(&self) {
        match &self.imp {
            #[cfg(all(target_os = "linux", feature = "io-uring"))]
            Imp::Uring(d) => d.shutdown().await,
            Imp::Fallback(_) => {}
        }
    }
}
