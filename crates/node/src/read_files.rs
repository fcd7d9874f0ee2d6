//! `readFiles`' binding: many whole files in one call, handed back in one
//! crossing as shared blocks plus a layout, which `lib/read-files.ts` turns
//! into one Buffer (a view) per file.
//!
//! Why views into shared blocks: for 10,000 files of 4 KiB, a Buffer of its
//! own per file (an external one, with a finalizer, or a V8 copy) cost more
//! on the JavaScript thread than the reads themselves: with external
//! Buffers ~16 ms to create and ~14 ms of GC per batch (--cpu-prof), with
//! copies ~15-40 ms of allocation. A view costs ~0.1 us and no finalizer.

use std::ffi::CString;

use napi::bindgen_prelude::{Buffer, Int32Array, Object, ToNapiValue};
use napi::{Either, Env, Error, Result, Status};
use napi_derive::napi;
use uring_fs_core::whole_file::files::{self, FilesRead};
use uring_fs_core::Contents;

use crate::engine::global;
use crate::errors::file_error;
use crate::file_ops::{promise, JsPoolBuf};
use crate::layouts::FileSlot;

/// fs's kIoMaxLength: fs.promises.readFile refuses a larger file
/// (ERR_FS_FILE_TOO_LARGE) before reading it. The engine refuses it too, and
/// lib/ then asks fs for that error, so that it is the running Node's own.
const K_IO_MAX_LENGTH: u64 = i32::MAX as u64;

/// What `readFiles` resolves with, built on the JavaScript thread.
struct JsFilesRead(FilesRead);

impl ToNapiValue for JsFilesRead {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let FilesRead { blocks, files } = val.0;
        // Per file, FileSlot's numbers; block -1 means "the next of
        // `others`" (a Buffer of its own, or an error).
        const PER_FILE: usize = FileSlot::Count as usize;
        let mut layout = vec![0i32; files.len() * PER_FILE];
        let mut others = Vec::new();
        for (file, place) in files.into_iter().zip(layout.chunks_exact_mut(PER_FILE)) {
            let num = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
            match file {
                Ok(Contents::Packed { block, offset, len }) => {
                    place[FileSlot::Block as usize] = num(block);
                    place[FileSlot::Offset as usize] = num(offset);
                    place[FileSlot::Length as usize] = num(len);
                }
                Ok(Contents::Own(buf)) => {
                    place[FileSlot::Block as usize] = -1;
                    others.push(Either::A(JsPoolBuf(buf)));
                }
                Err(e) => {
                    place[FileSlot::Block as usize] = -1;
                    others.push(Either::B(file_error(&e)));
                }
            }
        }
        let env = Env::from_raw(env);
        let mut obj = Object::new(&env)?;
        obj.set(
            "blocks",
            blocks.into_iter().map(JsPoolBuf).collect::<Vec<_>>(),
        )?;
        obj.set("layout", Int32Array::new(layout))?;
        obj.set("others", others)?;
        // SAFETY: env is the live environment napi-rs passed us.
        unsafe { ToNapiValue::to_napi_value(env.raw(), obj) }
    }
}

/// Reads `count` whole files, their paths NUL-terminated one after the other
/// in `paths`, at most `concurrency` at a time. Resolves once with
/// `{ blocks, layout, others }`: file i's place is [`FileSlot`]'s numbers
/// from `layout[i * FileSlot.Count]`: the block its bytes are in, their
/// offset and length; or block -1: then it is the next entry of `others`, a
/// Buffer or `{ errno, syscall }`.
#[napi(
    catch_unwind,
    ts_return_type = "Promise<{ blocks: Buffer[]; layout: Int32Array; others: Array<Buffer | FileError> }>"
)]
pub fn read_files<'env>(
    env: &'env Env,
    paths: Buffer,
    count: u32,
    flags: i32,
    concurrency: u32,
) -> Result<Object<'env>> {
    let paths = split_paths(&paths, count as usize)?;
    let engine = global()?.engine.clone();
    promise(env, async move {
        JsFilesRead(
            files::read_files(&engine, paths, flags, concurrency as usize, K_IO_MAX_LENGTH).await,
        )
    })
}

/// The `count` NUL-terminated paths of `joined`.
fn split_paths(joined: &[u8], count: usize) -> Result<Vec<CString>> {
    let mut out = Vec::with_capacity(count);
    let mut rest = joined;
    while let Some(end) = rest.iter().position(|&b| b == 0) {
        // The segment holds no NUL, so CString::new cannot fail.
        out.push(CString::new(&rest[..end]).map_err(|_| invalid())?);
        rest = &rest[end + 1..];
    }
    if out.len() != count || !rest.is_empty() {
        return Err(invalid());
    }
    Ok(out)
}

fn invalid() -> Error {
    Error::new(
        Status::InvalidArg,
        "paths must be `count` NUL-terminated paths",
    )
}
