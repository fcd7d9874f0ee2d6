//! Operations on the JavaScript thread's own ring ([`LoopRing`]): write
//! streams' batches and `readFile`'s small files, submitted from the
//! JavaScript call, completed by libuv watching the ring's eventfd, each
//! callback called straight from that watch. No runtime thread is woken on
//! the way; see `loop_ring` for why that is most of a backpressured stream's
//! time (and of a small file's).
//!
//! One ring per JavaScript thread (each worker thread has its own loop),
//! set up on first use and torn down with its environment (a stopper of
//! `crate::lent`'s cleanup hook, run before that hook waits for lent
//! memory), waiting for the kernel to be done with every write still out.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::ptr;

use std::ffi::CString;

use napi::bindgen_prelude::{Buffer, Function, ToNapiValue};
use napi::{sys, Env, JsValue, Result};
use napi_derive::napi;
use uring_fs_core::SyncMode;
use uring_fs_core::{LoopDone as Done, LoopRing};
use uring_fs_core::{PoolBuf, WriteSource};

use crate::engine::global;
use crate::errors::{neg_errno, neg_errno_or_zero};
use crate::file_ops::{c_path, JsPoolBuf};
use crate::lent;

// libuv, as exported by the node binary that loaded this addon.
extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_poll_init(lp: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(
        handle: *mut c_void,
        events: c_int,
        cb: extern "C" fn(*mut c_void, c_int, c_int),
    ) -> c_int;
    fn uv_poll_stop(handle: *mut c_void) -> c_int;
    fn uv_close(handle: *mut c_void, cb: Option<extern "C" fn(*mut c_void)>);
    fn uv_ref(handle: *mut c_void);
    fn uv_unref(handle: *mut c_void);
}

/// `UV_POLL` in libuv's `uv_handle_type` (stable since libuv 1.0).
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;

struct JsRing {
    ring: LoopRing,
    env: sys::napi_env,
    /// The `uv_poll_t` (a block of `uv_handle_size(UV_POLL)` bytes).
    handle: *mut c_void,
    /// Each job's callback, referenced until it is called.
    callbacks: HashMap<usize, sys::napi_ref>,
    /// The handle keeps the loop alive (only while writes are out).
    referenced: bool,
}

thread_local! {
    /// This thread's ring; `Err` once it could not be set up (the thread
    /// then uses the engine).
    static RING: RefCell<Option<std::result::Result<JsRing, ()>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's ring, set up on first use; `None` when the
/// thread has none (the fallback backend, or no ring to be had).
fn with_ring<R>(env: &Env, f: impl FnOnce(&mut JsRing) -> R) -> Option<R> {
    RING.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(JsRing::start(env.raw()));
        }
        match slot.as_mut() {
            Some(Ok(w)) => Some(f(w)),
            _ => None,
        }
    })
}

/// Starts writing `src` at `offset`, then syncing as `sync` says, and calls
/// `on_done([written, errno])` on this thread when the kernel is done.
/// Gives the source back when this thread has no ring to write it with.
pub(crate) fn write(
    env: &Env,
    fd: i32,
    src: WriteSource,
    offset: u64,
    sync: SyncMode,
    on_done: sys::napi_value,
) -> std::result::Result<(), WriteSource> {
    let mut src = Some(src);
    let queued = with_ring(env, |w| {
        let Some(callback) = w.reference(on_done) else {
            return false;
        };
        let Some(s) = src.take() else { return false };
        match w.ring.write(fd, s, offset, sync) {
            Ok(id) => w.queued(id, callback),
            Err(s) => {
                src = Some(s);
                w.unreference(callback);
                false
            }
        }
    });
    match (queued, src) {
        (Some(true), _) => Ok(()),
        (_, Some(src)) => Err(src),
        // Unreachable: the source is only taken when it is queued.
        (_, None) => Ok(()),
    }
}

/// Reads the file at `path` (opened with `flags`) whole on this thread's
/// ring if it is a regular file up to 8 MiB, then calls `onDone(errno,
/// syscall, contents)`: `0, '', Buffer` with the contents; `-errno, 'open' |
/// 'read'` when it failed; `1` when it must be read the general way (not a
/// regular file, larger, or a stat that failed). Returns false, calling
/// nothing, when this thread has no ring (or no room) for it.
#[napi(
    catch_unwind,
    ts_args_type = "path: Buffer, flags: number, onDone: (errno: number, syscall: string, contents?: Buffer) => void"
)]
pub fn read_small_file(
    env: &Env,
    path: Buffer,
    flags: i32,
    on_done: Function<'_, (i32, String, Option<Buffer>), ()>,
) -> Result<bool> {
    let path: CString = c_path(&path)?;
    let queued = with_ring(env, |w| {
        let Some(callback) = w.reference(on_done.raw()) else {
            return false;
        };
        match w.ring.read_small(path, flags) {
            Ok(id) => w.queued(id, callback),
            Err(_) => {
                w.unreference(callback);
                false
            }
        }
    });
    Ok(queued == Some(true))
}

