//! `NativeReadStream`: a core `ReadPump` seen from JavaScript.
//!
//! JavaScript calls `take()` from `_read`; it returns every chunk that is
//! ready, `null` at the end, or a negative errno. The chunks are Buffers
//! this object allocated on the JS thread and lent to the reads (the kernel
//! reads into them: no copy), with every take as many as the read-ahead
//! has room for; a read that found none lent filled pool memory, which
//! comes as an external Buffer. When nothing is ready it
//! arms `onReady`, which the pump calls once something is; the function is
//! referenced (keeps the event loop alive) only while armed. Opening and
//! destroying are one-off and answer with promises.

use std::ffi::CString;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Array, Buffer, Function, Null, Object};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Either, Env, Error, JsDeferred, Result, Status};
use napi_derive::napi;
use uring_fs_core::CURRENT_POSITION;
use uring_fs_core::{OwnedFds, PoolBuf, PumpOptions, ReadPump, ReaderOptions, Source};

use crate::engine::global;
use crate::errors::neg_errno;
use crate::file_ops::{lend_js_buffer, to_js_buffer};
use crate::lent;

type ReadyFn = ThreadsafeFunction<(), (), (), Status, false, true>;
type Resolver = Box<dyn FnOnce(Env) -> Result<i32> + Send>;
type Deferred = JsDeferred<i32, Resolver>;

/// The pieces of a stream before `start()`.
struct Pending {
    source: Source,
    opts: PumpOptions,
}

#[napi]
pub struct NativeReadStream {
    pending: Option<Pending>,
    pump: Option<ReadPump>,
    ready: Option<Arc<ReadyFn>>,
    /// `ready` is referenced because a take() armed it.
    armed: bool,
    destroyed: bool,
    /// Size of the Buffers lent to the reads (0: none lent).
    lend_size: usize,
    /// Registered to stop the reads if the environment goes away first
    /// (its Buffers are freed then, whoever holds them: `crate::lent`),
    /// and to close the descriptor the stream opened; kept until
    /// `destroy()`.
    teardown: Option<u64>,
    /// The stream opens its descriptor itself (from `path`), so it is the
    /// environment's to close if JavaScript does not: as Node closes what
    /// fs opened in a worker that ends.
    opens_fd: bool,
    /// That descriptor once open (-1 before, or if the open failed).
    fd: Arc<AtomicI32>,
    /// The environment's descriptors (`crate::lent::fds`), once started.
    fds: Option<Arc<OwnedFds>>,
}

fn settle(deferred: Deferred, value: i32) {
    deferred.resolve(Box::new(move |_| Ok(value)));
}

/// What a `NativeReadStream` reads, and how far ahead.
#[napi(object, object_to_js = false)]
pub struct NativeReadStreamOptions {
    /// The path to open (its bytes, no NUL) when no `fd` is given.
    pub path: Option<Buffer>,
    /// A descriptor to read instead of opening `path`; never closed here
    /// unless `destroy` is asked to.
    pub fd: Option<i32>,
    /// `open(2)` flags and mode for `path`.
    pub flags: i32,
    pub mode: u32,
    /// The first byte to read. Absent: 0, or the descriptor's current
    /// position when it has no offsets (a FIFO, a character device).
    pub start: Option<i64>,
    /// Read from the descriptor's current position, advancing it, one read
    /// at a time (how fs reads an `fd` given without `start`).
    pub at_current_position: bool,
    /// Where to stop, exclusive; absent: the end of the file. At the
    /// current position it counts bytes read.
    pub end: Option<i64>,
    /// Bytes per chunk (the stream's highWaterMark, at least 1).
    pub chunk_size: u32,
    /// Chunks read ahead of the consumer (reads in flight and chunks not
    /// yet taken, together), growing up to `growReadAheadTo` while the
    /// consumer keeps up.
    pub read_ahead: u32,
    pub grow_read_ahead_to: u32,
}

