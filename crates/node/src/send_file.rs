//! The native half of `sendFile`: opening a file confined to the served
//! directory, and sending a response body from it to the connection's
//! socket inside the kernel (`uring_fs_core::send_body`). The HTTP logic
//! lives in lib/send-file.ts; this converts arguments and results.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Buffer, Object};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use tokio::sync::oneshot;
use uring_fs_core::{BodyRequest, SendOutcome, SocketHandle};

use crate::engine::global;
use crate::file_ops::promise;

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
    /// Modification time in milliseconds (fractional, as `fs.Stats`).
    pub mtime_ms: f64,
    pub ino: f64,
}

impl ServedFile {
    fn failed(syscall: &str, e: &std::io::Error) -> ServedFile {
        ServedFile {
            fd: -1,
            errno: -e.raw_os_error().unwrap_or(libc::EIO),
            syscall: syscall.into(),
            size: 0.0,
            mode: 0,
            mtime_ms: 0.0,
            ino: 0.0,
        }
    }
}

/// Opens `path` (relative) beneath the directory `dirFd` for reading
/// (EXDEV when it resolves outside), then reads its metadata. Anything but
/// a regular file is closed again and comes back with `fd: -1` and its mode.
#[napi(catch_unwind, ts_return_type = "Promise<ServedFile>")]
pub fn open_served<'env>(env: &'env Env, dir_fd: i32, path: Buffer) -> Result<Object<'env>> {
    let path = CString::new(path.to_vec())
        .map_err(|_| Error::new(Status::InvalidArg, "path contains a NUL byte"))?;
    let engine = global()?.engine.clone();
    promise(env, async move {
        // O_NONBLOCK: opening a FIFO someone left in the tree must not hang.
        let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK;
        let fd = match engine.open_beneath(dir_fd, path, flags).await {
            Ok(fd) => fd,
            Err(e) => return ServedFile::failed("open", &e),
        };
        let st = match engine.fstat(fd).await {
            Ok(st) => st,
            Err(e) => {
                let _ = engine.close(fd).await;
                return ServedFile::failed("fstat", &e);
            }
        };
        let keep = st.is_regular();
        if !keep {
            let _ = engine.close(fd).await;
        }
        ServedFile {
            fd: if keep { fd } else { -1 },
            errno: 0,
            syscall: String::new(),
            size: st.size as f64,
            mode: st.mode,
            mtime_ms: st.mtime_ns as f64 / 1e6,
            ino: st.ino as f64,
        }
    })
}

/// How a body transfer ended: `[headSent, bodySent, errno, syscall]`, with
/// errno 0 when everything was sent.
#[napi(object)]
pub struct BodyResult {
    pub head_sent: f64,
    pub body_sent: f64,
    pub errno: i32,
    pub syscall: String,
}

/// One response body on its way from a file to a socket.
#[napi]
pub struct BodyTransfer {
    socket: Arc<SocketHandle>,
    done: Mutex<Option<oneshot::Receiver<SendOutcome>>>,
}

#[napi]
impl BodyTransfer {
    /// Starts sending `head`, then `len` bytes of `fileFd` from `offset`,
    /// to the stream socket `socketFd`. Takes `fileFd` over (closed when
    /// done, or now if this throws); works on its own duplicate of
    /// `socketFd`, so the caller may close that at any time (then call
    /// `abort`).
    #[napi(constructor, catch_unwind)]
    pub fn new(socket_fd: i32, head: Buffer, file_fd: i32, offset: f64, len: f64) -> Result<Self> {
        // SAFETY: the caller hands the descriptor over (see above); from here
        // this OwnedFd is its only owner.
        let file = unsafe { OwnedFd::from_raw_fd(file_fd) };
        let socket = SocketHandle::dup(socket_fd).map_err(|e| {
            Error::new(
                Status::GenericFailure,
                format!("uring-fs: cannot use the socket: {e}"),
            )
        })?;
        let g = global()?;
        let engine = g.engine.clone();
        let req = BodyRequest {
            head: head.to_vec(),
            file,
            offset: offset as u64,
            len: len as u64,
        };
        let (tx, rx) = oneshot::channel();
        let s = socket.clone();
        g.rt.spawn(async move {
            let _ = tx.send(engine.send_body(s, req).await);
        });
        Ok(BodyTransfer {
            socket,
            done: Mutex::new(Some(rx)),
        })
    }

    /// Settles when the transfer ends (once; later calls get EINVAL).
    #[napi(catch_unwind, ts_return_type = "Promise<BodyResult>")]
    pub fn wait<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let rx = self.done.lock().unwrap_or_else(|e| e.into_inner()).take();
        promise(env, async move {
            let out = match rx {
                Some(rx) => rx.await.ok(),
                None => None,
            };
            match out {
                Some(out) => {
                    let (errno, syscall) = match &out.error {
                        Some(e) => (
                            -e.error.raw_os_error().unwrap_or(libc::EIO),
                            e.syscall.name().to_string(),
                        ),
                        None => (0, String::new()),
                    };
                    BodyResult {
                        head_sent: out.head_sent as f64,
                        body_sent: out.body_sent as f64,
                        errno,
                        syscall,
                    }
                }
                // Waited twice, or the task died (a panic): nothing known sent.
                None => BodyResult {
                    head_sent: 0.0,
                    body_sent: 0.0,
                    errno: -libc::EIO,
                    syscall: "write".into(),
                },
            }
        })
    }

    /// Ends the transfer early (the connection is shut down): for a socket
    /// that its owner has closed or is closing.
    #[napi]
    pub fn abort(&self) {
        self.socket.abort();
    }
}
