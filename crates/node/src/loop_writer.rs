//! Write streams' batches on the JavaScript thread's own ring
//! ([`LoopRing`]): submitted from the JavaScript call, completed by libuv
//! watching the ring's eventfd, each callback called straight from that
//! watch. No runtime thread is woken on the way; see `loop_ring` for why
//! that is most of a backpressured stream's time.
//!
//! One ring per JavaScript thread (each worker thread has its own loop),
//! set up on first use and torn down by an environment cleanup hook, which
//! waits for the kernel to be done with every write still out.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::ptr;

use napi::sys;
use napi::Env;
use uring_fs_core::batch_writer::Sync;
use uring_fs_core::uring::loop_ring::LoopRing;
use uring_fs_core::WriteSource;

use crate::engine::global;

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

struct LoopWriter {
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
    /// This thread's writer; `Err` once it could not be set up (the thread
    /// then uses the engine).
    static WRITER: RefCell<Option<Result<LoopWriter, ()>>> = const { RefCell::new(None) };
}

/// Starts writing `src` at `offset`, then syncing as `sync` says, and calls
/// `on_done([written, errno])` on this thread when the kernel is done.
/// Gives the source back when this thread has no ring to write it with.
pub(crate) fn write(
    env: &Env,
    fd: i32,
    src: WriteSource,
    offset: u64,
    sync: Sync,
    on_done: sys::napi_value,
) -> Result<(), WriteSource> {
    WRITER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(LoopWriter::start(env.raw()));
        }
        let Some(Ok(w)) = slot.as_mut() else {
            return Err(src);
        };
        let mut callback = ptr::null_mut();
        // SAFETY: env is this thread's live environment and on_done a value
        // of the current call.
        if unsafe { sys::napi_create_reference(w.env, on_done, 1, &mut callback) }
            != sys::Status::napi_ok
        {
            return Err(src);
        }
        match w.ring.write(fd, src, offset, sync) {
            Ok(id) => {
                w.callbacks.insert(id, callback);
                w.set_ref(true);
                Ok(())
            }
            Err(src) => {
                // SAFETY: the reference was made just above and is unused.
                unsafe { sys::napi_delete_reference(w.env, callback) };
                Err(src)
            }
        }
    })
}

impl LoopWriter {
    fn start(env: sys::napi_env) -> Result<LoopWriter, ()> {
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
        // SAFETY: env is live; the hook runs on this thread before the
        // environment (and its loop) goes away.
        unsafe { sys::napi_add_env_cleanup_hook(env, Some(cleanup), ptr::null_mut()) };
        Ok(LoopWriter {
            ring,
            env,
            handle,
            callbacks: HashMap::new(),
            referenced: false,
        })
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
    let reaped = WRITER.with(|cell| {
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
    for (callback, outcome) in calls {
        // The JS Buffers written from are released here, on their thread.
        drop(outcome.source);
        let errno = match &outcome.error {
            None => 0,
            Some(e) => -e.raw_os_error().unwrap_or(libc::EIO),
        };
        if let Some(callback) = callback {
            call(env, callback, outcome.written as f64, errno);
        }
    }
}

/// Calls `callback([written, errno])` as Node calls an I/O callback (its
/// microtasks run after it; a throw becomes an uncaught exception), then
/// drops the reference.
fn call(env: sys::napi_env, callback: sys::napi_ref, written: f64, errno: i32) {
    // SAFETY: on the JS thread, outside any other napi call, with env live
    // (the cleanup hook has not run: it empties WRITER first); every value
    // made here lives in the handle scope opened here.
    unsafe {
        let mut scope = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return;
        }
        let mut func = ptr::null_mut();
        let mut recv = ptr::null_mut();
        let mut arr = ptr::null_mut();
        let mut a = ptr::null_mut();
        let mut b = ptr::null_mut();
        let ok = sys::napi_get_reference_value(env, callback, &mut func) == sys::Status::napi_ok
            && !func.is_null()
            // napi_make_callback wants an object as `this`.
            && sys::napi_get_global(env, &mut recv) == sys::Status::napi_ok
            && sys::napi_create_array_with_length(env, 2, &mut arr) == sys::Status::napi_ok
            && sys::napi_create_double(env, written, &mut a) == sys::Status::napi_ok
            && sys::napi_create_int32(env, errno, &mut b) == sys::Status::napi_ok
            && sys::napi_set_element(env, arr, 0, a) == sys::Status::napi_ok
            && sys::napi_set_element(env, arr, 1, b) == sys::Status::napi_ok;
        sys::napi_delete_reference(env, callback);
        if ok {
            let args = [arr];
            let mut result = ptr::null_mut();
            let status = sys::napi_make_callback(
                env,
                ptr::null_mut(),
                recv,
                func,
                1,
                args.as_ptr(),
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
/// drop the ring, which waits until the kernel is done with every write.
extern "C" fn cleanup(_arg: *mut c_void) {
    let writer = WRITER.with(|cell| cell.borrow_mut().take());
    let Some(Ok(w)) = writer else { return };
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
    // SAFETY: size matches the allocation in LoopWriter::start.
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