#[napi]
impl NativeReadStream {
    /// Reads `options.path` (opened with its `flags` and `mode`), or
    /// `options.fd`, as the options say; `onReady` is called once something
    /// is ready after a `take()` found nothing.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: NativeReadStreamOptions, on_ready: Function<'_, (), ()>) -> Result<Self> {
        let NativeReadStreamOptions {
            path,
            fd,
            flags,
            mode,
            start,
            at_current_position,
            end,
            chunk_size,
            read_ahead,
            grow_read_ahead_to,
        } = options;
        let ready = on_ready
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        let opens_fd = fd.is_none();
        let source = if let Some(fd) = fd {
            Source::Fd(fd)
        } else {
            let bytes = path
                .as_deref()
                .ok_or_else(|| Error::new(Status::InvalidArg, "path or fd required"))?;
            let c = CString::new(bytes.to_vec())
                .map_err(|_| Error::new(Status::InvalidArg, "path contains a NUL byte"))?;
            Source::Path(c, flags, mode)
        };
        let offset = |name: &str, v: i64| {
            u64::try_from(v)
                .map_err(|_| Error::new(Status::InvalidArg, format!("{name} must be >= 0")))
        };
        let opts = PumpOptions {
            reader: ReaderOptions {
                start: match start {
                    _ if at_current_position => CURRENT_POSITION,
                    Some(s) => offset("start", s)?,
                    None => 0,
                },
                end: end.map(|e| offset("end", e)).transpose()?,
                chunk_size: chunk_size.max(1) as usize,
                max_window: grow_read_ahead_to.max(read_ahead).max(1) as usize,
            },
            start_unless_stream: start.is_none() && !at_current_position,
            read_ahead: read_ahead.max(1) as usize,
            grow_read_ahead_to: grow_read_ahead_to as usize,
        };
        Ok(NativeReadStream {
            pending: Some(Pending { source, opts }),
            pump: None,
            ready: Some(Arc::new(ready)),
            armed: false,
            destroyed: false,
            lend_size: chunk_size.max(1) as usize,
            teardown: None,
            opens_fd,
            fd: Arc::new(AtomicI32::new(-1)),
            fds: None,
        })
    }

    /// Opens (unless given an fd) and starts reading ahead. Resolves with
    /// the descriptor, or `-errno` if the open failed.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn start<'env>(&mut self, env: &'env Env) -> Result<Object<'env>> {
        let g = global()?;
        let (deferred, promise) = env.create_deferred::<i32, Resolver>()?;
        let Some(Pending { source, opts }) = self.pending.take() else {
            return Err(Error::new(Status::GenericFailure, "stream already started"));
        };
        let deferred = Mutex::new(Some(deferred));
        let opened = self.fd.clone();
        let pump = ReadPump::start(
            g.rt.handle(),
            g.engine.clone(),
            source,
            opts,
            Box::new(move |res| {
                let value = match res {
                    Ok(fd) => {
                        opened.store(fd, Ordering::SeqCst);
                        fd
                    }
                    Err(e) => neg_errno(&e.error),
                };
                if let Some(d) = deferred.lock().ok().and_then(|mut d| d.take()) {
                    settle(d, value);
                }
            }),
        );
        // The first read fills a Buffer lent now; the next ones, Buffers
        // lent as chunks are taken.
        pump.lend(js_buffers(env, &mut self.lend_size, 1));
        self.fds = Some(lent::fds(env));
        // At teardown: the reads stop (their Buffers come back before the
        // isolate frees them), and the pump closes the descriptor it
        // opened once they have. Nothing happens if JavaScript destroyed
        // the stream first (only the first destroy counts): that one's
        // callback hands the descriptor to the environment instead.
        let stop = pump.clone();
        let close_fd = self.opens_fd;
        self.teardown = Some(lent::on_teardown(
            env,
            Box::new(move || {
                drop(stop.reclaim());
                stop.destroy(close_fd, Box::new(|_| {}));
            }),
        ));
        self.pump = Some(pump);
        Ok(promise)
    }

    /// Every ready chunk (an array, empty when `onReady` will follow), `null`
    /// at the end of the range, or `-errno` if reading failed.
    #[napi(catch_unwind, ts_return_type = "Buffer[] | null | number")]
    pub fn take<'env>(&mut self, env: &'env Env) -> Result<Either<Array<'env>, Either<Null, i32>>> {
        let (Some(pump), Some(ready)) = (self.pump.as_ref(), self.ready.as_ref()) else {
            return Ok(Either::A(env.create_array(0)?));
        };
        let cb_ready = ready.clone();
        let lend_size = &mut self.lend_size;
        let taken = pump.take_lending(
            move || {
                Box::new(move || {
                    // A failure means the function was released: nobody
                    // listens.
                    let _ = cb_ready.call((), ThreadsafeFunctionCallMode::NonBlocking);
                })
            },
            |n| js_buffers(env, lend_size, n),
        );
        let want_ref = taken.chunks.is_empty() && taken.end.is_none();
        if want_ref != self.armed {
            // SAFETY: called on the JS thread (this is a JS method) with a
            // live threadsafe function owned by self.
            let status = unsafe {
                if want_ref {
                    napi::sys::napi_ref_threadsafe_function(env.raw(), ready.raw())
                } else {
                    napi::sys::napi_unref_threadsafe_function(env.raw(), ready.raw())
                }
            };
            if status == napi::sys::Status::napi_ok {
                self.armed = want_ref;
            }
        }
        if let Some(end) = taken.end {
            self.end_lending();
            return Ok(Either::B(match end {
                Ok(()) => Either::A(Null),
                Err(e) => Either::B(neg_errno(&e.error)),
            }));
        }
        let mut arr = env.create_array(taken.chunks.len() as u32)?;
        for (i, chunk) in taken.chunks.into_iter().enumerate() {
            arr.set(i as u32, to_js_buffer(env, chunk)?)?;
        }
        Ok(Either::A(arr))
    }

    /// Stops reading, waits for the kernel to return every read in flight,
    /// closes the descriptor when `close_fd`, then resolves with 0 or the
    /// close's `-errno`. Without `close_fd`, a descriptor the stream opened
    /// is the environment's until JavaScript takes it to close
    /// (`releaseFd`): closed at teardown should the environment go first.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn destroy<'env>(&mut self, env: &'env Env, close_fd: bool) -> Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<i32, Resolver>()?;
        self.release();
        if !self.destroyed {
            self.end_lending();
            self.forget_teardown();
        }
        let hand_over = self.hand_over(close_fd);
        match self.pump.as_ref() {
            Some(pump) if !self.destroyed => {
                self.destroyed = true;
                pump.destroy(
                    close_fd,
                    Box::new(move |res| {
                        hand_over();
                        settle(
                            deferred,
                            match res {
                                Ok(()) => 0,
                                Err(e) => neg_errno(&e.error),
                            },
                        )
                    }),
                );
            }
            _ => settle(deferred, 0),
        }
        Ok(promise)
    }

    /// Lets go of `onReady`: no more events, nothing kept alive.
    #[napi(catch_unwind)]
    pub fn release(&mut self) {
        self.ready = None;
        self.armed = false;
    }
}

