//! The native half of `sendFile`: opening a file confined to the served
//! directory, and sending a response body from it to the connection's
//! socket inside the kernel (`uring_fs_core::Engine::send_body`). The HTTP logic
//! lives in lib/send-file.ts; this converts arguments and results.

use std::os::fd::{BorrowedFd, IntoRawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::{Buffer, BufferSlice, Float64ArraySlice, Object};
use napi::JsString;
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use uring_fs_core::http::served_file;
use uring_fs_core::{BodyRequest, FileStat, SendOutcome, SocketHandle};

use crate::engine::global;
use crate::errors::neg_errno;
use crate::file_ops::{c_path, promise};
use crate::latin1::with_latin1;
use crate::layouts::{SentSlot, SentSyscall, ServedSlot};

/// A file opened for serving, or why not.
#[napi(object)]
pub struct ServedFile {
    /// The descriptor (-1 on failure or for a directory, already closed).
    pub fd: i32,
    /// 0, or `-errno` of the failed call.
    pub errno: i32,
    /// 'open' or 'fstat' on failure, empty otherwise.
    pub syscall: String,
    pub size: f64,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
    /// Modification time: whole seconds and nanoseconds, from which JS
    /// computes `mtimeMs` exactly as `fs.Stats` does.
    pub mtime_sec: f64,
    pub mtime_nsec: f64,
    pub ino: f64,
}

/// O_NONBLOCK: opening a FIFO someone left in the tree must not hang.
const SERVE_FLAGS: i32 = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK;

impl ServedFile {
    fn of(fd: i32, st: &FileStat) -> ServedFile {
        ServedFile {
            fd,
            errno: 0,
            syscall: String::new(),
            size: st.size as f64,
            mode: st.mode,
            mtime_sec: st.mtime_ns.div_euclid(1_000_000_000) as f64,
            mtime_nsec: st.mtime_ns.rem_euclid(1_000_000_000) as f64,
            ino: st.ino as f64,
        }
    }

    fn failed(syscall: &str, e: &std::io::Error) -> ServedFile {
        ServedFile {
            fd: -1,
            errno: neg_errno(e),
            syscall: syscall.into(),
            size: 0.0,
            mode: 0,
            mtime_sec: 0.0,
            mtime_nsec: 0.0,
            ino: 0.0,
        }
    }
}

/// Opens `path` (relative) beneath the directory `dirFd` for reading
/// (EXDEV when it resolves outside), then reads its metadata. Anything but
/// a regular file is closed again and comes back with `fd: -1` and its mode.
#[napi(catch_unwind, ts_return_type = "Promise<ServedFile>")]
pub fn open_served<'env>(env: &'env Env, dir_fd: i32, path: Buffer) -> Result<Object<'env>> {
    let path = c_path(&path)?;
    let engine = global()?.engine.clone();
    promise(env, async move {
        match served_file::open_served(&engine, dir_fd, path, SERVE_FLAGS).await {
            Ok(served) => ServedFile::of(served.fd.unwrap_or(-1), &served.stat),
            Err(e) => ServedFile::failed(e.syscall.name(), &e.error),
        }
    })
}