impl JsRing {
    fn start(env: sys::napi_env) -> std::result::Result<JsRing, ()> {
        let engine = global().map_err(|_| ())?.engine.clone();
        let ring = engine.loop_ring().map_err(|_| ())?;
        let mut lp = ptr::null_mut();
        // SAFETY: env is this thread's live environment.
        if unsafe { sys::napi_get_uv_event_loop(env, &mut lp) } != sys::Status::napi_ok
            || lp.is_null()
        {
            return Err(());
        }
        // SAFETY: uv_handle_size only reads its argument.
        let size = unsafe { uv_handle_size(UV_POLL) };
        // A zeroed block of that size, 8-byte aligned (libuv's handles hold
        // pointers); freed by `on_closed` once libuv is done with it.
        let handle =
            Box::into_raw(vec![0u64; size.div_ceil(8)].into_boxed_slice()).cast::<c_void>();
        // SAFETY: lp is this thread's loop, handle a block of the size libuv
        // asked for, and the eventfd stays open as long as the ring, which
        // the cleanup hook drops only after closing the handle.
        let started = unsafe {
            uv_poll_init(lp.cast(), handle, ring.eventfd()) == 0
                && uv_poll_start(handle, UV_READABLE, on_readable) == 0
        };
        if !started {
            // Never initialised or start failed: in both cases libuv holds
            // no pointer to it once closed; leak rather than risk a free.
            return Err(());
        }
        // SAFETY: handle was initialised above.
        unsafe { uv_unref(handle) };
        // Torn down with the environment, by its one cleanup hook, before
        // that waits for lent memory (`crate::lent`): the writes here hold
        // some, and nothing else would reap them once the hook runs.
        lent::on_teardown(&Env::from_raw(env), Box::new(teardown));
        Ok(JsRing {
            ring,
            env,
            handle,
            callbacks: HashMap::new(),
            referenced: false,
        })
    }

    /// A reference to `callback`, held until it is called.
    fn reference(&self, callback: sys::napi_value) -> Option<sys::napi_ref> {
        let mut r = ptr::null_mut();
        // SAFETY: env is this thread's live environment and callback a value
        // of the current call.
        let made = unsafe { sys::napi_create_reference(self.env, callback, 1, &mut r) };
        (made == sys::Status::napi_ok).then_some(r)
    }

    fn unreference(&self, callback: sys::napi_ref) {
        // SAFETY: made by `reference` on this env and not handed to a job.
        unsafe { sys::napi_delete_reference(self.env, callback) };
    }

    /// Job `id` is out: its callback is kept, and the loop kept alive.
    fn queued(&mut self, id: usize, callback: sys::napi_ref) -> bool {
        self.callbacks.insert(id, callback);
        self.set_ref(true);
        true
    }

    fn set_ref(&mut self, on: bool) {
        if self.referenced != on {
            // SAFETY: handle is an initialised, open uv_poll_t of this thread.
            unsafe {
                if on {
                    uv_ref(self.handle)
                } else {
                    uv_unref(self.handle)
                }
            }
            self.referenced = on;
        }
    }
}

/// libuv: the eventfd is readable. Reaps, then calls each finished job's
/// callback with no borrow held (a callback may start the next write).
extern "C" fn on_readable(_handle: *mut c_void, _status: c_int, _events: c_int) {
    let reaped = RING.with(|cell| {
        let mut slot = cell.borrow_mut();
        let Some(Ok(w)) = slot.as_mut() else {
            return None;
        };
        let finished = w.ring.reap();
        let calls: Vec<_> = finished
            .into_iter()
            .map(|(id, outcome)| (w.callbacks.remove(&id), outcome))
            .collect();
        if w.ring.active() == 0 {
            w.set_ref(false);
        }
        Some((w.env, calls))
    });
    let Some((env, calls)) = reaped else { return };
    for (callback, done) in calls {
        let Some(callback) = callback else { continue };
        match done {
            Done::Write(outcome) => {
                // The JS Buffers written from are released here, on their
                // thread.
                drop(outcome.source);
                let errno = neg_errno_or_zero(outcome.error.as_ref());
                let written = outcome.written as f64;
                call(env, callback, |env| write_args(env, written, errno));
            }
            Done::Read(read) => call(env, callback, |env| read_args(env, read)),
        }
    }
}

/// `[written, errno]`, as one array (what write streams' `onDone` takes).
fn write_args(env: sys::napi_env, written: f64, errno: i32) -> Option<Vec<sys::napi_value>> {
    let (mut arr, mut a, mut b) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: called by `call`, inside its handle scope on the JS thread.
    let ok = unsafe {
        sys::napi_create_array_with_length(env, 2, &mut arr) == sys::Status::napi_ok
            && sys::napi_create_double(env, written, &mut a) == sys::Status::napi_ok
            && sys::napi_create_int32(env, errno, &mut b) == sys::Status::napi_ok
            && sys::napi_set_element(env, arr, 0, a) == sys::Status::napi_ok
            && sys::napi_set_element(env, arr, 1, b) == sys::Status::napi_ok
    };
    ok.then(|| vec![arr])
}

