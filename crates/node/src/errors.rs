//! How a failure crosses to JavaScript, in one place: as a negative errno
//! (`-ENOENT`), with the name of the system call that failed where there is
//! one, which `lib/errors.ts` turns into Node's own error (`code`, `errno`,
//! `syscall`, `path`, message). An error without an OS code crosses as EIO.

use napi_derive::napi;
use uring_fs_core::OpError;

/// `-errno` of `e` (EIO when it has none).
pub(crate) fn neg_errno(e: &std::io::Error) -> i32 {
    -e.raw_os_error().unwrap_or(libc::EIO)
}

/// `-errno` of an optional failure, 0 for none.
pub(crate) fn neg_errno_or_zero(e: Option<&std::io::Error>) -> i32 {
    e.map_or(0, neg_errno)
}

/// A failed operation as JavaScript receives it.
#[napi(object)]
pub struct FileError {
    pub errno: i32,
    pub syscall: String,
}

pub(crate) fn file_error(e: &OpError) -> FileError {
    FileError {
        errno: neg_errno(&e.error),
        syscall: e.syscall.name().to_owned(),
    }
}