/// `openServed` done inline when the kernel can do it without waiting for
/// a disk (the path's lookup is in its cache). Returns false to say "use
/// `openServed`"; true with the result in `out`, in [`ServedSlot`]'s layout
/// (errno from open; fd -1 on failure or for anything but a regular file,
/// which is closed again). A few microseconds on the calling thread, where
/// the async path costs two thread hand-offs; the numbers go through a
/// typed array because building an object through napi costs more than the
/// system calls (see `crate::layouts`).
#[napi(catch_unwind)]
pub fn open_served_cached(dir_fd: i32, path: Buffer, mut out: Float64ArraySlice) -> Result<bool> {
    let path = c_path(&path)?;
    // SAFETY: the JS caller passes a typed array it does not touch during
    // this synchronous call; nothing else aliases it meanwhile.
    let out = unsafe { out.as_mut() };
    if out.len() < ServedSlot::Count as usize {
        return Err(Error::new(Status::InvalidArg, "out is too short"));
    }
    let (fd, errno, st) = match served_file::open_served_cached(dir_fd, &path, SERVE_FLAGS) {
        Ok(None) => return Ok(false),
        Ok(Some((file, st))) if st.is_regular() => (file.into_raw_fd(), 0, Some(st)),
        Ok(Some((_closed_on_drop, st))) => (-1, 0, Some(st)),
        Err(e) => (-1, neg_errno(&e), None),
    };
    let st = st.unwrap_or(FileStat {
        size: 0,
        mode: 0,
        ino: 0,
        mtime_ns: 0,
    });
    let mut set = |slot: ServedSlot, v: f64| out[slot as usize] = v;
    set(ServedSlot::Fd, fd as f64);
    set(ServedSlot::Errno, errno as f64);
    set(ServedSlot::Size, st.size as f64);
    set(ServedSlot::Mode, st.mode as f64);
    set(
        ServedSlot::MtimeSec,
        st.mtime_ns.div_euclid(1_000_000_000) as f64,
    );
    set(
        ServedSlot::MtimeNsec,
        st.mtime_ns.rem_euclid(1_000_000_000) as f64,
    );
    set(ServedSlot::Ino, st.ino as f64);
    Ok(true)
}

/// How far a body transfer got: bytes of the head and of the body that
/// reached the socket; errno 0, or `-errno` of the call that failed;
/// `stalled`: it stopped after waiting `stallAfterMs` for room, holding
/// nothing, for the caller to go on with.
#[napi(object)]
pub struct BodyResult {
    pub head_sent: f64,
    pub body_sent: f64,
    pub errno: i32,
    pub syscall: String,
    pub stalled: bool,
}

impl From<SendOutcome> for BodyResult {
    fn from(out: SendOutcome) -> BodyResult {
        let (errno, syscall) = match &out.error {
            Some(e) => (neg_errno(&e.error), e.syscall.name().to_string()),
            None => (0, String::new()),
        };
        BodyResult {
            head_sent: out.head_sent as f64,
            body_sent: out.body_sent as f64,
            errno,
            syscall,
            stalled: out.stalled,
        }
    }
}

/// Sends, on this thread and without blocking, what it can of `head` (the
/// response head Node built, a latin1 string) then of `len` bytes of
/// `fileFd` from `offset` (at most `budget`), when the file range is all in
/// the page cache (else nothing). Result in `out` (a typed array, cheaper
/// than an object through napi) in [`SentSlot`]'s layout. Both descriptors
/// stay the caller's (the file may be a share of the open-file cache's):
/// it sends the rest, if any, with a `BodyTransfer`.
#[napi(catch_unwind)]
pub fn send_inline(
    socket_fd: i32,
    head: JsString,
    file_fd: i32,
    offset: f64,
    len: f64,
    budget: f64,
    mut out: Float64ArraySlice,
) -> Result<()> {
    let out = sent_slots(&mut out)?;
    let r = with_latin1(&head, |head| {
        uring_fs_core::http::send_inline(
            socket_fd,
            head,
            file_fd,
            offset as u64,
            len as u64,
            budget as u64,
        )
    })?;
    write_sent(out, &r);
    Ok(())
}

/// Sends, on this thread and without blocking, what the socket takes of
/// `head` (Node's response head, latin1) then `body` (a cached small
/// file's bytes), in one system call when it takes them all. Returns the
/// bytes the socket took, head first (so the head's share is the lesser of
/// that and its length), or `-errno` when the send failed; the caller
/// writes what is left. A number rather than [`SentSlot`]s: this runs for
/// every cached answer, and a typed array costs a napi call more.
#[napi(catch_unwind)]
pub fn send_bytes_inline(socket_fd: i32, head: JsString, body: BufferSlice) -> Result<f64> {
    // BufferSlice, not Buffer: the bytes are only read during this call, so
    // no reference to the Buffer is taken (and deleted) per response.
    let r = with_latin1(&head, |head| {
        uring_fs_core::http::send_bytes_inline(socket_fd, head, &body)
    })?;
    Ok(match &r.error {
        Some(e) => f64::from(neg_errno(&e.error)),
        None => r.head_sent as f64 + r.body_sent as f64,
    })
}

