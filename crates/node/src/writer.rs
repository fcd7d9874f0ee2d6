//! `NativeWriter`: the batch writes of one write stream. On io_uring they go
//! to the JavaScript thread's own ring ([`crate::loop_ops`]: no thread
//! hand-off either way); otherwise to the engine, answered through one
//! threadsafe function made with the stream (a promise per write would make,
//! and tear down, a threadsafe function and its libuv handle per chunk).

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::JsValue;
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use uring_fs_core::stream::batch_writer::{self, OwnPosition};

use crate::engine::global;
use crate::errors::neg_errno_or_zero;
use crate::file_ops::{source_of, write_args, CatchUnwind};

/// `[written, errno]`: bytes of the batch now in the file, and 0 or `-errno`.
type DoneFn = ThreadsafeFunction<(f64, i32), (), (f64, i32), Status, false, true>;

#[napi]
pub struct NativeWriter {
    fd: i32,
    /// None once released.
    done: Option<Arc<DoneFn>>,
    /// `done` is referenced (keeps the event loop alive) while a write is out.
    referenced: bool,
    /// `onDone` itself (a strong reference, deleted by `release`), for
    /// writes on the JavaScript thread's ring.
    on_done: Option<(napi::sys::napi_env, napi::sys::napi_ref)>,
    /// The stream opened `fd` itself, so nobody else moves its position:
    /// writes at the current position go where this says.
    position: Option<OwnPosition>,
}

#[napi]
impl NativeWriter {
    /// A writer for `fd`; `onDone([written, errno])` is called once per write.
    /// `ownsFd`: the stream opened `fd` and is its only user, so writes at
    /// the current position may go at offsets the writer tracks (a failed
    /// write ends the stream, so the tracked position is never reused).
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: &Env,
        fd: i32,
        on_done: Function<'_, (f64, i32), ()>,
        owns_fd: bool,
    ) -> Result<Self> {
        let mut on_done_ref = std::ptr::null_mut();
        // SAFETY: env is the live environment of this call and on_done one
        // of its values.
        let made = unsafe {
            napi::sys::napi_create_reference(env.raw(), on_done.raw(), 1, &mut on_done_ref)
        };
        let on_done_ref = (made == napi::sys::Status::napi_ok).then_some((env.raw(), on_done_ref));
        let done = on_done
            .build_threadsafe_function::<(f64, i32)>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        Ok(NativeWriter {
            fd,
            done: Some(Arc::new(done)),
            referenced: false,
            on_done: on_done_ref,
            position: owns_fd.then(OwnPosition::default),
        })
    }

    /// Writes `chunks` in order at `position` (`-1`: the current position)
    /// as one batch, then syncs (`sync` 1: fdatasync, 2: fsync). The Buffers
    /// are held, not copied, until the kernel is done with them.
    #[napi(catch_unwind)]
    pub fn write(
        &mut self,
        env: &Env,
        chunks: Vec<Buffer>,
        position: i64,
        sync: u32,
    ) -> Result<()> {
        let Some(done) = self.done.clone() else {
            return Err(Error::new(Status::GenericFailure, "writer released"));
        };
        let g = global()?;
        let engine = g.engine.clone();
        let src = source_of(env, chunks);
        let (mut offset, mode) = write_args(position, sync);
        let fd = self.fd;
        if let Some(position) = self.position.as_mut() {
            offset = position.place(fd, offset, src.len());
        }
        #[cfg(all(target_os = "linux", feature = "io-uring"))]
        let src = match &self.on_done {
            Some((_, f)) => {
                let mut value = std::ptr::null_mut();
                // SAFETY: f is a live reference made on this env (deleted
                // only by release, after which on_done is None).
                unsafe { napi::sys::napi_get_reference_value(env.raw(), *f, &mut value) };
                match crate::loop_ops::write(env, fd, src, offset, mode, value) {
                    Ok(()) => return Ok(()),
                    Err(src) => src,
                }
            }
            None => src,
        };
        self.set_ref(env, true);
        g.rt.spawn(async move {
            let write = async move {
                let out = batch_writer::write_all(&engine, fd, src, offset, mode).await;
                // The Buffers are released here; napi-rs hands the release
                // of their references back to the JS thread.
                drop(out.source);
                let errno = neg_errno_or_zero(out.error.as_ref());
                (out.written, errno)
            };
            // A panic must not leave the stream waiting: report it as EIO
            // with nothing counted as written.
            let (written, errno) = CatchUnwind(Box::pin(write))
                .await
                .unwrap_or((0, -libc::EIO));
            // Fails only once released, when nobody listens any more.
            let _ = done.call(
                (written as f64, errno),
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        });
        Ok(())
    }

    /// JavaScript got a write's result: nothing is out, so this writer need
    /// not keep the event loop alive.
    #[napi(catch_unwind)]
    pub fn settled(&mut self, env: &Env) {
        self.set_ref(env, false);
    }

    /// Lets go of `onDone` once the stream is done with the writer: breaks
    /// the cycle JS function -> stream -> writer -> function.
    #[napi(catch_unwind)]
    pub fn release(&mut self) {
        self.done = None;
        self.referenced = false;
        if let Some((env, f)) = self.on_done.take() {
            // SAFETY: made on this env by the constructor, deleted once, here,
            // on the JS thread (release is a JS method).
            unsafe { napi::sys::napi_delete_reference(env, f) };
        }
    }
}

impl NativeWriter {
    fn set_ref(&mut self, env: &Env, on: bool) {
        let Some(done) = self.done.as_ref() else {
            return;
        };
        if self.referenced == on {
            return;
        }
        // SAFETY: called on the JS thread (from a JS method) with a live
        // threadsafe function owned by self.
        let status = unsafe {
            if on {
                napi::sys::napi_ref_threadsafe_function(env.raw(), done.raw())
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), done.raw())
            }
        };
        if status == napi::sys::Status::napi_ok {
            self.referenced = on;
        }
    }
}
