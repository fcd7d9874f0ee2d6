//! One-off file operations as promises: open, close, fsync, a batch write,
//! and whole-file reads and writes. Each runs on the engine's runtime and
//! crosses back to JavaScript once. OS failures resolve as `-errno` (with
//! the failing system call where several are possible), never as rejections.

use std::ffi::CString;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use napi::bindgen_prelude::{Buffer, BufferSlice, Either3, FromNapiValue, Object, ToNapiValue};
use napi::Either;
use napi::{Env, Error, JsDeferred, Result, Status};
use napi_derive::napi;
use uring_fs_core::stream::batch_writer;
use uring_fs_core::whole_file::files::{self, Opened};
use uring_fs_core::whole_file::read_parts::{self, ReadTarget};
use uring_fs_core::write_source::WriteSource;
use uring_fs_core::{OpError, PoolBuf, Syscall};
use uring_fs_core::{SyncMode, CURRENT_POSITION};

use crate::engine::global;
use crate::errors::{file_error, neg_errno, FileError};
use crate::lent::{self, LentGuard};

/// Runs `fut` on the engine's runtime and settles a promise with its value.
/// A panic in `fut` rejects the promise instead of leaving it pending.
pub(crate) fn promise<'env, T, F>(env: &'env Env, fut: F) -> Result<Object<'env>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    type Resolver<T> = Box<dyn FnOnce(Env) -> Result<T> + Send>;
    let g = global()?;
    let (deferred, promise): (JsDeferred<T, Resolver<T>>, _) = env.create_deferred()?;
    g.rt.spawn(async move {
        match CatchUnwind(Box::pin(fut)).await {
            Ok(v) => deferred.resolve(Box::new(move |_| Ok(v))),
            Err(()) => deferred.reject(Error::new(
                Status::GenericFailure,
                "uring-fs: internal error (panic)",
            )),
        }
    });
    Ok(promise)
}

/// Polls a future, turning a panic into `Err(())` (one task per promise,
/// where a supervising task would cost a second spawn and wake-up).
pub(crate) struct CatchUnwind<F>(pub(crate) Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

pub(crate) fn c_path(path: &[u8]) -> Result<CString> {
    CString::new(path.to_vec())
        .map_err(|_| Error::new(Status::InvalidArg, "path contains a NUL byte"))
}

/// `open(2)`: resolves with the descriptor or `-errno`. The descriptor is
/// the calling environment's until closed with `close` or released with
/// `releaseFd`: a worker that ends first has it closed (`crate::lent`).
#[napi(catch_unwind, ts_return_type = "Promise<number>")]
pub fn open<'env>(env: &'env Env, path: Buffer, flags: i32, mode: u32) -> Result<Object<'env>> {
    let path = c_path(&path)?;
    let engine = global()?.engine.clone();
    let fds = lent::fds(env);
    promise(env, async move {
        match engine.open(path, flags, mode).await {
            Ok(fd) => {
                // Adopted on the runtime, as soon as it is open: an
                // environment gone by now has it closed at once.
                fds.adopt(fd);
                fd
            }
            Err(e) => neg_errno(&e),
        }
    })
}

/// `close(2)`: resolves with 0 or `-errno`.
#[napi(catch_unwind, ts_return_type = "Promise<number>")]
pub fn close<'env>(env: &'env Env, fd: i32) -> Result<Object<'env>> {
    let engine = global()?.engine.clone();
    // Out of the environment's table before the number can be reused.
    lent::fds(env).release(fd);
    promise(env, async move {
        match engine.close(fd).await {
            Ok(()) => 0,
            Err(e) => neg_errno(&e),
        }
    })
}

/// JavaScript closes `fd` itself (fs's close, as a stream's destroy does):
/// the environment no longer closes it when it ends. Called before that
/// close, so that the number, once reused, is never closed again here.
/// Returns whether the environment held it (opened by `open`, `readFile`
/// or a read stream of this environment).
#[napi(catch_unwind)]
pub fn release_fd(env: &Env, fd: i32) -> bool {
    lent::fds(env).release(fd)
}

