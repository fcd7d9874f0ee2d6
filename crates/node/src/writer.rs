//! `NativeWriter`: the batch writes of one write stream, answered through
//! one threadsafe function made with the stream. A promise per write would
//! make (and tear down) a threadsafe function and its libuv handle for every
//! chunk written.

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use uring_fs_core::batch_writer;

use crate::engine::global;
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
}

#[napi]
impl NativeWriter {
    /// A writer for `fd`; `onDone([written, errno])` is called once per write.
    #[napi(constructor, catch_unwind)]
    pub fn new(fd: i32, on_done: Function<'_, (f64, i32), ()>) -> Result<Self> {
        let done = on_done
            .build_threadsafe_function::<(f64, i32)>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        Ok(NativeWriter {
            fd,
            done: Some(Arc::new(done)),
            referenced: false,
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
        let src = source_of(chunks);
        let (offset, mode) = write_args(position, sync);
        let fd = self.fd;
        self.set_ref(env, true);
        g.rt.spawn(async move {
            let write = async move {
                let out = batch_writer::write_all(&engine, fd, src, offset, mode).await;
                // The Buffers are released here; napi-rs hands the release
                // of their references back to the JS thread.
                drop(out.source);
                let errno = match &out.error {
                    None => 0,
                    Some(e) => -e.raw_os_error().unwrap_or(libc::EIO),
                };
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
