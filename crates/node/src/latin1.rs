//! A JS string's latin1 bytes, read into this thread's scratch buffer: the
//! response head of every sendFile answer crosses here, and napi-rs's
//! `into_latin1` costs two napi calls and a fresh allocation each time (2%
//! of a cached 4 KiB response's CPU, measured with perf); one call into
//! memory already there costs neither.

use std::cell::RefCell;
use std::ptr;

use napi::bindgen_prelude::JsValue;
use napi::{sys, Error, JsString, Result, Status};

/// Heads up to this size (less one: napi writes a NUL) take one call.
const SCRATCH: usize = 16 * 1024;

thread_local! {
    static BYTES: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

/// Calls `f` with `s`'s latin1 bytes (each char's low byte, as
/// `Buffer.from(s, 'latin1')` gives).
pub(crate) fn with_latin1<R>(s: &JsString, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
    let env = s.value().env;
    BYTES.with(|cell| {
        // `f` makes no JS call, so no call on this thread can nest inside
        // another; if one ever did, it gets an error, not a panic.
        let mut guard = cell
            .try_borrow_mut()
            .map_err(|_| Error::new(Status::GenericFailure, "latin1 scratch buffer in use"))?;
        let buf: &mut Vec<u8> = &mut guard;
        let mut n = copy(env, s, buf)?;
        if n + 1 >= buf.len() {
            // It may not have fitted: size it exactly, and read it again.
            let mut len = 0usize;
            // SAFETY: a null buffer asks napi for the length only; env and
            // value are this call's, live for its duration.
            check(unsafe {
                sys::napi_get_value_string_latin1(env, s.raw(), ptr::null_mut(), 0, &mut len)
            })?;
            buf.resize(len + 1, 0);
            n = copy(env, s, buf)?;
        }
        Ok(f(&buf[..n]))
    })
}

/// Copies what fits of `s` into `buf` (NUL-terminated); the chars copied.
fn copy(env: sys::napi_env, s: &JsString, buf: &mut [u8]) -> Result<usize> {
    let mut written = 0usize;
    // SAFETY: napi writes at most `buf.len()` bytes (the chars and a NUL)
    // into `buf`, which is ours and that long; env and value are this
    // call's, live for its duration.
    check(unsafe {
        sys::napi_get_value_string_latin1(
            env,
            s.raw(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut written,
        )
    })?;
    Ok(written)
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), "a string was expected"))
    }
}