/// The caller's typed array for an inline send's outcome, checked long
/// enough for [`SentSlot`]'s layout.
fn sent_slots<'a>(out: &'a mut Float64ArraySlice<'_>) -> Result<&'a mut [f64]> {
    // SAFETY: as in `open_served_cached`: the caller's typed array, not
    // touched by JS during this synchronous call.
    let out = unsafe { out.as_mut() };
    if out.len() < SentSlot::Count as usize {
        return Err(Error::new(Status::InvalidArg, "out is too short"));
    }
    Ok(out)
}

/// An inline send's outcome into `out`, in [`SentSlot`]'s layout.
fn write_sent(out: &mut [f64], r: &SendOutcome) {
    let (errno, syscall) = match &r.error {
        Some(e) => (
            neg_errno(&e.error),
            if e.syscall.name() == "read" {
                SentSyscall::Read
            } else {
                SentSyscall::Write
            },
        ),
        None => (0, SentSyscall::None),
    };
    let mut set = |slot: SentSlot, v: f64| out[slot as usize] = v;
    set(SentSlot::HeadSent, r.head_sent as f64);
    set(SentSlot::BodySent, r.body_sent as f64);
    set(SentSlot::Errno, f64::from(errno));
    set(SentSlot::Syscall, f64::from(syscall as u8));
}

/// One response body on its way from a file to a socket, in one transfer
/// or several (after each stall, the caller starts the next).
#[napi]
pub struct BodyTransfer {
    socket: Mutex<Option<Arc<SocketHandle>>>,
    stall_after: Option<Duration>,
}

#[napi]
impl BodyTransfer {
    /// `stallAfterMs` > 0: each transfer stops, `stalled`, after waiting
    /// that long for room in the socket; 0: it waits as long as it takes.
    #[napi(constructor)]
    pub fn new(stall_after_ms: f64) -> Self {
        BodyTransfer {
            socket: Mutex::new(None),
            // NaN, negative or infinite: no limit (try_from refuses them).
            stall_after: Duration::try_from_secs_f64(stall_after_ms / 1000.0)
                .ok()
                .filter(|d| !d.is_zero()),
        }
    }

    /// Sends `head`, then `len` bytes of `fileFd` from `offset`, to the
    /// stream socket `socketFd`; settles when done, failed or stalled. Works on its own duplicates of `fileFd`
    /// and `socketFd`, so the caller keeps both and may close them at any
    /// time (the socket: then call `abort`); the duplicates are closed when
    /// the transfer ends.
    #[napi(catch_unwind, ts_return_type = "Promise<BodyResult>")]
    pub fn start<'env>(
        &self,
        env: &'env Env,
        socket_fd: i32,
        head: Buffer,
        file_fd: i32,
        offset: f64,
        len: f64,
    ) -> Result<Object<'env>> {
        let cannot = |e: std::io::Error| {
            Error::new(
                Status::GenericFailure,
                format!("uring-fs: cannot use the file: {e}"),
            )
        };
        if file_fd < 0 {
            return Err(cannot(std::io::Error::from_raw_os_error(libc::EBADF)));
        }
        // SAFETY: the caller's descriptor is open for the length of this
        // call (it closes it only after the transfer settles, or never uses
        // it again); the duplicate made here is the transfer's own.
        let file = unsafe { BorrowedFd::borrow_raw(file_fd) }
            .try_clone_to_owned()
            .map_err(cannot)?;
        let socket = SocketHandle::dup(socket_fd).map_err(|e| {
            Error::new(
                Status::GenericFailure,
                format!("uring-fs: cannot use the socket: {e}"),
            )
        })?;
        *self.socket.lock().unwrap_or_else(|e| e.into_inner()) = Some(socket.clone());
        let engine = global()?.engine.clone();
        let req = BodyRequest {
            head: head.to_vec(),
            file,
            offset: offset as u64,
            len: len as u64,
            stall_after: self.stall_after,
        };
        promise(env, async move {
            BodyResult::from(engine.send_body(socket, req).await)
        })
    }

    /// Ends the transfer early (the connection is shut down): for a socket
    /// that its owner has closed or is closing.
    #[napi]
    pub fn abort(&self) {
        if let Some(s) = self
            .socket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            s.abort();
        }
    }
}