/// A write of no bytes at `position` (`-1`: the current position), as fs
/// makes for an empty chunk: 0, or `-errno`. Synchronous: it never waits.
#[napi(catch_unwind)]
pub fn write_nothing(fd: i32, position: i64) -> i32 {
    let offset = u64::try_from(position).unwrap_or(CURRENT_POSITION);
    match batch_writer::write_nothing(fd, offset) {
        Ok(()) => 0,
        Err(e) => neg_errno(&e),
    }
}

/// `fsync(2)` (or `fdatasync(2)`): resolves with 0 or `-errno`.
#[napi(catch_unwind, ts_return_type = "Promise<number>")]
pub fn fsync<'env>(env: &'env Env, fd: i32, datasync: bool) -> Result<Object<'env>> {
    let engine = global()?.engine.clone();
    promise(env, async move {
        match engine.fsync(fd, datasync).await {
            Ok(()) => 0,
            Err(e) => neg_errno(&e),
        }
    })
}

#[napi(object)]
pub struct WriteResult {
    /// Bytes of the batch now in the file, counted from its start.
    pub written: f64,
    /// 0, or `-errno` of the write (or fsync) that failed.
    pub errno: i32,
    /// The system call that failed ('write' or 'fsync'), empty on success.
    pub syscall: String,
}

/// JS's write position (`-1`: the current position) and sync code (0 none,
/// 1 fdatasync, 2 fsync) as the batch writer takes them.
pub(crate) fn write_args(position: i64, sync: u32) -> (u64, SyncMode) {
    let offset = if position < 0 {
        CURRENT_POSITION
    } else {
        position as u64
    };
    let mode = match sync {
        1 => SyncMode::Data,
        2 => SyncMode::Full,
        _ => SyncMode::None,
    };
    (offset, mode)
}

/// Wraps JS Buffers for the kernel: held by reference (the `Buffer` values
/// keep them alive, and the guard their environment), never copied.
pub(crate) fn source_of(env: &Env, chunks: Vec<Buffer>) -> WriteSource {
    let parts: Vec<(*const u8, usize)> = chunks.iter().map(|b| (b.as_ptr(), b.len())).collect();
    // The guard keeps the environment (whose teardown frees the Buffers
    // whoever references them) waiting until the owner is dropped.
    let owner = Box::new((chunks, lent::guard(env)));
    // SAFETY: each part points into a JS Buffer's backing store, which the
    // `Buffer` references in the owner keep alive and in place until it drops.
    unsafe { WriteSource::from_parts(owner, parts) }
}

/// Writes `chunks` in order at `position` (`-1`: at the current position,
/// as with O_APPEND) as one batch; `sync` 0 none, 1 fdatasync, 2 fsync after.
#[napi(catch_unwind, ts_return_type = "Promise<WriteResult>")]
pub fn writev<'env>(
    env: &'env Env,
    fd: i32,
    chunks: Vec<Buffer>,
    position: i64,
    sync: u32,
) -> Result<Object<'env>> {
    let engine = global()?.engine.clone();
    let src = source_of(env, chunks);
    let (offset, mode) = write_args(position, sync);
    let total = src.len();
    promise(env, async move {
        let out = batch_writer::write_all(&engine, fd, src, offset, mode).await;
        // The Buffers are released here, on the runtime; napi-rs hands the
        // release of their references back to the JS thread.
        drop(out.source);
        let (errno, syscall) = match &out.error {
            None => (0, String::new()),
            // Everything written and still an error: the sync failed.
            Some(e) if out.written == total => (neg_errno(e), "fsync".to_owned()),
            Some(e) => (neg_errno(e), "write".to_owned()),
        };
        WriteResult {
            written: out.written as f64,
            errno,
            syscall,
        }
    })
}

/// A pool buffer on its way to JS: becomes an external Buffer over the pool
/// memory, returned to the pool when collected.
pub(crate) struct JsPoolBuf(pub PoolBuf);

