//! Binding of `uring_fs_core::batch::write_files`: paths and data Buffers in, one
//! array of results out, in one crossing each way.

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Object, ToNapiValue};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use uring_fs_core::batch::write_files;
use uring_fs_core::WriteSource;

use crate::engine::global;
use crate::errors::{file_error, FileError};
use crate::file_ops::{c_path, promise};
use crate::lent;

/// The data Buffers of one call, shared by every file's source.
type Keep = Arc<Vec<Buffer>>;

/// The `i`th Buffer of `keep` as a source, held by reference, never copied.
fn source_in(keep: &Keep, i: usize) -> WriteSource {
    let buf = &keep[i];
    // An empty Buffer's pointer may be dangling; nothing is written anyway.
    let parts = if buf.is_empty() {
        Vec::new()
    } else {
        vec![(buf.as_ptr(), buf.len())]
    };
    // The `Buffer` holds a reference that keeps its backing store alive and
    // at a fixed address; the `Arc` clone given as the owner keeps the
    // `Buffer` until the source is dropped.
    // SAFETY: the part points into that store (see above), which outlives
    // the source.
    unsafe { WriteSource::from_parts(Box::new(keep.clone()), parts) }
}

/// The call's results, and its Buffers: they go together to the JS thread.
struct Written {
    results: Vec<Option<FileError>>,
    keep: Keep,
}

impl ToNapiValue for Written {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let Written { results, keep } = val;
        // By now every file's source is gone, so this is the last handle on
        // the Buffers, dropped here on the JS thread: napi-rs then releases
        // their references directly. Dropped on the runtime (with the last
        // source) each would be sent back through a threadsafe function,
        // one call per Buffer.
        drop(keep);
        // SAFETY: env is the live environment napi-rs passed us.
        unsafe { ToNapiValue::to_napi_value(env, results) }
    }
}

/// Writes `data[i]` as the whole content of `paths[i]` for every `i` (open
/// with `flags` and `mode`, write, fsync when `flush`, close), at most
/// `concurrency` files at a time: resolves once, with an array aligned with
/// `paths` of `null` (written) or `{ errno, syscall }`.
#[napi(catch_unwind, ts_return_type = "Promise<Array<FileError | null>>")]
pub fn write_files<'env>(
    env: &'env Env,
    paths: Vec<Buffer>,
    data: Vec<Buffer>,
    flags: i32,
    mode: u32,
    flush: bool,
    concurrency: u32,
) -> Result<Object<'env>> {
    if paths.len() != data.len() {
        return Err(Error::new(
            Status::InvalidArg,
            "paths and data must have the same length",
        ));
    }
    let paths = paths
        .iter()
        .map(|p| c_path(p))
        .collect::<Result<Vec<_>>>()?;
    let engine = global()?.engine.clone();
    // The environment waits for the writes before its Buffers are freed.
    let guard = lent::guard(env);
    let keep: Keep = Arc::new(data);
    let entries = paths
        .into_iter()
        .enumerate()
        .map(|(i, path)| (path, source_in(&keep, i)))
        .collect();
    promise(env, async move {
        let results =
            write_files::write_files(&engine, entries, flags, mode, flush, concurrency as usize)
                .await
                .iter()
                .map(|res| res.as_ref().err().map(file_error))
                .collect();
        drop(guard);
        Written { results, keep }
    })
}