/// Below this size a file's contents are copied into a Buffer of V8's own
/// (no finalizer to run); from it, the block is handed over as an external
/// Buffer (no copy).
const COPY_BELOW: usize = 32 * 1024;

/// `errno, syscall, contents` for `read_small_file`'s callback.
fn read_args(
    env: sys::napi_env,
    read: std::result::Result<Option<PoolBuf>, uring_fs_core::OpError>,
) -> Option<Vec<sys::napi_value>> {
    let (code, syscall, contents): (i32, &str, Option<PoolBuf>) = match read {
        Ok(Some(buf)) => (0, "", Some(buf)),
        Ok(None) => (1, "", None),
        Err(e) => (neg_errno(&e.error), e.syscall.name(), None),
    };
    let (mut a, mut b, mut c) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: called by `call`, inside its handle scope on the JS thread;
    // the bytes copied are valid for their length during the copy.
    let ok = unsafe {
        sys::napi_create_int32(env, code, &mut a) == sys::Status::napi_ok
            && sys::napi_create_string_utf8(
                env,
                syscall.as_ptr().cast(),
                syscall.len() as isize,
                &mut b,
            ) == sys::Status::napi_ok
    };
    if !ok {
        return None;
    }
    c = match contents {
        Some(buf) if buf.len() >= COPY_BELOW => {
            // SAFETY: env is the live environment of this callback.
            unsafe { JsPoolBuf::to_napi_value(env, JsPoolBuf(buf)) }.ok()?
        }
        Some(buf) => {
            let mut data = ptr::null_mut();
            // SAFETY: as above; `buf` is valid for its length.
            let made = unsafe {
                sys::napi_create_buffer_copy(env, buf.len(), buf.as_ptr().cast(), &mut data, &mut c)
            };
            (made == sys::Status::napi_ok).then_some(c)?
        }
        None => {
            // SAFETY: as above.
            let made = unsafe { sys::napi_get_undefined(env, &mut c) };
            (made == sys::Status::napi_ok).then_some(c)?
        }
    };
    Some(vec![a, b, c])
}

/// Calls `callback(...args(env))` as Node calls an I/O callback (its
/// microtasks run after it; a throw becomes an uncaught exception), then
/// drops the reference.
fn call(
    env: sys::napi_env,
    callback: sys::napi_ref,
    args: impl FnOnce(sys::napi_env) -> Option<Vec<sys::napi_value>>,
) {
    // SAFETY: on the JS thread, outside any other napi call, with env live
    // (the cleanup hook has not run: it empties RING first); every value
    // made here lives in the handle scope opened here.
    unsafe {
        let mut scope = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return;
        }
        let mut func = ptr::null_mut();
        let mut recv = ptr::null_mut();
        let ok = sys::napi_get_reference_value(env, callback, &mut func) == sys::Status::napi_ok
            && !func.is_null()
            // napi_make_callback wants an object as `this`.
            && sys::napi_get_global(env, &mut recv) == sys::Status::napi_ok;
        sys::napi_delete_reference(env, callback);
        if let (true, Some(argv)) = (ok, args(env)) {
            let mut result = ptr::null_mut();
            let status = sys::napi_make_callback(
                env,
                ptr::null_mut(),
                recv,
                func,
                argv.len(),
                argv.as_ptr(),
                &mut result,
            );
            if status == sys::Status::napi_pending_exception {
                let mut err = ptr::null_mut();
                if sys::napi_get_and_clear_last_exception(env, &mut err) == sys::Status::napi_ok {
                    sys::napi_fatal_exception(env, err);
                }
            }
        }
        sys::napi_close_handle_scope(env, scope);
    }
}

/// The environment is going away: stop watching, close the handle, and
/// drop the ring, which waits until the kernel is done with every write
/// (cancelling what does not finish: `LoopRing`'s drop).
fn teardown() {
    let ring = RING.with(|cell| cell.borrow_mut().take());
    let Some(Ok(w)) = ring else { return };
    // SAFETY: handle is an initialised uv_poll_t of this thread's loop,
    // closed once, here; `on_closed` frees it.
    unsafe {
        uv_poll_stop(w.handle);
        uv_close(w.handle, Some(on_closed));
    }
    for (_, callback) in w.callbacks {
        // SAFETY: each reference was made on this env and not yet deleted.
        unsafe { sys::napi_delete_reference(w.env, callback) };
    }
    drop(w.ring);
}

/// libuv is done with the handle: free its block.
extern "C" fn on_closed(handle: *mut c_void) {
    // SAFETY: size matches the allocation in JsRing::start.
    let size = unsafe { uv_handle_size(UV_POLL) };
    // SAFETY: handle came from Box::into_raw of a boxed [u64] slice of
    // size.div_ceil(8) elements, and libuv no longer uses it.
    drop(unsafe {
        Box::from_raw(ptr::slice_from_raw_parts_mut(
            handle.cast::<u64>(),
            size.div_ceil(8),
        ))
    });
}