impl ToNapiValue for JsPoolBuf {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let env = Env::from_raw(env);
        let slice = to_js_buffer(&env, val.0)?;
        // SAFETY: env is the live environment napi-rs passed us.
        unsafe { ToNapiValue::to_napi_value(env.raw(), &slice) }
    }
}

/// Wraps a pool buffer as an external Buffer; the pool gets it back when the
/// Buffer is collected. V8 counts external ArrayBuffer memory towards its
/// GC triggers by itself (measured: the pool stays near 100 MiB over 8 GiB
/// of 1 MiB chunks), so no napi_adjust_external_memory here: reporting it
/// again doubled the GC work and cost about 10% of throughput.
///
/// A buffer lent by a JS Buffer ([`lend_js_buffer`]) comes back as that
/// Buffer when the read filled it, or else as a copy of the bytes read (as
/// fs copies a short read, so that a few bytes do not keep a whole chunk).
pub(crate) fn to_js_buffer<'env>(env: &'env Env, buf: PoolBuf) -> Result<BufferSlice<'env>> {
    if buf.is_empty() {
        return BufferSlice::from_data(env, Vec::new());
    }
    let lent = match buf.into_raw() {
        Ok(raw) => return external_pool_buffer(env, raw),
        Err(lent) => lent,
    };
    if lent.len() < lent.capacity() {
        return BufferSlice::copy_from(env, &lent[..]);
    }
    let Ok((lender, _)) = lent.into_lender() else {
        return Err(Error::new(Status::GenericFailure, "lent buffer expected"));
    };
    let Ok(js) = lender.downcast::<LentJsBuffer>() else {
        return Err(Error::new(
            Status::GenericFailure,
            "buffer lent by an unknown owner",
        ));
    };
    // The kernel is done with it: JavaScript has it back (the guard goes).
    let LentJsBuffer { buffer, .. } = *js;
    // SAFETY: env is the live environment of the JS thread this runs on;
    // the Buffer's reference is turned back into its value and deleted.
    unsafe {
        let value = Buffer::to_napi_value(env.raw(), buffer)?;
        BufferSlice::from_napi_value(env.raw(), value)
    }
}

/// An external Buffer over `len` bytes of a pool block from `into_raw`.
fn external_pool_buffer<'env>(
    env: &'env Env,
    (ptr, len, cap): (NonNull<u8>, usize, usize),
) -> Result<BufferSlice<'env>> {
    let addr = ptr.as_ptr() as usize;
    // The finalizer is the only code that gives the block back, exactly
    // once, after the Buffer is collected (or at once if Node copies it).
    // SAFETY: ptr/len are `len` initialised bytes of a pool block that was
    // just taken out of its PoolBuf and that nothing else references.
    unsafe {
        BufferSlice::from_external(env, ptr.as_ptr(), len, (addr, len, cap), |_, (a, l, c)| {
            if let Some(p) = NonNull::new(a as *mut u8) {
                // SAFETY: (a, l, c) came from one into_raw call.
                drop(PoolBuf::from_raw(p, l, c));
            }
        })
    }
}

/// A JS Buffer lent to the kernel: held by reference, and counted until the
/// kernel is done with it (see `crate::lent`).
struct LentJsBuffer {
    buffer: Buffer,
    _guard: LentGuard,
}

