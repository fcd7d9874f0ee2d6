//! The open-file cache of `sendFile` as a JavaScript class: one per
//! JavaScript thread (it is not shared), over
//! [`uring_fs_core::http::open_file_cache`]. lib/open-file-cache.ts keeps
//! what JavaScript needs of each entry (the bytes, the headers) and bounds
//! the cache; this converts arguments and results.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Buffer, Float64ArraySlice};
use napi::{Error, Result, Status};
use napi_derive::napi;
use uring_fs_core::http::open_file_cache;

use crate::file_ops::c_path;
use crate::layouts::CachedSlot;

/// O_NONBLOCK: a FIFO is never opened as a cached file anyway (only
/// regular files are kept), but opening one must not hang.
const SERVE_FLAGS: i32 = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK;

#[napi]
pub struct OpenFileCache {
    inner: open_file_cache::OpenFileCache,
    /// Dropped entries not yet reported to JavaScript.
    pending: Vec<u32>,
}

fn io_error(e: std::io::Error) -> Error {
    Error::new(Status::GenericFailure, format!("open-file cache: {e}"))
}

#[napi]
impl OpenFileCache {
    /// Throws where inotify is unavailable (then serve uncached). Made on
    /// the thread that serves: changes are signalled to it (see
    /// `signalled`).
    #[napi(constructor)]
    pub fn new() -> Result<Self> {
        let mut inner = open_file_cache::OpenFileCache::new().map_err(io_error)?;
        inner.signal_changes();
        Ok(OpenFileCache {
            inner,
            pending: Vec::new(),
        })
    }

    /// Changes are signalled: `changed` needs calling only when
    /// `openFileChanges()` moved.
    #[napi(getter)]
    pub fn signalled(&self) -> bool {
        self.inner.signalled()
    }

    /// Reads the change queue (one system call when nothing changed), drops
    /// the entries a change touched, and writes the ids of all entries
    /// dropped since the last call into `out`: their count, which may
    /// exceed `out`'s length (call again for the rest).
    #[napi(catch_unwind)]
    pub fn changed(&mut self, mut out: Float64ArraySlice) -> u32 {
        self.inner.check();
        self.pending.extend(self.inner.take_dropped());
        let total = self.pending.len();
        // SAFETY: the JS caller passes a typed array it does not touch during
        // this synchronous call; nothing else aliases it meanwhile.
        let out = unsafe { out.as_mut() };
        let n = total.min(out.len());
        for (slot, id) in out.iter_mut().zip(self.pending.drain(..n)) {
            *slot = f64::from(id);
        }
        total as u32
    }

    /// Opens `rel` beneath the directory `dirFd` into the cache, in
    /// [`CachedSlot`]'s layout in `out`; returns the file's bytes when the
    /// cache keeps them (at most `bodyLimit`, all in the page cache), else
    /// nothing (then `out`'s Fd is the descriptor it keeps; Id -1: not
    /// cached, serve it the usual way). A missing path is kept as such
    /// (Missing 1) when `missingOk`.
    #[napi(catch_unwind)]
    pub fn open(
        &mut self,
        dir_fd: i32,
        rel: Buffer,
        body_limit: f64,
        missing_ok: bool,
        mut out: Float64ArraySlice,
    ) -> Result<Option<Buffer>> {
        // SAFETY: as in `changed`.
        let out = unsafe { out.as_mut() };
        if out.len() < CachedSlot::Count as usize {
            return Err(Error::new(Status::InvalidArg, "out is too short"));
        }
        out[CachedSlot::Id as usize] = -1.0;
        let opened = self
            .inner
            .open(dir_fd, &rel, SERVE_FLAGS, body_limit as u64, missing_ok);
        // Entries that changes dropped meanwhile are reported by `changed`.
        self.pending.extend(self.inner.take_dropped());
        let cached = match opened {
            Ok(Some(c)) => c,
            Ok(None) | Err(_) => return Ok(None),
        };
        let v = cached.version;
        let mut set = |slot: CachedSlot, x: f64| out[slot as usize] = x;
        set(CachedSlot::Id, f64::from(cached.id));
        set(CachedSlot::Missing, f64::from(u8::from(cached.missing)));
        set(CachedSlot::Fd, cached.fd.map_or(-1.0, f64::from));
        set(CachedSlot::Size, v.size as f64);
        set(CachedSlot::Mode, f64::from(v.mode));
        set(
            CachedSlot::MtimeSec,
            v.mtime_ns.div_euclid(1_000_000_000) as f64,
        );
        set(
            CachedSlot::MtimeNsec,
            v.mtime_ns.rem_euclid(1_000_000_000) as f64,
        );
        set(CachedSlot::Ino, v.ino as f64);
        Ok(cached.body.map(Buffer::from))
    }

    /// Whether entry `id` still is what `rel` beneath `dirFd` names (opened
    /// again and compared); drops it when not.
    #[napi(catch_unwind)]
    pub fn revalidate(&mut self, id: u32, dir_fd: i32, rel: Buffer) -> Result<bool> {
        let rel = c_path(&rel)?;
        Ok(self.inner.revalidate(id, dir_fd, &rel))
    }

    /// A share of the descriptor entry `id` keeps open, or null: the
    /// descriptor stays open until the share is released (or collected),
    /// even if the entry is dropped meanwhile.
    #[napi(catch_unwind)]
    pub fn share(&self, id: u32) -> Option<SharedFile> {
        self.inner.file(id).map(|f| SharedFile {
            file: Mutex::new(Some(f)),
        })
    }

    /// Drops entry `id`: closes its descriptor, releases its watches.
    #[napi(catch_unwind)]
    pub fn forget(&mut self, id: u32) {
        self.inner.forget(id);
        // Dropped on request: not reported back (others dropped meanwhile are).
        let dropped = self.inner.take_dropped();
        self.pending
            .extend(dropped.into_iter().filter(|d| *d != id));
    }

    /// Entries held.
    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.inner.len() as u32
    }
}

/// A count that moves whenever a signalled cache may have a change queued
/// (an atomic load: no system call).
#[napi]
pub fn open_file_changes() -> f64 {
    open_file_cache::change_count() as f64
}

/// A response's share of a descriptor the cache keeps (see
/// [`OpenFileCache::share`]).
#[napi]
pub struct SharedFile {
    file: Mutex<Option<Arc<OwnedFd>>>,
}

#[napi]
impl SharedFile {
    /// The descriptor, valid until `release()`; -1 after.
    #[napi(getter)]
    pub fn fd(&self) -> i32 {
        self.lock().as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// A descriptor of the caller's own (to close) for the same open file,
    /// or -1 (released, or no descriptor left): for a reader that closes
    /// what it is given.
    #[napi]
    pub fn dup(&self) -> i32 {
        match self.lock().as_ref() {
            // SAFETY: fcntl takes no pointers; the share keeps the
            // descriptor open while the lock is held.
            Some(f) => unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) },
            None => -1,
        }
    }

    /// Lets go of the share (the last one closes the descriptor).
    #[napi]
    pub fn release(&self) {
        drop(self.lock().take());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<OwnedFd>>> {
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }
}