/// `n` new Buffers of `size` bytes to lend to the reads. The chunks then
/// come to JavaScript as Buffers V8 allocated, which die young (in a
/// scavenge); an external Buffer over pool memory is held by a weak handle
/// that keeps it until a full GC: with 1 MiB chunks, 10-16 mark-compacts
/// per GiB and 130-300 MiB of chunks waiting for them. A failed allocation
/// stops lending (`size` becomes 0): the reads then use pool buffers.
fn js_buffers(env: &Env, size: &mut usize, n: usize) -> Vec<PoolBuf> {
    let mut bufs = Vec::with_capacity(n);
    while *size > 0 && bufs.len() < n {
        match lend_js_buffer(env, *size) {
            Ok(b) => bufs.push(b),
            Err(_) => *size = 0,
        }
    }
    bufs
}

impl NativeReadStream {
    /// The reads need no more Buffers: those lent and not in use are
    /// released here, on the JS thread (any still in flight keep their
    /// guards: `crate::lent`).
    fn end_lending(&mut self) {
        if let Some(pump) = self.pump.as_ref() {
            drop(pump.reclaim());
        }
    }

    /// Teardown has nothing to stop: the stream is destroyed.
    fn forget_teardown(&mut self) {
        if let Some(id) = self.teardown.take() {
            lent::forget(id);
        }
    }

    /// What a destroy that leaves the descriptor open does once the reads
    /// are back (on the runtime): a descriptor the stream opened goes to the
    /// environment's table, closed at teardown unless JavaScript releases
    /// it first to close it itself (or, the environment gone, closed now).
    fn hand_over(&self, close_fd: bool) -> impl FnOnce() + Send + 'static {
        let table = self.fds.clone().filter(|_| self.opens_fd && !close_fd);
        let fd = self.fd.clone();
        move || {
            if let Some(table) = table {
                table.adopt(fd.load(Ordering::SeqCst));
            }
        }
    }
}

impl Drop for NativeReadStream {
    fn drop(&mut self) {
        // Collected without destroy(): stop the pump so that its reads come
        // back and its buffers return to the pool. Like an fs stream that is
        // never destroyed, the descriptor is left open: until the
        // environment ends (a worker's), as fs's is.
        self.end_lending();
        self.forget_teardown();
        if let (Some(pump), false) = (self.pump.as_ref(), self.destroyed) {
            let hand_over = self.hand_over(false);
            pump.destroy(false, Box::new(move |_| hand_over()));
        }
    }
}