/// A new JS Buffer of `size` bytes (uninitialised, as `allocUnsafeSlow`),
/// lent for a read to fill: held by reference until it comes back through
/// [`to_js_buffer`] (or is dropped), so it outlives any read into it.
pub(crate) fn lend_js_buffer(env: &Env, size: usize) -> Result<PoolBuf> {
    let mut data = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    // SAFETY: env is the live environment of this call; both out-pointers
    // point to locals.
    let status = unsafe { napi::sys::napi_create_buffer(env.raw(), size, &mut data, &mut value) };
    if status != napi::sys::Status::napi_ok {
        return Err(Error::new(
            Status::GenericFailure,
            "could not allocate a Buffer",
        ));
    }
    let ptr = NonNull::new(data.cast::<u8>())
        .ok_or_else(|| Error::new(Status::GenericFailure, "empty Buffer"))?;
    // SAFETY: value is the Buffer just created in this environment.
    let js = unsafe { Buffer::from_napi_value(env.raw(), value)? };
    let lender = Box::new(LentJsBuffer {
        buffer: js,
        _guard: lent::guard(env),
    });
    // SAFETY: the Buffer's reference, owned by the lent PoolBuf, keeps its
    // `size` bytes in place (no JS code has it until to_js_buffer returns it).
    Ok(unsafe { PoolBuf::lent(lender, ptr, size) })
}

/// A large regular file, opened by `readFile` and left for JS to read into
/// a Buffer of its own (`readInto`) and to close.
#[napi(object)]
pub struct LargeFile {
    pub fd: i32,
    pub size: f64,
}

/// Reads a whole file: resolves with a Buffer, `{ errno, syscall }`, or,
/// for a regular file of 64 MiB or more, `{ fd, size }` with the file open.
#[napi(
    catch_unwind,
    ts_return_type = "Promise<Buffer | FileError | LargeFile>"
)]
pub fn read_file<'env>(env: &'env Env, path: Buffer, flags: i32) -> Result<Object<'env>> {
    let path = c_path(&path)?;
    let engine = global()?.engine.clone();
    let fds = lent::fds(env);
    promise(env, async move {
        match files::read_file_or_open(&engine, path, flags).await {
            Ok(Opened::Read(buf)) => Either3::A(JsPoolBuf(buf)),
            Ok(Opened::Large { fd, size }) => {
                // The environment's until JavaScript closes it (`close`).
                fds.adopt(fd);
                Either3::C(LargeFile {
                    fd,
                    size: size as f64,
                })
            }
            Err(e) => Either3::B(file_error(&e)),
        }
    })
}

/// Reads `size` bytes of `fd` from offset 0 into `target` (a Buffer of at
/// least that size, held by reference until every read has returned), in
/// parallel parts. Resolves with the count read (less at end of file) or
/// `{ errno, syscall }`.
#[napi(catch_unwind, ts_return_type = "Promise<number | FileError>")]
pub fn read_into<'env>(
    env: &'env Env,
    fd: i32,
    mut target: Buffer,
    size: f64,
) -> Result<Object<'env>> {
    let engine = global()?.engine.clone();
    let (ptr, cap) = (target.as_mut_ptr(), target.len());
    let size = (size.max(0.0) as usize).min(cap);
    // SAFETY: the Buffer (held by its napi reference inside the target) keeps
    // its memory allocated and in place; JS does not touch it until this
    // promise settles (lib/files.ts allocates it for this call alone).
    let target = unsafe { ReadTarget::from_raw(Box::new((target, lent::guard(env))), ptr, cap) };
    promise(env, async move {
        let (res, target) = read_parts::read_whole(&engine, fd, target, size).await;
        drop(target);
        match res {
            Ok(n) => Either::A(n as f64),
            Err(error) => Either::B(file_error(&OpError {
                syscall: Syscall::Read,
                error,
            })),
        }
    })
}

/// Writes a whole file (open, batch write, optional fsync, close): resolves
/// with `{ errno: 0, syscall: '' }` or the failure.
#[napi(catch_unwind, ts_return_type = "Promise<FileError>")]
pub fn write_file<'env>(
    env: &'env Env,
    path: Buffer,
    chunks: Vec<Buffer>,
    flags: i32,
    mode: u32,
    flush: bool,
) -> Result<Object<'env>> {
    let path = c_path(&path)?;
    let engine = global()?.engine.clone();
    let src = source_of(env, chunks);
    promise(env, async move {
        match files::write_file(&engine, path, flags, mode, src, flush).await {
            Ok(()) => FileError {
                errno: 0,
                syscall: String::new(),
            },
            Err(e) => file_error(&e),
        }
    })
}
